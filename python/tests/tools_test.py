"""The Python module next to the tools: a Python producer read by
shm-consume byte-exact, and shm-produce --framing lines read by a Python
consumer that waits in select(). A slots ring and a drop-slow broadcast
ring made by shm-ring, used from Python.
Usage: tools_test.py SHM_PRODUCE SHM_CONSUME SHM_RING
"""
import hashlib
import os
import random
import select
import subprocess
import sys
import tempfile
import unittest

import shmring

PRODUCE, CONSUME, SHM_RING = (os.path.realpath(p) for p in sys.argv[1:4])
del sys.argv[1:4]


def unique_key(n):
    """The suite's key scheme (tests/support.h): 0x5e, 16 bits of this
    process's pid, then n (0..255)."""
    assert 0 <= n <= 0xFF
    return 0x5E000000 | ((os.getpid() & 0xFFFF) << 8) | n


class Tools(unittest.TestCase):
    def test_slots_ring_made_by_shm_ring(self):
        key = unique_key(9)
        subprocess.run([SHM_RING, "create", "--key", hex(key), "--kind",
                        "slots", "--slot-size", "12", "--capacity", "4K"],
                       check=True, stdout=subprocess.DEVNULL)
        try:
            ring = shmring.open(key)
            self.assertEqual((ring.kind, ring.slot_size), ("slots", 12))
            with ring.queue_writer("<iq") as w:
                w.push((-1, 1 << 40))
            with ring.queue_reader("<iq") as r:
                self.assertEqual(list(r), [(-1, 1 << 40)])
        finally:
            shmring.remove(key)

    def test_drop_slow_ring_made_by_shm_ring(self):
        key = unique_key(10)
        subprocess.run([SHM_RING, "create", "--key", hex(key), "--kind",
                        "broadcast", "--overrun", "drop-slow",
                        "--capacity", "4K"],
                       check=True, stdout=subprocess.DEVNULL)
        try:
            ring = shmring.open(key)
            self.assertEqual((ring.kind, ring.overrun),
                             ("broadcast", "drop-slow"))
            with ring.subscriber() as s:
                produce = subprocess.run(
                    [PRODUCE, "--key", hex(key), "--framing", "lines"],
                    input=b"".join(b"%d\n" % i for i in range(10)),
                    check=True)
                self.assertEqual(produce.returncode, 0)
                self.assertEqual([bytes(v) for v in s],
                                 [b"%d" % i for i in range(10)])
                self.assertEqual(s.lost_records, 0)
        finally:
            shmring.remove(key)

    def test_shm_ring_rm_ends_a_waiting_consumer(self):
        key = unique_key(11)
        ring = shmring.open(key, create="exclusive")
        with ring.consumer() as c:
            with self.assertRaises(shmring.WouldBlockError):
                c.read(timeout=0)
            subprocess.run([SHM_RING, "rm", "--key", hex(key)], check=True,
                           stdout=subprocess.DEVNULL)
            with self.assertRaises(shmring.RemovedError) as cm:
                next(c)
            self.assertIn("ring removed while in use: by `shm-ring rm`, "
                          "IPC_RMID, or systemd RemoveIPC",
                          str(cm.exception))
        with self.assertRaises(shmring.NotFoundError):
            shmring.open(key)

    def test_fresh_consumer_between_streams_waits_for_the_next(self):
        # The tools' stream rules: one stream written by shm-produce and
        # read to its end by shm-consume; a consumer attached after that
        # waits for the next stream instead of reporting that old end.
        key = unique_key(12)
        ring = shmring.open(key, create="exclusive")
        try:
            subprocess.run([PRODUCE, "--key", hex(key), "--framing",
                            "lines"], input=b"old 1\nold 2\n", check=True)
            old = subprocess.run([CONSUME, "--key", hex(key), "--framing",
                                  "lines"], capture_output=True, check=True)
            self.assertEqual(old.stdout, b"old 1\nold 2\n")
            with ring.consumer() as c:
                self.assertEqual(select.select([c], [], [], 0)[0], [])
                with self.assertRaises(shmring.WouldBlockError):
                    c.read(timeout=0)
                lines = [b"line %d" % i for i in range(1000)]
                produce = subprocess.Popen(
                    [PRODUCE, "--key", hex(key), "--framing", "lines"],
                    stdin=subprocess.PIPE)
                produce.stdin.write(b"".join(l + b"\n" for l in lines))
                produce.stdin.close()
                self.assertEqual(select.select([c], [], [], 30)[0], [c])
                self.assertEqual([bytes(v) for v in c], lines)
                self.assertIsNone(c.read(timeout=0))  # end of stream
                self.assertEqual(produce.wait(timeout=30), 0)
        finally:
            ring.remove()

    def test_python_producer_to_shm_consume(self):
        key = unique_key(1)
        ring = shmring.open(key, create="exclusive", capacity=1 << 16)
        try:
            out = tempfile.TemporaryFile()  # a pipe would fill up first
            self.addCleanup(out.close)
            consume = subprocess.Popen(
                [CONSUME, "--key", hex(key), "--framing", "bytes"],
                stdout=out)
            rng = random.Random(15)
            want = hashlib.sha256()
            total = 0
            with ring.producer() as p:
                while total < 8 << 20:
                    chunk = rng.randbytes(rng.randrange(0, 3000))
                    if rng.random() < 0.5:
                        p.write(chunk)
                    else:  # zero-copy path
                        mv = p.reserve(len(chunk) + 10)
                        mv[:len(chunk)] = chunk
                        p.commit(len(chunk))
                    want.update(chunk)
                    total += len(chunk)
            self.assertEqual(consume.wait(timeout=60), 0)
            out.seek(0)
            got = hashlib.sha256()
            n = 0
            while True:
                block = out.read(1 << 16)
                if not block:
                    break
                got.update(block)
                n += len(block)
            self.assertEqual(n, total)
            self.assertEqual(got.hexdigest(), want.hexdigest())
        finally:
            ring.remove()

    def test_shm_produce_lines_to_python_select(self):
        key = unique_key(2)
        ring = shmring.open(key, create="exclusive")
        try:
            with ring.consumer() as c:
                produce = subprocess.Popen(
                    [PRODUCE, "--key", hex(key), "--framing", "lines"],
                    stdin=subprocess.PIPE)
                lines = [b"line %d %s" % (i, b"x" * i) for i in range(50)]
                got = []
                wakeups = 0
                for i, line in enumerate(lines):
                    produce.stdin.write(line + b"\n")
                    produce.stdin.flush()
                    if i % 10 == 9:  # a burst, then wait for it
                        while len(got) < i + 1:
                            ready, _, _ = select.select([c], [], [], 10)
                            self.assertEqual(ready, [c], "select timed out")
                            wakeups += 1
                            while True:
                                try:
                                    rec = c.read(timeout=0)
                                except shmring.WouldBlockError:
                                    break
                                self.assertIsNotNone(rec)
                                got.append(rec)
                produce.stdin.close()
                self.assertEqual(produce.wait(timeout=30), 0)
                ready, _, _ = select.select([c], [], [], 10)
                self.assertEqual(ready, [c])  # end of stream is readable
                self.assertIsNone(c.read(timeout=0))
                self.assertEqual(got, lines)
                self.assertGreaterEqual(wakeups, 5)
        finally:
            ring.remove()


if __name__ == "__main__":
    unittest.main(verbosity=2)
