#!/usr/bin/env python3
"""The targets of docs/benchmarks.md, measured pair by pair, and the check
that the machine is quiet enough to measure them.

    bench_pairs.py check [--force] [--settle S]
    bench_pairs.py run --shm-bench BIN --tools-dir DIR --out FILE
                       [--pairs N] [--quick] [--force] [--settle S]
                       [--command TEXT]

check: exit 0 if the machine is quiet, 3 if it is busy (with --force: 0,
and the output says it was forced and why). run: the same check first,
then the pairs; writes FILE (JSON) and prints the targets table.

Quiet means both of:
  - the 1-minute load average is at most 0.5 per online CPU (waited for up
    to --settle seconds, polling every 5 s: a build just before raises it);
  - a calibration spin, one process pinned to each usable CPU running the
    same fixed loop twice at once: on every CPU the slower run takes at most
    1.3x the faster, and no run's wall time exceeds 1.3x its CPU time (a run
    that waits for its CPU is slow on the wall clock only).

Method: each target is a ratio A / B of one metric of two shm-bench rows.
A pair is one shm-bench run of A's row (--reps 1) and then one of B's;
pairs repeat A B A B ... (at least 11, default 15; --quick: 3 with
shm-bench --smoke, a check of the pipeline whose numbers mean nothing).
Every pair gives one ratio; a target reports the median and the
interquartile range (IQR, 25th-75th percentile) of its ratios. Verdicts:
"met" if the median and the whole IQR meet the goal, "noisy" if the IQR
straddles the goal, "missed" if the median and the IQR miss it. A target
whose row shm-bench does not have is "not measured", with the row's id.

Recorded with the results: the full CPU model string (/proc/cpuinfo "model
name", family, model, stepping), online CPUs, kernel, the load at the
start and the end, the calibration spin, the exact command line, and
whether the check was forced and why.
"""

import argparse
import json
import multiprocessing
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time

MAX_LOAD_PER_CPU = 0.5
MAX_SPIN_SPREAD = 1.3
MIN_PAIRS = 11
SPIN_LOOPS = 3_000_000

# (name, goal, higher is better, metric, A (shm-bench args, row id),
#  B (shm-bench args, row id)). Row ids are shm-bench's (group/peer/...).
RIG = ["--only", "rigtorp", "--peers"]
TP8 = ["--only", "throughput", "--sizes", "8", "--peers"]
TARGETS = [
    ("rigtorp method: Queue<int> / rigtorp::SPSCQueue's algorithm, ops/s",
     1.1, True, "ops_per_s",
     (RIG + ["shmring-queue"], "rigtorp/shmring-queue/threads-pinned"),
     (RIG + ["rigtorp-design-limit"], "rigtorp/rigtorp-design-limit/threads-pinned")),
    ("rigtorp method: batched records / rigtorp::SPSCQueue's algorithm, ops/s",
     1.5, True, "ops_per_s",
     (RIG + ["shmring-batched"], "rigtorp/shmring-batched/threads-pinned"),
     (RIG + ["rigtorp-design-limit"], "rigtorp/rigtorp-design-limit/threads-pinned")),
    ("8 B records: per-record commit()/release() / Boost.Lockfree, processes",
     1.2, True, "records_per_s",
     (TP8 + ["shmring-per-record"], "throughput/shmring-per-record/8/pinned"),
     (TP8 + ["lockfree-spsc-shm"], "throughput/lockfree-spsc-shm/8/pinned")),
    ("Spinning RTT p50, 64 B records / raw cache-line ping-pong",
     2.0, False, "rtt_p50_ns",
     (["--only", "latency", "--peers", "shmring-spin"], "latency/shmring-spin/pinned"),
     (["--only", "limits", "--peers", "cacheline-pingpong"],
      "limits/cacheline-pingpong/pinned")),
    ("Tools: shm-produce | shm-consume / cat | cat, bytes/s",
     5.0, True, "bytes_per_s",
     (["--only", "tools", "--peers", "shm-produce+shm-consume"],
      "tools/shm-produce+shm-consume/pinned"),
     (["--only", "tools", "--peers", "cat|cat"], "tools/cat|cat/pinned")),
]


# ------------------------------------------------------------------ machine


def cpuinfo():
    want = {"model name": "cpu_model", "cpu family": "cpu_family",
            "model": "cpu_model_number", "stepping": "stepping"}
    out = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" not in line:
                    if out:
                        break  # the first CPU's block is enough
                    continue
                k, v = line.split(":", 1)
                k = k.strip()
                if k in want and want[k] not in out:
                    out[want[k]] = v.strip()
    except OSError:
        pass
    return out


def machine():
    m = cpuinfo()
    m["online_cpus"] = os.cpu_count()
    m["usable_cpus"] = sorted(os.sched_getaffinity(0))
    m["kernel"] = "%s %s" % (platform.system(), platform.release())
    return m


def spin_once():
    w0, c0 = time.perf_counter(), time.thread_time()
    x = 0
    for i in range(SPIN_LOOPS):
        x += i
    return time.perf_counter() - w0, time.thread_time() - c0


def spin_on(cpu, out):
    os.sched_setaffinity(0, {cpu})
    out.put((cpu, [spin_once(), spin_once()]))


def calibration_spin():
    """Each usable CPU runs the fixed loop twice, all CPUs at once. Returns
    (ok, details)."""
    cpus = sorted(os.sched_getaffinity(0))
    q = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=spin_on, args=(c, q)) for c in cpus]
    for p in procs:
        p.start()
    runs = dict(q.get() for _ in procs)
    for p in procs:
        p.join()
    details, ok = [], True
    for cpu in cpus:
        walls = [w for w, _ in runs[cpu]]
        spread = max(walls) / min(walls)
        stolen = max(w / c if c > 0 else float("inf") for w, c in runs[cpu])
        bad = spread > MAX_SPIN_SPREAD or stolen > MAX_SPIN_SPREAD
        ok = ok and not bad
        details.append({"cpu": cpu, "wall_s": walls,
                        "cpu_s": [c for _, c in runs[cpu]],
                        "slower_over_faster": round(spread, 3),
                        "wall_over_cpu": round(stolen, 3), "ok": not bad})
    return ok, details


def check(settle, force):
    """The quiet-machine check; returns its record (ok, reasons, ...)."""
    ncpu = os.cpu_count() or 1
    deadline = time.monotonic() + settle
    while True:
        load = os.getloadavg()
        if load[0] / ncpu <= MAX_LOAD_PER_CPU or time.monotonic() >= deadline:
            break
        time.sleep(5)
    reasons = []
    if load[0] / ncpu > MAX_LOAD_PER_CPU:
        reasons.append("1-minute load %.2f on %d CPUs is above %.1f per CPU"
                       % (load[0], ncpu, MAX_LOAD_PER_CPU))
    spin_ok, spins = calibration_spin()
    for s in spins:
        if not s["ok"]:
            reasons.append("calibration spin on CPU %d: slower run %.2fx the "
                           "faster, wall %.2fx CPU time (limit %.1fx)"
                           % (s["cpu"], s["slower_over_faster"],
                              s["wall_over_cpu"], MAX_SPIN_SPREAD))
    rec = {"ok": not reasons, "forced": bool(reasons) and force,
           "reasons": reasons, "load_avg": list(load),
           "max_load_per_cpu": MAX_LOAD_PER_CPU, "spin": spins,
           "spin_limit": MAX_SPIN_SPREAD}
    return rec


def report_check(rec):
    if rec["ok"]:
        print("bench: the machine is quiet (load %.2f, calibration spin within "
              "%.1fx)" % (rec["load_avg"][0], MAX_SPIN_SPREAD), file=sys.stderr)
    elif rec["forced"]:
        print("bench: FORCED on a busy machine (--force): %s"
              % "; ".join(rec["reasons"]), file=sys.stderr)
    else:
        print("bench: refusing to measure targets on a busy machine: %s. "
              "Run it on an idle machine, or pass --force to record them "
              "anyway (marked as forced)." % "; ".join(rec["reasons"]),
              file=sys.stderr)


# -------------------------------------------------------------------- pairs


# One definition of the statistics and the verdict, shared with the report
# (scripts/plot_bench.py, which sits beside this file).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plot_bench import quantile, verdict  # noqa: E402


def run_side(bench, common, side, tmp):
    args, row_id = side
    out = os.path.join(tmp, "side.json")
    if os.path.exists(out):
        os.unlink(out)
    cmd = [bench] + common + args + ["--json", out]
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
    if not os.path.exists(out):
        return None, "shm-bench exited %d without results: %s" % (
            p.returncode, p.stderr.strip()[-300:])
    rows = {r["id"]: r for r in json.load(open(out))["rows"]}
    r = rows.get(row_id)
    if r is None:
        return None, "shm-bench has no row %s" % row_id
    if r.get("skipped"):
        return None, "row %s skipped: %s" % (row_id, r["skipped"])
    if not r.get("ok"):
        return None, "row %s failed: %s" % (row_id, r.get("error", "?"))
    return r, ""


def measure(bench, tools_dir, pairs, quick, tmp):
    common = ["--reps", "1", "--no-unpinned"]
    if quick:
        common.append("--smoke")
    if tools_dir:
        common += ["--tools-dir", tools_dir]
    common += ["--e2e-file", os.path.join(tmp, "e2e.bin")]
    results = []
    for name, goal, higher, metric, a, b in TARGETS:
        ratios, a_vals, b_vals, why = [], [], [], ""
        for i in range(pairs):
            ra, why = run_side(bench, common, a, tmp)
            if ra is None:
                break
            rb, why = run_side(bench, common, b, tmp)
            if rb is None:
                break
            va = ra["metrics"][metric]["median"]
            vb = rb["metrics"][metric]["median"]
            a_vals.append(va)
            b_vals.append(vb)
            ratios.append(va / vb if vb else float("inf"))
        t = {"target": name, "goal": goal, "higher_is_better": higher,
             "metric": metric, "a_row": a[1], "b_row": b[1],
             "a": a_vals, "b": b_vals, "ratios": ratios}
        if why:
            t.update({"verdict": "not measured", "why": why})
        else:
            s = sorted(ratios)
            t.update({"median": quantile(s, 0.5), "q1": quantile(s, 0.25),
                      "q3": quantile(s, 0.75), "pairs": len(ratios)})
            t["verdict"] = verdict(t["median"], t["q1"], t["q3"], goal, higher)
        results.append(t)
        print("bench: %-75s %s" % (name, format_target(t)), file=sys.stderr)
    return results


def format_target(t):
    if t["verdict"] == "not measured":
        return "not measured (%s)" % t["why"]
    return "%.2fx (IQR %.2f-%.2f, %d pairs) goal %s %.1fx: %s" % (
        t["median"], t["q1"], t["q3"], t["pairs"],
        ">=" if t["higher_is_better"] else "<=", t["goal"], t["verdict"])


# --------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["check", "run"])
    ap.add_argument("--shm-bench", help="the shm-bench binary (run)")
    ap.add_argument("--tools-dir", default="",
                    help="directory of shm-produce and shm-consume (run)")
    ap.add_argument("--out", help="where run writes its JSON")
    ap.add_argument("--pairs", type=int, default=None,
                    help="A/B pairs per target (default 15; --quick 3; at "
                    "least %d unless --quick)" % MIN_PAIRS)
    ap.add_argument("--quick", action="store_true",
                    help="3 pairs of shm-bench --smoke runs: checks the "
                    "pipeline, the numbers mean nothing")
    ap.add_argument("--force", action="store_true",
                    help="measure even on a busy machine (recorded as forced)")
    ap.add_argument("--settle", type=float, default=0,
                    help="seconds to wait for the load average to settle")
    ap.add_argument("--command", default=None,
                    help="the command line to record (default: this one)")
    o = ap.parse_args()

    command = o.command or " ".join(shlex.quote(a) for a in sys.argv)
    rec = check(o.settle, o.force)
    report_check(rec)
    if o.mode == "check":
        return 0 if rec["ok"] or rec["forced"] else 3
    if not rec["ok"] and not rec["forced"]:
        return 3
    if not o.shm_bench or not o.out:
        ap.error("run needs --shm-bench and --out")
    pairs = o.pairs if o.pairs is not None else (3 if o.quick else 15)
    if pairs < MIN_PAIRS and not o.quick:
        ap.error("--pairs must be at least %d (or --quick)" % MIN_PAIRS)
    if pairs < 1:
        ap.error("--pairs must be at least 1")

    started = time.time()
    tmp = tempfile.mkdtemp(prefix="bench-pairs-")
    try:
        targets = measure(o.shm_bench, o.tools_dir, pairs, o.quick, tmp)
    finally:
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    d = {"method": "pairwise", "quick": o.quick, "pairs": pairs,
         "command": command, "machine": machine(), "check": rec,
         "load_at_start": rec["load_avg"], "load_at_end": list(os.getloadavg()),
         "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
         "elapsed_s": round(time.time() - started, 1), "targets": targets}
    with open(o.out, "w") as f:
        json.dump(d, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
