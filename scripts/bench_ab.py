#!/usr/bin/env python3
"""Before/after of one change: two shm-bench binaries, interleaved.

    scripts/bench_ab.py BEFORE AFTER [PAIRS]

Per pair it runs each group below once with BEFORE and once with AFTER
(the order alternates from pair to pair), and prints, per row, the median
and interquartile range of the ratios after/before (for latency rows a
ratio below 1 is better). Build the two binaries with `bazel build -c opt
//bench:shm-bench` at the two commits and copy them out first. Check the
machine is quiet (scripts/bench_pairs.py check) before trusting it.
"""
import json
import statistics
import subprocess
import sys
import tempfile

GROUPS = [
    (["--only", "rigtorp", "--peers", "shmring-queue", "shmring-batched",
      "rigtorp-design-limit"], "ops_per_s"),
    (["--only", "throughput", "--sizes", "8", "--peers", "shmring",
      "shmring-per-record", "shmring-queue", "lockfree-spsc-shm",
      "--no-unpinned"], "records_per_s"),
    (["--only", "latency", "--peers", "shmring-spin"], "rtt_p50_ns"),
    (["--only", "mpsc", "--peers", "shmring-mpsc"], "records_per_s"),
]


def run(binary, args, metric):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([binary] + args + ["--reps", "1", "--duration", "0.5",
                                          "--json", out.name],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
        try:
            d = json.load(open(out.name))
        except ValueError:
            return {}
    rows = d["rows"] if isinstance(d, dict) else d
    return {r["id"]: r["metrics"][metric]["median"] for r in rows
            if r.get("ok") and metric in r.get("metrics", {})}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    before, after = sys.argv[1], sys.argv[2]
    pairs = int(sys.argv[3]) if len(sys.argv) > 3 else 11
    ratios = {}
    for i in range(pairs):
        for args, metric in GROUPS:
            order = [(before, "a"), (after, "b")]
            if i % 2:
                order.reverse()
            got = {tag: run(binary, args, metric) for binary, tag in order}
            for k, a in got["a"].items():
                if k in got["b"] and a:
                    ratios.setdefault(k, []).append(got["b"][k] / a)
    for k, v in sorted(ratios.items()):
        q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0], v[0], v[0]]
        print(f"{k}: after/before median {statistics.median(v):.3f} "
              f"(IQR {q[0]:.3f}-{q[2]:.3f}, {len(v)} pairs)")


if __name__ == "__main__":
    main()
