#!/usr/bin/env bash
# shm-ring create --kind broadcast --overrun drop-slow: the producer never
# waits. One consumer writes to a file, one to a pipe that stalls until the
# producer is done (so the producer laps it, on any machine). Each
# consumer's output must be whole lines of the input, in order; the lines
# missing are exactly what its --stats-json reports as lost (lost_records,
# and lost_bytes: their payload, without the newline); the producer
# finishes without waiting.
#   broadcast_overrun_test.sh PRODUCE CONSUME RING
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
N=200000
awk -v n="$N" 'BEGIN { srand(17); for (i = 1; i <= n; i++) {
  printf "%08d ", i; k = int(rand() * 60); for (j = 0; j < k; j++) printf "%c", 97 + (i + j) % 26; printf "\n" } }' \
  > "$TMP/in.txt"

live_consumers() {
  "$SHMRING" info --key "$KEY" --json | grep -o '"alive":true,"cursor"' | wc -l
}
"$SHMRING" create --key "$KEY" --kind broadcast --max-consumers 2 --overrun drop-slow \
  --capacity 64K > /dev/null
"$SHMRING" info --key "$KEY" --json | grep -q '"overrun":"drop-slow"' || fail "info: not drop-slow"
"$CONSUME" --key "$KEY" --framing lines --stats-json="$TMP/c0.json" > "$TMP/out.0" &
c0=$!
# The pipe's reader waits at a gate (a fifo) this shell opens once the
# producer has exited.
mkfifo "$TMP/gate"
{ "$CONSUME" --key "$KEY" --framing lines --stats-json="$TMP/c1.json"; echo "rc $?" > "$TMP/c1.rc"; } |
  { read -r _ < "$TMP/gate"; cat > "$TMP/out.1"; } &
c1=$!
wait_attached "$KEY" 2
"$PRODUCE" --key "$KEY" --framing lines --stats-json="$TMP/p.json" < "$TMP/in.txt" &
producer=$!
# It never waits for the stalled consumer: it finishes while the stall
# lasts (the stall ends only after it), and the rest is exact.
expect_job_within 60 0 "$producer" "shm-produce (drop-slow)"
echo go > "$TMP/gate"
expect_job_within 60 0 "$c0" "shm-consume 0"
expect_job_within 60 0 "$c1" "shm-consume 1 | stalled pipe"
grep -q "rc 0" "$TMP/c1.rc" || fail "shm-consume 1: $(cat "$TMP/c1.rc")"

python3 - "$TMP/in.txt" "$TMP" <<'PY' || fail "outputs do not match the input and the reported losses"
import json, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
bad = 0
lapped = 0
for i in (0, 1):
    out = open(f"{sys.argv[2]}/out.{i}", "rb").read()
    st = json.loads(open(f"{sys.argv[2]}/c{i}.json").read().strip().splitlines()[-1])
    got = out.split(b"\n")
    if got and got[-1] == b"":
        got.pop()
    last = 0
    seen = set()
    for g in got:
        n = int(g[:8])
        if n <= last or lines[n - 1] != g:
            print(f"consumer {i}: line {n} after {last} or not the input's line")
            bad += 1
            break
        last = n
        seen.add(n)
    missing = [n for n in range(1, len(lines) + 1) if n not in seen]
    lost_bytes = sum(len(lines[n - 1]) for n in missing)
    print(f"consumer {i}: {len(seen)} lines, {len(missing)} missing, "
          f"stats lost_records={st.get('lost_records')} lost_bytes={st.get('lost_bytes')}")
    if st.get("lost_records") != len(missing) or st.get("lost_bytes") != lost_bytes:
        print(f"consumer {i}: losses reported {st.get('lost_records')}/{st.get('lost_bytes')}, "
              f"missing {len(missing)}/{lost_bytes}")
        bad += 1
    lapped += len(missing) > 0
if lapped == 0:
    print("no consumer was lapped: the stalled pipe did not stall it")
    bad += 1
sys.exit(1 if bad else 0)
PY
[ "$(live_consumers)" -eq 0 ] || fail "cursors still held"
"$SHMRING" rm --key "$KEY" > /dev/null
expect_no_leak
echo "PASS: drop-slow, losses counted exactly"
