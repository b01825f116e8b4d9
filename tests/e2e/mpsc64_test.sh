#!/usr/bin/env bash
# 64 MPSC producers at once through the tools (docs/tools.md: "an MPSC ring
# up to 64 at once"): all 64 hold a slot at the same moment (a 65th exits 9),
# then every line of every producer arrives, each producer's in order.
#   mpsc64_test.sh PRODUCE CONSUME RING
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
P=64
N=2000
for p in $(seq 0 $((P - 1))); do
  awk -v p="$p" -v n="$N" 'BEGIN { for (s = 1; s <= n; s++) printf "p%d %d\n", p, s }' > "$TMP/in.$p"
done
mkfifo "$TMP/gate"

"$CONSUME" --key "$KEY" --create --kind mpsc --capacity 64K --remove-on-exit \
  --framing lines > "$TMP/out" &
consumer=$!
wait_attached "$KEY" 1
# Each producer's input waits for the gate (a fifo opened and closed by this
# shell once all 64 are attached), so all of them are live at once.
pids=()
for p in $(seq 0 $((P - 1))); do
  { cat "$TMP/gate" > /dev/null; cat "$TMP/in.$p"; } |
    "$PRODUCE" --key "$KEY" --kind mpsc --framing lines --timeout 60 &
  pids+=($!)
done
wait_attached "$KEY" $((P + 1))
expect_exit 9 "all 64 producer slots are held by live processes" "$PRODUCE" --key "$KEY" --kind mpsc < /dev/null
exec 9> "$TMP/gate"
exec 9>&-
for pid in "${pids[@]}"; do wait "$pid" || fail "a producer exited $?"; done
expect_job_within 60 0 "$consumer" "consumer of 64 producers"

awk -v n="$N" -v np="$P" '
  { p = substr($1, 2) + 0; s = $2 + 0
    if (s != last[p] + 1) { print "producer " p ": line " s " after " last[p]; bad++ }
    last[p] = s; total++ }
  END {
    for (p = 0; p < np; p++) if (last[p] != n) { print "producer " p " ended at " last[p]; bad++ }
    if (total != n * np) { print "got " total " lines, want " n * np; bad++ }
    exit bad > 0
  }' "$TMP/out" | head -20 >&2
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "lines lost or out of order"

expect_no_leak
echo "PASS: 64 MPSC producers x $N lines"
