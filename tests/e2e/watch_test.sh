#!/usr/bin/env bash
# shm-ring watch: exact counts of records nobody released yet, rates of a
# paced stream through a live consumer against the pacer's own rate and
# shm-produce's --stats-json, one parsable JSON object per line, exit 3
# when the watched ring is removed, 10 (and no hang) on a corrupt ring, a
# corrupt ring reported as such by --all while the others go on, exit 0 on
# SIGINT and SIGTERM.
#   watch_test.sh PRODUCE CONSUME RING SHMPOKE
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
POKE=$(realpath "$4")
K1=$KEY
K2=$(printf '0x%08x' $((KEY + 1)))
K3=$(printf '0x%08x' $((KEY + 2)))
K4=$(printf '0x%08x' $((KEY + 3)))
K5=$(printf '0x%08x' $((KEY + 4)))
KEYS+=("$K2" "$K3" "$K4" "$K5")

# py FILE EXPR: a Python expression over `rings`, the list of ring objects
# of key KEYSEL in every JSON line of FILE (each line must parse).
py() {
  python3 - "$@" << 'EOF'
import json, sys
path, key, expr = sys.argv[1], sys.argv[2], sys.argv[3]
lines = [json.loads(l) for l in open(path) if l.strip()]
rings = [r for l in lines for r in l["rings"] if r["key"] == key]
print(eval(expr))
EOF
}
expect_py() {  # expect_py FILE KEY EXPR WANT
  local got
  got=$(py "$1" "$2" "$3")
  [ "$got" = "$4" ] || { cat "$1" >&2; fail "$3 = '$got', expected '$4'"; }
}
# Waits (60 s at most) until EXPR over the watch's JSON lines prints True.
wait_py() {  # wait_py FILE KEY EXPR
  local end=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$end" ]; do
    [ "$(py "$1" "$2" "$3" 2> /dev/null)" = True ] && return 0
    sleep 0.1
  done
  cat "$1" >&2
  fail "never: $3"
}

# ---- Exact: records nobody has released yet are counted exactly, and so
# are the consumer's once it reads them. The watch starts first.
payload=$(seq 1 500 | tr -d '\n' | wc -c)
for kind in spsc mpsc; do
  "$SHMRING" create --key "$K1" --capacity 1M --kind "$kind" > /dev/null
  "$SHMRING" watch --key "$K1" --json --interval 0.2 > "$TMP/exact.jsonl" &
  watch=$!
  wait_nattach "$K1" 1
  seq 1 500 | "$PRODUCE" --key "$K1" --framing lines
  wait_py "$TMP/exact.jsonl" "$K1" 'sum(r["in"]["records"] for r in rings) >= 500'
  "$CONSUME" --key "$K1" > "$TMP/exact.out"
  wait_py "$TMP/exact.jsonl" "$K1" 'sum(r["out"]["records"] for r in rings) >= 500'
  kill -INT "$watch"
  expect_job 0 "$watch" "$kind: watch after SIGINT"
  expect_py "$TMP/exact.jsonl" "$K1" 'sum(r["in"]["records"] for r in rings), sum(r["in"]["bytes"] for r in rings)' "(500, $payload)"
  expect_py "$TMP/exact.jsonl" "$K1" 'sum(r["out"]["records"] for r in rings), sum(r["out"]["bytes"] for r in rings)' "(500, $payload)"
  expect_py "$TMP/exact.jsonl" "$K1" 'all(r["in"]["records_exact"] and r["out"]["records_exact"] for r in rings)' True
  expect_py "$TMP/exact.jsonl" "$K1" 'rings[-1]["lag_records"], rings[-1]["lag_bytes"], rings[-1]["kind"]' "(0, 0, '$kind')"
  expect_py "$TMP/exact.jsonl" "$K1" 'set(rings[0]) >= {"in", "out", "fill_percent", "producers", "wait", "consumer"}' True
  "$SHMRING" rm --key "$K1" > /dev/null
done

# ---- Rates: a stream paced by the test (100-byte lines at 2000 lines/s
# for 3 s) through a live consumer. The pacer reports what it really wrote
# and over how long, so the check does not depend on this machine's speed.
pace() {
  python3 - "$TMP/pacer.txt" << 'EOF'
import sys, time
line = b"x" * 99 + b"\n"
out = sys.stdout.buffer
rate, secs, n = 2000.0, 3.0, 0
t0 = time.monotonic()
while time.monotonic() - t0 < secs:
    due = int((time.monotonic() - t0) * rate)
    if due > n:
        out.write(line * (due - n)); out.flush(); n = due
    time.sleep(0.002)
open(sys.argv[1], "w").write("%d %f\n" % (n, time.monotonic() - t0))
EOF
}
"$SHMRING" create --key "$K1" --capacity 64K > /dev/null
"$CONSUME" --key "$K1" --stats-json="$TMP/consume.json" > /dev/null &
consumer=$!
wait_attached "$K1" 1
"$SHMRING" watch --key "$K1" --json --interval 0.5 > "$TMP/rates.jsonl" &
watch=$!
wait_nattach "$K1" 2
pace | "$PRODUCE" --key "$K1" --framing lines --stats-json="$TMP/produce.json"
expect_job_within 30 0 "$consumer" "consumer of the paced stream"
# One report after the stream ended, then SIGTERM.
n=$(wc -l < "$TMP/rates.jsonl")
wait_py "$TMP/rates.jsonl" "$K1" "len(rings) > $n"
kill -TERM "$watch"
expect_job 0 "$watch" "watch after SIGTERM"
read -r lines secs < "$TMP/pacer.txt"
records=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records"])' "$TMP/produce.json")
[ "$records" -eq "$lines" ] || fail "shm-produce counted $records records, the pacer wrote $lines"
# Totals: the watch saw the whole stream, within 20% where it estimated.
expect_py "$TMP/rates.jsonl" "$K1" \
  "abs(sum(r['in']['records'] for r in rings) - $records) <= 0.2 * $records" True
expect_py "$TMP/rates.jsonl" "$K1" \
  "abs(sum(r['out']['records'] for r in rings) - $records) <= 0.2 * $records" True
expect_py "$TMP/rates.jsonl" "$K1" \
  "abs(sum(r['in']['bytes'] for r in rings) - 99 * $records) <= 0.2 * 99 * $records" True
# Rates: the median of the intervals inside the stream within a factor of
# 2 of the pacer's real rate (records and payload bytes).
rate_check() {  # rate_check FIELD PER_RECORD
  py "$TMP/rates.jsonl" "$K1" "
(lambda v: v[len(v) // 2] / ($lines / $secs * $2))(sorted(r['in']['$1'] for r in rings if r['in']['records'] > 0)[1:-1] or [0])"
}
for check in "records_per_s 1" "bytes_per_s 99"; do
  # shellcheck disable=SC2086
  ratio=$(rate_check $check)
  python3 -c "import sys; sys.exit(not 0.5 <= float(sys.argv[1]) <= 2)" "$ratio" ||
    { cat "$TMP/rates.jsonl" "$TMP/pacer.txt" >&2; fail "watch ${check%% *} / pacer = $ratio"; }
  log "ok: watch ${check%% *} / pacer's rate = $ratio"
done
"$SHMRING" rm --key "$K1" > /dev/null

# ---- A ring removed while watched: exit 3 and say so. Text mode, not a
# terminal: appended tables.
"$SHMRING" create --key "$K2" --capacity 4K > /dev/null
"$SHMRING" watch --key "$K2" --interval 0.1 > "$TMP/removed.out" 2> "$TMP/removed.err" &
watch=$!
wait_nattach "$K2" 1
wait_for_size "$TMP/removed.out" 100
"$SHMRING" rm --key "$K2" > /dev/null
expect_job_within 10 3 "$watch" "watch of a removed ring"
expect_grep "ring $K2 was removed while watched" "$TMP/removed.err"
expect_grep "^$K2 .*spsc" "$TMP/removed.out"
# SIGTERM of a watch --all: exit 0.
"$SHMRING" watch --all --interval 0.1 > "$TMP/all.out" &
watch=$!
wait_for_size "$TMP/all.out" 10
kill -TERM "$watch"
expect_job_within 10 0 "$watch" "watch --all after SIGTERM"

# ---- Hostile segments. K3: a tail no correct producer writes (not
# aligned); K5: a record claimed with a zero header; K4: a header that does
# not match the segment. --key: exit 10 (5 for K4, which is not a valid
# ring), bounded; --all: each reported, the healthy K1 goes on.
for k in "$K1" "$K3" "$K4" "$K5"; do
  "$SHMRING" create --key "$k" --capacity 4K > /dev/null
done
"$POKE" set "$K3" tail 12
"$POKE" set "$K5" tail 64
"$POKE" set "$K4" capacity 12345
expect_exit 10 "ring $K3 is corrupt: positions" "$SHMRING" watch --key "$K3" --interval 0.1
expect_exit 10 "ring $K5 is corrupt: a record header" "$SHMRING" watch --key "$K5" --interval 0.1
expect_exit 5 "segment $K4 header says capacity 12345" "$SHMRING" watch --key "$K4" --interval 0.1
expect_exit 0 "" "$SHMRING" watch --all --json --interval 0.2 --count 2
cp "$TMP/stdout" "$TMP/all.jsonl"
expect_py "$TMP/all.jsonl" "$K3" '[r["state"] for r in rings]' "['corrupt', 'corrupt']"
expect_py "$TMP/all.jsonl" "$K5" '[r["state"] for r in rings]' "['corrupt', 'corrupt']"
expect_py "$TMP/all.jsonl" "$K4" '[r["state"] for r in rings]' "['corrupt', 'corrupt']"
expect_py "$TMP/all.jsonl" "$K4" '"12345" in rings[0]["error"]' True
expect_py "$TMP/all.jsonl" "$K1" '[(r["state"], r["kind"]) for r in rings]' "[('idle', 'spsc'), ('idle', 'spsc')]"
# A read-only watcher wrote nothing: K3's tail is still the poked one.
[ "$("$POKE" get "$K3" tail)" = 12 ] || fail "the watch wrote to K3"
for k in "$K1" "$K3" "$K4" "$K5"; do "$SHMRING" rm --key "$k" --force > /dev/null; done

# Usage: --all excludes an address.
expect_exit 2 "excludes" "$SHMRING" watch --all --key "$K1"
expect_no_leak
echo "PASS: shm-ring watch"
