"""What the Python tests share: the suite's key scheme and a TestCase that
creates rings under fresh keys and checks, in tearDown, that each is gone."""
import os
import unittest

import shmring

_next = [0]


def unique_key():
    """The suite's key scheme (tests/support.h): 0x5e, 16 bits of this
    process's pid, then 8 bits counted here."""
    _next[0] += 1
    assert _next[0] <= 0xFF, "this process's key block is used up"
    return 0x5E000000 | ((os.getpid() & 0xFFFF) << 8) | _next[0]


class RingTest(unittest.TestCase):
    def setUp(self):
        self.keys = []

    def make(self, **kw):
        key = unique_key()
        self.keys.append(key)
        return shmring.open(key, create="exclusive", **kw)

    def tearDown(self):
        for key in self.keys:
            try:
                shmring.remove(key)
            except shmring.NotFoundError:
                pass
            with self.assertRaises(shmring.NotFoundError):
                shmring.open(key)  # nothing left behind
