"""The other ring kinds: a broadcast ring, whose every subscriber sees
every record, and a slots ring of fixed-size elements packed with a
struct format."""
import os

import shmring

key = 0x5EED0000 | (os.getpid() & 0xFFFF)

# Broadcast: one producer, up to max_consumers subscribers, each with its
# own cursor. overrun="wait" holds the producer for the slowest one;
# "drop-slow" never waits, and a lapped subscriber counts what it lost.
with shmring.open(key, create=True, kind="broadcast",
                  max_consumers=4) as ring:
    a, b = ring.subscriber(), ring.subscriber()
    with ring.producer() as producer:
        for word in (b"one", b"two"):
            producer.write(word)
    print("a:", [bytes(r).decode() for r in a])  # to end of stream
    print("b:", [r.decode() for r in iter(b.read, None)])
    print("lost:", b.lost_records)
    a.close()
    b.close()
    ring.remove()  # the key is free again at once

# Slots: elements of one size (here struct "<qd", 16 bytes), no header.
with shmring.open(key, create=True, kind="slots", slot_size="<qd",
                  capacity=4096) as ring:
    with ring.queue_reader("<qd") as reader:
        with ring.queue_writer("<qd") as writer:
            for i in range(3):
                writer.push((i, i / 4))
        print(ring.slot_size, "bytes each:", list(reader))
    ring.remove()
