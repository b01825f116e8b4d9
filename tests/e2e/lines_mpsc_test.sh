#!/usr/bin/env bash
# 4 producers x 200,000 lines into one MPSC ring at once, --framing lines.
# Every line must come out intact (never split, never interleaved with
# another producer's) and each producer's lines in order.
#   lines_mpsc_test.sh PRODUCE CONSUME RING [LINES_PER_PRODUCER]
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
N=${4:-200000}
P=4
log "$P producers x $N lines through MPSC ring $KEY"

# Line: "p<producer> <seq> <seq % 97 copies of the producer's letter>" so a
# torn or interleaved line cannot look valid.
for p in $(seq 0 $((P - 1))); do
  awk -v p="$p" -v n="$N" 'BEGIN {
    c = substr("abcd", p + 1, 1); pad = ""
    for (i = 0; i < 97; i++) pad = pad c
    for (s = 1; s <= n; s++) printf "p%d %d %s\n", p, s, substr(pad, 1, s % 97)
  }' > "$TMP/in.$p"
done

"$CONSUME" --key "$KEY" --create --kind mpsc --capacity 64K --remove-on-exit \
    --framing lines --stats-json="$TMP/c.json" > "$TMP/out" &
consumer=$!
wait_attached "$KEY" 1

# Each producer's input waits for a gate (a fifo this shell opens and
# closes once all of them hold their roles): they run at once on any
# machine, and none can finish (ending the stream) before the last attached.
mkfifo "$TMP/gate"
pids=()
for p in $(seq 0 $((P - 1))); do
  { cat "$TMP/gate" > /dev/null; cat "$TMP/in.$p"; } |
    "$PRODUCE" --key "$KEY" --kind mpsc --framing lines --stats-json="$TMP/p$p.json" &
  pids+=($!)
done
wait_attached "$KEY" $((P + 1))
exec {gate}> "$TMP/gate"
exec {gate}>&-
for pid in "${pids[@]}"; do wait "$pid" || fail "a producer exited $?"; done
wait "$consumer" || fail "shm-consume exited $?"

awk -v n="$N" -v np="$P" '
  {
    split($0, f, " ")
    p = substr(f[1], 2) + 0
    s = f[2] + 0
    c = substr("abcd", p + 1, 1)
    pad = ""
    for (i = 0; i < s % 97; i++) pad = pad c
    if ($0 != sprintf("p%d %d %s", p, s, pad)) { print "torn line " NR ": " $0; bad++; next }
    if (s != last[p] + 1) { print "producer " p ": line " s " after " last[p]; bad++ }
    last[p] = s
    total++
  }
  END {
    for (p = 0; p < np; p++) if (last[p] != n) { print "producer " p " ended at " last[p]; bad++ }
    if (total != n * np) { print "got " total " lines, want " n * np; bad++ }
    exit bad > 0
  }' "$TMP/out" | head -20 >&2
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "lines torn, lost or out of order"

# Stats: each producer counted its stdin, the consumer its stdout.
total=0
for p in $(seq 0 $((P - 1))); do
  size=$(stat -c %s "$TMP/in.$p")
  total=$((total + size))
  grep -q "\"bytes\":$size,.*\"records\":$N," "$TMP/p$p.json" || fail "producer $p stats: $(cat "$TMP/p$p.json")"
done
grep -q "\"bytes\":$total,.*\"records\":$((P * N))," "$TMP/c.json" || fail "consumer stats: $(cat "$TMP/c.json")"

# The producers interleaved at line granularity (else this tested little).
# One producer after the other would give exactly $P switches; 10 MB each
# through a 64 KiB ring cannot come out that way unless the producers were
# not concurrent.
switches=$(awk '{ p = $1; if (p != prev) n++; prev = p } END { print n }' "$TMP/out")
log "producer switches in the output: $switches"
[ "$switches" -gt $((2 * P)) ] || fail "only $switches producer switches: the producers did not interleave"

expect_no_leak
echo "PASS: $((P * N)) lines intact and in order per producer"
