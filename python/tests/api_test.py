"""The shmring Python module: surface, errors, zero-copy views, the GIL,
Ctrl-C, select() on fileno(). Plain unittest; keys unique to this process,
every ring removed (checked in tearDown)."""
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import shmring

from ring_test import RingTest, unique_key


# futex(2)'s number in /proc/PID/syscall (x86_64, aarch64).
FUTEX_SYSCALL = {"x86_64": "202", "aarch64": "98"}.get(os.uname().machine)


def wait_in_futex(pid, timeout):
    """True once process pid's main thread sleeps in futex(2)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/%d/syscall" % pid) as f:
            if f.read().split()[0] == FUTEX_SYSCALL:
                return True
        time.sleep(0.001)
    return False


class Surface(RingTest):
    def test_open_errors_map_to_classes(self):
        key = unique_key()
        with self.assertRaises(shmring.NotFoundError) as cm:
            shmring.open(key)
        self.assertIsInstance(cm.exception, shmring.Error)
        self.assertIsInstance(cm.exception, FileNotFoundError)
        self.assertEqual(cm.exception.code, "not_found")
        self.assertIn(hex(key)[2:], str(cm.exception))
        with self.assertRaises(shmring.InvalidArgumentError):
            shmring.open(key, create=True, capacity=1000)
        with self.assertRaises(ValueError):
            shmring.open(key, create=True, kind="fifo")
        ring = self.make(capacity=4096)
        with self.assertRaises(shmring.ExistsError):
            shmring.open(ring.key, create="exclusive")
        with self.assertRaises(shmring.WrongKindError):
            shmring.open(ring.key, kind="mpsc")
        with self.assertRaises(shmring.SizeMismatchError):
            shmring.open(ring.key, create=True, capacity=8192)
        self.assertEqual(ring.capacity, 4096)
        self.assertEqual(ring.kind, "spsc")
        self.assertIn("spsc", repr(ring))
        with ring.producer():
            with self.assertRaises(shmring.RoleTakenError):
                ring.producer()
        with ring.consumer():
            with self.assertRaises(shmring.RoleTakenError):
                ring.consumer()

    def test_open_by_path(self):
        with tempfile.NamedTemporaryFile() as f:
            ring = shmring.open(f.name, create=True, proj="R")
            self.keys.append(ring.key)
            again = shmring.open(f.name, proj=ord("R"))
            self.assertEqual(again.key, ring.key)
            with self.assertRaises(shmring.NotFoundError):
                shmring.open(f.name, proj="Q")  # another key: no ring
        with self.assertRaises(shmring.NotFoundError):
            shmring.open("/nonexistent/shmring/path")

    def test_write_read_iterate_end_of_stream(self):
        ring = self.make(capacity=4096)
        c = ring.consumer()
        with ring.producer() as p:
            p.write(b"one")
            p.write(bytearray(b"two"))
            p.write(memoryview(b"xthreex")[1:-1])
            p.write(b"")
            with self.assertRaises(shmring.TooLargeError):
                p.write(bytes(5000))
        self.assertEqual(c.read(), b"one")
        views = [bytes(v) for v in c]
        self.assertEqual(views, [b"two", b"three", b""])
        self.assertIsNone(c.read())  # end of stream
        c.close()
        with self.assertRaises(shmring.ClosedError):
            c.read()

    def test_reserve_commit_views_are_released(self):
        ring = self.make(capacity=4096)
        with ring.producer() as p, ring.consumer() as c:
            mv = p.reserve(16)
            self.assertFalse(mv.readonly)
            self.assertEqual(len(mv), 16)
            mv[:5] = b"hello"
            p.commit(5, type=9)
            with self.assertRaises(ValueError):
                mv[0]  # released at commit: ring memory is gone from Python
            mv = p.reserve(8)
            p.abort()
            with self.assertRaises(ValueError):
                mv[0]
            with self.assertRaises(RuntimeError):
                p.commit()
            rec = next(c)
            self.assertTrue(rec.readonly)
            self.assertEqual(bytes(rec), b"hello")
            with self.assertRaises(TypeError):
                rec[0] = 1
            p.write(b"next")
            nxt = next(c)
            with self.assertRaises(ValueError):
                rec[0]  # valid only until the next record
            self.assertEqual(bytes(nxt), b"next")

    def test_exports_block_the_next_record(self):
        ring = self.make(capacity=4096)
        with ring.producer() as p, ring.consumer() as c:
            p.write(b"abcd")
            p.write(b"efgh")
            rec = next(c)
            held = rec[1:]  # a slice shares the record's buffer
            with self.assertRaises(BufferError):
                next(c)
            self.assertEqual(bytes(held), b"bcd")  # still the record
            held.release()
            self.assertEqual(bytes(next(c)), b"efgh")
            with self.assertRaises(ValueError):
                rec[0]
            # Reservations too: no commit while a slice of it lives.
            mv = p.reserve(4)
            part = mv[:2]
            part[:] = b"ok"
            with self.assertRaises(BufferError):
                p.commit()
            del part
            p.commit(2)
            self.assertEqual(c.read(), b"ok")

    def test_timeouts_and_would_block(self):
        ring = self.make(capacity=4096)
        with ring.producer() as p, ring.consumer() as c:
            with self.assertRaises(shmring.WouldBlockError):
                c.read(timeout=0)
            with self.assertRaises(ValueError):
                c.read(timeout=-1)
            t0 = time.monotonic()
            with self.assertRaises(TimeoutError):
                c.read(timeout=0.2)
            self.assertGreaterEqual(time.monotonic() - t0, 0.19)
            n = 0
            while True:
                try:
                    p.write(bytes(100), timeout=0)
                    n += 1
                except shmring.WouldBlockError:
                    break
            self.assertGreater(n, 5)
            with self.assertRaises(shmring.TimedOutError):
                p.write(bytes(100), timeout=0.05)

    def test_mpsc_many_producers(self):
        ring = self.make(kind="mpsc", capacity=1 << 16)
        producers = [ring.producer() for _ in range(4)]
        for i, p in enumerate(producers):
            p.write(b"p%d" % i)
        for p in producers:
            p.close()
        with ring.consumer() as c:
            self.assertEqual(sorted(bytes(v) for v in c),
                             [b"p0", b"p1", b"p2", b"p3"])

    def test_blocking_read_releases_the_gil(self):
        ring = self.make()
        got = []
        with ring.producer() as p, ring.consumer() as c:
            c.fileno()
            t = threading.Thread(target=lambda: got.append(c.read(timeout=10)))
            t.start()
            # This thread keeps running Python while the reader blocks.
            spins = 0
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:
                spins += 1
            self.assertGreater(spins, 1000)
            with self.assertRaises(RuntimeError):
                c.read(timeout=0)  # in use by the reader thread
            # Its fd is still there for select() (nothing to read yet).
            self.assertEqual(select.select([c], [], [], 0)[0], [])
            p.write(b"wake")
            t.join(10)
            self.assertFalse(t.is_alive())
        self.assertEqual(got, [b"wake"])

    def test_select_on_fileno(self):
        ring = self.make()
        with ring.producer() as p, ring.consumer() as c:
            fd = c.fileno()
            self.assertEqual(fd, c.fileno())
            with self.assertRaises(shmring.WouldBlockError):
                c.read(timeout=0)  # drained: arms the fd
            self.assertEqual(select.select([c], [], [], 0.1)[0], [])
            p.write(b"x")
            self.assertEqual(select.select([c], [], [], 10)[0], [c])
            self.assertEqual(c.read(timeout=0), b"x")
            with self.assertRaises(shmring.WouldBlockError):
                c.read(timeout=0)
            self.assertEqual(select.select([fd], [], [], 0.1)[0], [])

    def test_fileno_needs_futex(self):
        ring = self.make(wait="semaphore")
        with ring.consumer() as c:
            with self.assertRaises(shmring.InvalidArgumentError):
                c.fileno()

    def test_ctrl_c_interrupts_a_blocking_read(self):
        ring = self.make()
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import shmring, sys\n"
             "c = shmring.open(%d).consumer()\n"
             "try:\n"
             "    print('ready', flush=True)\n"
             "    c.read()\n"
             "except KeyboardInterrupt:\n"
             "    print('KeyboardInterrupt', flush=True)\n"
             "    sys.exit(7)\n" % ring.key],
            stdout=subprocess.PIPE, text=True)
        self.assertEqual(child.stdout.readline(), "ready\n")
        # The signal goes in once the read sleeps in the kernel, however
        # long the child takes to get there.
        self.assertTrue(wait_in_futex(child.pid, timeout=30),
                        "the reader never slept in futex()")
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=10)
        self.assertEqual(child.returncode, 7)
        self.assertEqual(out, "KeyboardInterrupt\n")

    def test_killed_producer_is_peer_dead(self):
        ring = self.make()
        with ring.consumer() as c:
            child = subprocess.Popen(
                [sys.executable, "-c",
                 "import shmring, time\n"
                 "p = shmring.open(%d).producer()\n"
                 "p.write(b'before')\n"
                 "print('ready', flush=True)\n"
                 "time.sleep(60)\n" % ring.key],
                stdout=subprocess.PIPE, text=True)
            self.assertEqual(child.stdout.readline(), "ready\n")
            self.assertEqual(c.read(timeout=10), b"before")
            child.kill()
            child.wait()
            with self.assertRaises(shmring.PeerDeadError):
                c.read(timeout=10)  # the dead producer is noticed
            child.stdout.close()

    def test_removed_ring_ends_a_read(self):
        # No producer can attach a removed ring: a reader waiting on one
        # raises RemovedError (as the tools say) instead of waiting on.
        ring = self.make()
        with ring.consumer() as c:
            with self.assertRaises(shmring.WouldBlockError):
                c.read(timeout=0)
            ring.remove()
            with self.assertRaises(shmring.RemovedError) as cm:
                c.read(timeout=30)
            self.assertIn("ring removed while in use: by `shm-ring rm`, "
                          "IPC_RMID, or systemd RemoveIPC",
                          str(cm.exception))

    def test_removed_ring_ends_an_iteration_in_another_process(self):
        ring = self.make()
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import shmring, sys\n"
             "c = shmring.open(%d).consumer()\n"
             "print('ready', flush=True)\n"
             "try:\n"
             "    for record in c:\n"
             "        sys.exit(3)\n"
             "except shmring.RemovedError as e:\n"
             "    print(e.code, flush=True)\n"
             "    sys.exit(7)\n" % ring.key],
            stdout=subprocess.PIPE, text=True)
        self.assertEqual(child.stdout.readline(), "ready\n")
        # This process lets go of its mapping too: a process that maps a
        # removed ring could still attach a producer through it.
        key = ring.key
        ring.close()
        shmring.remove(key)  # while it waits, or just before
        try:
            out, _ = child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            self.fail("the consumer still waits on a removed ring")
        self.assertEqual((child.returncode, out), (7, "removed\n"))

    def test_removed_ring_with_a_producer_attached_finishes_its_stream(self):
        ring = self.make()
        with ring.consumer() as c:
            p = ring.producer()
            ring.remove()
            with self.assertRaises(shmring.TimedOutError):
                c.read(timeout=0.6)  # a live producer may still write
            p.write(b"last")
            p.close()
            self.assertEqual(c.read(timeout=10), b"last")
            self.assertIsNone(c.read(timeout=10))

    def test_stream_rules_a_consumer_between_streams_waits(self):
        ring = self.make()
        first = ring.consumer()
        with ring.producer() as p:
            p.write(b"old")
        self.assertEqual(first.read(), b"old")
        self.assertIsNone(first.read())  # read to its end
        first.close()
        with ring.consumer(raw=True) as raw:
            self.assertIsNone(raw.read(timeout=0))  # that old end, again
        c = ring.consumer()
        self.assertEqual(select.select([c], [], [], 0)[0], [])
        with self.assertRaises(shmring.WouldBlockError):
            c.read(timeout=0)
        with self.assertRaises(shmring.TimedOutError):
            c.read(timeout=0.1)  # no producer yet
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import shmring, sys\n"
             "with shmring.open(%d).producer() as p:\n"
             "    for i in range(100):\n"
             "        p.write(b'new %%d' %% i)\n" % ring.key])
        self.assertEqual([bytes(v) for v in c],
                         [b"new %d" % i for i in range(100)])
        self.assertEqual(child.wait(timeout=30), 0)
        c.close()

    def test_stream_rules_a_subscriber_between_streams_waits(self):
        ring = self.make(kind="broadcast", capacity=4096)
        with ring.subscriber() as first:
            with ring.producer() as p:
                p.write(b"old")
            self.assertEqual(list(map(bytes, first)), [b"old"])
        with ring.subscriber(raw=True) as raw:
            self.assertIsNone(raw.read(timeout=0))  # that old end, again
        with ring.subscriber() as s:
            self.assertEqual(select.select([s], [], [], 0)[0], [])
            with self.assertRaises(shmring.WouldBlockError):
                s.read(timeout=0)
            with ring.producer() as p:
                p.write(b"new")
            self.assertEqual(select.select([s], [], [], 10)[0], [s])
            self.assertEqual(s.read(timeout=0), b"new")
            self.assertIsNone(s.read(timeout=10))
            self.assertEqual((s.lost_records, s.intact()), (0, True))

    def test_numpy_frombuffer_no_copy(self):
        import numpy as np
        ring = self.make()
        with ring.producer() as p, ring.consumer() as c:
            mv = p.reserve(8 * 100)
            out = np.frombuffer(mv, dtype=np.float64)  # writes into the ring
            out[:] = np.arange(100, dtype=np.float64)
            del out
            p.commit()
            rec = next(c)
            arr = np.frombuffer(rec, dtype=np.float64)
            self.assertFalse(arr.flags.owndata)
            self.assertFalse(arr.flags.writeable)
            # The array's data pointer is the record in the ring: no copy.
            addr = arr.__array_interface__["data"][0]
            rec_addr = np.frombuffer(rec, dtype=np.uint8).__array_interface__[
                "data"][0]
            self.assertEqual(addr, rec_addr)
            self.assertEqual(arr.sum(), sum(range(100)))
            del arr
            p.close()
            self.assertEqual(list(c), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
