"""shmring.aio.records(): a Consumer, a Subscriber and a QueueReader read
in an asyncio loop while the producer is another process, to end of
stream; the loop runs other tasks meanwhile; a ring removed while the
reader waits raises RemovedError instead of waiting for ever. Keys
unique to this process, every ring removed (checked in tearDown)."""
import asyncio
import subprocess
import sys
import unittest

import shmring
import shmring.aio

from ring_test import RingTest, unique_key


# Writes N records (elements) and closes: the reader's end of stream.
PRODUCER = """
import shmring, struct, sys
ring = shmring.open(int(sys.argv[1]))
n = int(sys.argv[2])
if ring.kind == "slots":
    with ring.queue_writer("<Q") as w:
        for i in range(n):
            w.push((i,))
else:
    with ring.producer() as p:
        for i in range(n):
            p.write(b"record %d" % i)
"""

# Far longer than any wait here should take: a hang fails, not blocks.
GUARD = 60


class Aio(RingTest):
    def read_from_child(self, ring, reader, n):
        """Everything records() yields while a child process writes n."""

        async def main():
            ticks = 0
            stop = asyncio.Event()

            async def ticker():  # the loop serves others while we wait
                nonlocal ticks
                while not stop.is_set():
                    ticks += 1
                    await asyncio.sleep(0)

            other = asyncio.create_task(ticker())
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-c", PRODUCER, str(ring.key), str(n))
            got = []
            async for record in shmring.aio.records(reader):
                got.append(record)
            stop.set()
            await other
            self.assertEqual(await child.wait(), 0)
            self.assertGreater(ticks, 0)
            return got

        return asyncio.run(asyncio.wait_for(main(), GUARD))

    def test_consumer(self):
        ring = self.make(capacity=4096)  # the child waits for room
        with ring.consumer() as c:
            got = self.read_from_child(ring, c, 1000)
        self.assertEqual(got, [b"record %d" % i for i in range(1000)])

    def test_subscriber(self):
        ring = self.make(kind="broadcast", capacity=4096)
        with ring.subscriber() as s:
            got = self.read_from_child(ring, s, 1000)
            self.assertEqual(s.lost_records, 0)
        self.assertEqual(got, [b"record %d" % i for i in range(1000)])

    def test_queue_reader(self):
        ring = self.make(kind="slots", capacity=4096, slot_size=8)
        with ring.queue_reader("<Q") as r:
            got = self.read_from_child(ring, r, 2000)
        self.assertEqual(got, [(i,) for i in range(2000)])

    def test_removed_ring_raises(self):
        ring = self.make()
        consumer = ring.consumer()

        async def main():
            loop = asyncio.get_running_loop()
            # Removed once the reader waits (or before: the same answer).
            loop.call_soon(shmring.remove, ring.key)
            with self.assertRaises(shmring.RemovedError) as cm:
                async for _ in shmring.aio.records(consumer):
                    self.fail("a record from a ring nobody wrote")
            return str(cm.exception)

        message = asyncio.run(asyncio.wait_for(main(), GUARD))
        self.assertIn("ring removed while in use: by `shm-ring rm`, "
                      "IPC_RMID, or systemd RemoveIPC", message)
        consumer.close()

    def test_check_every_must_be_positive(self):
        ring = self.make()
        with ring.consumer() as c:
            async def main():
                async for _ in shmring.aio.records(c, check_every=0):
                    pass

            with self.assertRaises(ValueError):
                asyncio.run(main())


if __name__ == "__main__":
    unittest.main(verbosity=2)
