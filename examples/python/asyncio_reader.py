"""An asyncio consumer: the ring's fileno() in loop.add_reader(), next to
whatever else the loop serves. The producer is another process (the
shm-produce tool would do as well)."""
import asyncio
import os
import subprocess
import sys

import shmring

PRODUCER = """
import shmring, sys, time
with shmring.open(int(sys.argv[1])).producer() as p:
    for i in range(5):
        p.write(b"tick %d" % i)
        time.sleep(0.05)
"""


async def main(ring):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    consumer = ring.consumer()

    def on_readable():
        while True:  # drain: the fd stays readable until the ring is empty
            try:
                record = consumer.read(timeout=0)
            except shmring.WouldBlockError:
                return
            if record is None:  # end of stream
                loop.remove_reader(consumer)
                done.set_result(None)
                return
            print("got", record.decode())

    loop.add_reader(consumer, on_readable)
    child = subprocess.Popen([sys.executable, "-c", PRODUCER, str(ring.key)])
    await done
    consumer.close()
    child.wait()


key = 0x5EED0000 | (os.getpid() & 0xFFFF)
with shmring.open(key, create=True) as ring:
    asyncio.run(main(ring))
    ring.remove()
