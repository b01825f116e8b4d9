"""The shortest round trip: create a ring, write two records (one copied,
one written in place), read them back until end of stream, remove it."""
import os

import shmring

key = 0x5EED0000 | (os.getpid() & 0xFFFF)  # any SysV key; or a file path
with shmring.open(key, create=True) as ring:
    with ring.consumer() as consumer:
        with ring.producer() as producer:
            producer.write(b"hello")
            buf = producer.reserve(5)  # a writable memoryview on the ring
            buf[:] = b"world"
            producer.commit()
        # Closing the last producer ends the stream: the loop stops.
        for record in consumer:  # read-only memoryviews, no copy
            print(bytes(record).decode())
    ring.remove()
