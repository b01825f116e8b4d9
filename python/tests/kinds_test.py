"""Every ring kind from Python: broadcast rings (Subscriber; wait and
drop-slow, the loss counted exactly, a torn copy never delivered) and
slots rings (QueueWriter/QueueReader over bytes or a struct format).
Plain unittest; keys unique to this process, every ring removed (checked
in tearDown)."""
import select
import struct
import sys
import unittest

import shmring

from ring_test import RingTest, unique_key


def stamp(seq):
    """A 56-byte record that says which one it is."""
    return struct.pack("<Q", seq) + bytes(48)


def seq_of(record):
    return struct.unpack_from("<Q", record)[0]


class Broadcast(RingTest):
    def test_every_subscriber_sees_every_record(self):
        ring = self.make(kind="broadcast", capacity=4096, max_consumers=4)
        self.assertEqual(ring.kind, "broadcast")
        self.assertEqual(ring.max_consumers, 4)
        self.assertEqual(ring.overrun, "wait")
        self.assertEqual(ring.slot_size, 0)
        with self.assertRaises(shmring.WrongKindError):
            ring.consumer()  # a broadcast ring's readers are subscribers
        a, b = ring.subscriber(), ring.subscriber()
        self.assertNotEqual(a.cursor, b.cursor)
        with ring.producer() as p:
            self.assertTrue(p.consumer_alive)
            # 100 records of 64 bytes, the ring holds 64: a wait ring's
            # producer waits for the slowest subscriber, so both read half.
            for i in range(100):
                if i == 50:
                    self.assertEqual([seq_of(a.read()) for _ in range(50)],
                                     list(range(50)))
                    self.assertEqual([seq_of(b.read()) for _ in range(50)],
                                     list(range(50)))
                p.write(stamp(i), timeout=10)
        got_a = [seq_of(v) for v in a]  # memoryviews, to end of stream
        self.assertEqual(got_a, list(range(50, 100)))
        self.assertTrue(a.intact())
        got_b = []
        while (r := b.read(timeout=10)) is not None:
            got_b.append(seq_of(r))
        self.assertEqual(got_b, list(range(50, 100)))
        for s in (a, b):
            self.assertEqual((s.lost_records, s.lost_bytes), (0, 0))
            s.close()
            with self.assertRaises(shmring.ClosedError):
                s.read()

    def test_subscriber_limit_and_views(self):
        ring = self.make(kind="broadcast", capacity=4096, max_consumers=1)
        with ring.subscriber() as s:
            with self.assertRaises(shmring.RoleTakenError):
                ring.subscriber()
            with ring.producer() as p:
                p.write(b"abc")
                p.write(b"def")
                rec = next(s)
                self.assertTrue(rec.readonly)
                self.assertEqual(bytes(rec), b"abc")
                self.assertEqual(bytes(next(s)), b"def")
                with self.assertRaises(ValueError):
                    rec[0]  # retired at the next record
                with self.assertRaises(shmring.WouldBlockError):
                    s.read(timeout=0)

    def test_fileno_select(self):
        ring = self.make(kind="broadcast", capacity=4096)
        with ring.subscriber() as s, ring.producer() as p:
            self.assertEqual(s.fileno(), s.fileno())
            with self.assertRaises(shmring.WouldBlockError):
                s.read(timeout=0)  # drained: arms the fd
            self.assertEqual(select.select([s], [], [], 0)[0], [])
            p.write(b"x")
            self.assertEqual(select.select([s], [], [], 10)[0], [s])
            self.assertEqual(s.read(timeout=0), b"x")

    def test_drop_slow_lapped_subscriber_raises_overrun_and_counts(self):
        # The producer never waits: it laps a subscriber that holds still.
        cap = 4096
        ring = self.make(kind="broadcast", capacity=cap, overrun="drop-slow")
        self.assertEqual(ring.overrun, "drop-slow")
        s = ring.subscriber()
        written = 2 + cap // 64 + 2
        with ring.producer() as p:
            for seq in range(written):  # 64-byte spans: a ring and a bit
                p.write(stamp(seq), timeout=0)
        with self.assertRaises(shmring.OverrunError) as cm:
            s.read()
        self.assertEqual(cm.exception.code, "overrun")
        self.assertGreater(s.lost_records, 0)
        self.assertIn("%d records" % s.lost_records, str(cm.exception))
        got = [seq_of(r) for r in iter(lambda: s.read(timeout=10), None)]
        # The oldest intact record on, in order, to the last.
        self.assertEqual(got, list(range(got[0], written)))
        self.assertEqual(len(got) + s.lost_records, written)
        self.assertEqual(s.lost_bytes, 56 * s.lost_records)
        s.close()

    def test_drop_slow_record_overwritten_while_held_is_not_delivered(self):
        cap = 4096
        ring = self.make(kind="broadcast", capacity=cap, overrun="drop-slow")
        s = ring.subscriber()
        p = ring.producer()
        p.write(stamp(0))
        p.write(stamp(1))
        held = next(s)  # a view of record 0, in the ring
        self.assertEqual(seq_of(held), 0)
        written = 2 + cap // 64 + 2
        for seq in range(2, written):  # the producer laps the held record
            p.write(stamp(seq), timeout=0)
        p.close()
        self.assertFalse(s.intact())  # torn while held: dropped
        with self.assertRaises(shmring.OverrunError):
            next(s)
        got = [seq_of(v) for v in s]
        self.assertNotIn(0, got)
        self.assertEqual(got, list(range(got[0], written)))
        self.assertEqual(len(got) + s.lost_records, written)
        s.close()


class Slots(RingTest):
    def test_bytes_round_trip_full_empty_end_of_stream(self):
        ring = self.make(kind="slots", capacity=4096, slot_size=16)
        self.assertEqual((ring.kind, ring.slot_size), ("slots", 16))
        with self.assertRaises(shmring.WrongKindError):
            ring.producer()
        with self.assertRaises(shmring.WrongKindError):
            ring.consumer()
        r = ring.queue_reader()
        self.assertEqual((r.element_size, r.format), (16, None))
        with self.assertRaises(shmring.WouldBlockError):
            r.try_pop()
        with ring.queue_writer() as w:
            self.assertTrue(w.consumer_alive)
            with self.assertRaises(ValueError):
                w.push(b"short")
            n = 0
            while True:  # fill it
                try:
                    w.try_push(n.to_bytes(16, "little"))
                except shmring.WouldBlockError:
                    break
                n += 1
            self.assertEqual(n, 4096 // 16)
            self.assertEqual(r.size_guess, 4096)
            with self.assertRaises(shmring.TimedOutError):
                w.push(bytes(16), timeout=0.05)
            self.assertEqual(r.pop(), (0).to_bytes(16, "little"))
            w.push(bytearray(n.to_bytes(16, "little")))
        got = [int.from_bytes(v, "little") for v in r]
        self.assertEqual(got, list(range(1, n + 1)))
        self.assertIsNone(r.pop())  # end of stream
        r.close()
        with self.assertRaises(shmring.ClosedError):
            r.pop()

    def test_struct_format(self):
        fmt = "<qd"
        ring = self.make(kind="slots", capacity=4096, slot_size=fmt)
        self.assertEqual(ring.slot_size, struct.calcsize(fmt))
        with self.assertRaises(ValueError):
            ring.queue_writer("<q")  # 8 bytes, the ring's are 16
        w = ring.queue_writer(fmt)
        r = ring.queue_reader(fmt)
        self.assertEqual(w.format, fmt)
        with self.assertRaises(TypeError):
            w.push(5)  # a tuple of the fields
        with self.assertRaises(struct.error):
            w.push((1,))
        for i in range(10):
            w.push((i, i / 2))
        w.close()
        self.assertEqual(list(r), [(i, i / 2) for i in range(10)])
        r.close()

    def test_fileno_select(self):
        ring = self.make(kind="slots", capacity=4096, slot_size=8)
        with ring.queue_reader("<Q") as r, ring.queue_writer("<Q") as w:
            self.assertEqual(r.fileno(), r.fileno())
            with self.assertRaises(shmring.WouldBlockError):
                r.try_pop()  # drained: arms the fd
            self.assertEqual(select.select([r], [], [], 0)[0], [])
            w.push((7,))
            self.assertEqual(select.select([r], [], [], 10)[0], [r])
            self.assertEqual(r.try_pop(), (7,))

    def test_every_element_size(self):
        # Sizes of every shape, around the ring's wrap: 4096 // size slots,
        # twice as many elements through them.
        for size in [1, 63, 64, 65, 100, 257, 300, 1000, 2048]:
            with self.subTest(size=size):
                ring = self.make(kind="slots", capacity=4096, slot_size=size)
                slots = 4096 // size
                elements = [bytes((i + j) % 251 for j in range(size))
                            for i in range(2 * slots)]
                with ring.queue_writer() as w, ring.queue_reader() as r:
                    self.assertEqual(w.element_size, size)
                    self.assertEqual(r.element_size, size)
                    for e in elements[:slots]:
                        w.try_push(e)
                    with self.assertRaises(shmring.WouldBlockError):
                        w.try_push(elements[0])  # full
                    got = []
                    for e in elements[slots:]:
                        got.append(r.pop())
                        w.push(e)
                    got += [r.try_pop() for _ in range(slots)]
                    self.assertEqual(got, elements)

    def test_struct_format_of_an_odd_size(self):
        fmt = "<Q92s"  # 100 bytes
        ring = self.make(kind="slots", capacity=4096, slot_size=fmt)
        self.assertEqual(ring.slot_size, 100)
        with ring.queue_reader(fmt) as r:
            with ring.queue_writer(fmt) as w:
                for i in range(50):  # 40 slots: it wraps
                    w.push((i, bytes([i]) * 92))
                    self.assertEqual(r.pop(), (i, bytes([i]) * 92))
            self.assertIsNone(r.pop())  # end of stream

    def test_killed_writer_is_peer_dead(self):
        import subprocess
        ring = self.make(kind="slots", capacity=4096, slot_size=8)
        with ring.queue_reader("<Q") as r:
            child = subprocess.Popen(
                [sys.executable, "-c",
                 "import shmring, time\n"
                 "w = shmring.open(%d).queue_writer('<Q')\n"
                 "w.push((1,))\n"
                 "print('ready', flush=True)\n"
                 "time.sleep(60)\n" % ring.key],
                stdout=subprocess.PIPE, text=True)
            self.assertEqual(child.stdout.readline(), "ready\n")
            self.assertEqual(r.pop(timeout=10), (1,))
            child.kill()
            child.wait()
            child.stdout.close()
            with self.assertRaises(shmring.PeerDeadError):
                r.pop(timeout=10)


class Open(RingTest):
    def test_kind_arguments(self):
        key = unique_key()
        with self.assertRaises(ValueError):
            shmring.open(key, create=True, kind="broadcast", overrun="never")
        with self.assertRaises(shmring.InvalidArgumentError):
            shmring.open(key, create=True, kind="slots")  # no slot_size
        with self.assertRaises(shmring.InvalidArgumentError):
            shmring.open(key, create=True, slot_size=8)  # spsc
        ring = self.make(kind="slots", capacity=4096, slot_size=8)
        with self.assertRaises(shmring.WrongKindError):
            shmring.open(ring.key, kind="broadcast")
        with self.assertRaises(shmring.WrongKindError):
            ring.subscriber()
        self.assertEqual(shmring.open(ring.key, kind="slots").slot_size, 8)


if __name__ == "__main__":
    unittest.main(verbosity=2)
