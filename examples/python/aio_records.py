"""asyncio with shmring.aio.records(): `async for` over a consumer while
the loop serves other tasks. The producer is another process (the
shm-produce tool would do as well); its close ends the stream."""
import asyncio
import os
import sys

import shmring
import shmring.aio

PRODUCER = """
import shmring, sys
with shmring.open(int(sys.argv[1])).producer() as p:
    for i in range(5):
        p.write(b"tick %d" % i)
"""


async def main(ring: shmring.Ring) -> None:
    with ring.consumer() as consumer:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PRODUCER, str(ring.key))
        async for record in shmring.aio.records(consumer):
            print("got", record.decode())
        await child.wait()


key = 0x5EED0000 | (os.getpid() & 0xFFFF)
with shmring.open(key, create=True) as ring:
    asyncio.run(main(ring))
    ring.remove()
