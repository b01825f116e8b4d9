"""64-byte records per second from one Python process to another: shmring
(read() copies into bytes, iteration gives memoryviews) against
multiprocessing.Queue and os.pipe, all in the same run with the same
interpreter. Prints a table of median rates over --reps runs; compare the
rows with each other, not with other machines or runs.

  PYTHONPATH=bazel-bin/python python3 scripts/py_bench.py [--records N]
"""
import argparse
import multiprocessing
import os
import statistics
import time

import shmring

SIZE = 64


def run_shmring(n, iterate):
    key = 0x5EB00000 | (os.getpid() & 0xFFFFF)
    ring = shmring.open(key, create="exclusive", capacity=1 << 20)
    try:
        consumer = ring.consumer()
        pid = os.fork()
        if pid == 0:  # the producer process
            try:
                payload = bytes(SIZE)
                with shmring.open(key).producer() as p:
                    write = p.write
                    for _ in range(n):
                        write(payload)
            finally:
                os._exit(0)
        start = time.perf_counter()
        got = 0
        if iterate:
            for rec in consumer:
                got += 1
        else:
            read = consumer.read
            while read() is not None:
                got += 1
        elapsed = time.perf_counter() - start
        os.waitpid(pid, 0)
        consumer.close()
        assert got == n, (got, n)
        return n / elapsed
    finally:
        ring.remove()


def _queue_producer(q, n):
    payload = bytes(SIZE)
    for _ in range(n):
        q.put(payload)
    q.put(None)


def run_queue(n):
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    child = ctx.Process(target=_queue_producer, args=(q, n))
    start = time.perf_counter()
    child.start()
    got = 0
    while q.get() is not None:
        got += 1
    elapsed = time.perf_counter() - start
    child.join()
    assert got == n
    return n / elapsed


def run_pipe(n):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            payload = bytes(SIZE)
            for _ in range(n):
                os.write(w, payload)  # one write per record
        finally:
            os._exit(0)
    os.close(w)
    start = time.perf_counter()
    got = 0
    buf = bytearray(SIZE)
    view = memoryview(buf)
    while True:  # one record = exactly SIZE bytes
        have = 0
        while have < SIZE:
            k = os.readv(r, [view[have:]])
            if k == 0:
                break
            have += k
        if have < SIZE:
            break
        got += 1
    elapsed = time.perf_counter() - start
    os.waitpid(pid, 0)
    os.close(r)
    assert got == n, (got, n)
    return n / elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    rows = [
        ("shmring read() -> bytes", lambda: run_shmring(args.records, False)),
        ("shmring iteration (memoryview)",
         lambda: run_shmring(args.records, True)),
        ("multiprocessing.Queue", lambda: run_queue(args.records)),
        ("os.pipe (64 B write/read)", lambda: run_pipe(args.records)),
    ]
    print(f"# {args.records} records of {SIZE} B, producer and consumer "
          f"processes, median of {args.reps}; load {os.getloadavg()[0]:.2f}")
    results = {}
    for _ in range(args.reps):  # interleaved: load drifts hit every row
        for name, fn in rows:
            results.setdefault(name, []).append(fn())
    base = statistics.median(results["multiprocessing.Queue"])
    print(f"{'transport':34} {'records/s':>12} {'x Queue':>8}")
    for name, _ in rows:
        rate = statistics.median(results[name])
        print(f"{name:34} {rate:12,.0f} {rate / base:8.1f}")
    print(f"# load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
