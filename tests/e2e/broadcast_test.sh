#!/usr/bin/env bash
# Broadcast through the tools: three shm-consume processes on one broadcast ring
# each write the 64 MiB stream byte-exact; with `kill`, one of them is
# killed -9 mid-stream and the producer and the other two go on and finish
# byte-exact; nothing leaks.
#   broadcast_test.sh PRODUCE CONSUME RING MIB none|kill
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
MIB=$4 MODE=$5
log "$MIB MiB broadcast to 3 consumers on ring $KEY ($MODE)"

# live_consumers: cursors whose holder is alive, from shm-ring info --json.
live_consumers() {
  "$SHMRING" info --key "$KEY" --json | grep -o '"alive":true,"cursor"' | wc -l
}

head -c "${MIB}M" /dev/urandom > "$TMP/in.bin"
want=$(sha256sum < "$TMP/in.bin" | cut -d' ' -f1)

# The ring is made up front and removed at the end: a consumer's
# --remove-on-exit would take the ring (and its role semaphores) away from
# the others when the first one finishes.
"$SHMRING" create --key "$KEY" --kind broadcast --max-consumers 3 --capacity 1M \
  > /dev/null
pids=()
for i in 0 1 2; do
  "$CONSUME" --key "$KEY" --kind broadcast --stats-json="$TMP/consume.$i.json" \
    > "$TMP/out.$i" &
  pids+=($!)
done
wait_attached "$KEY" 3
# A fourth subscriber finds every cursor held: exit 9 (role taken).
expect_exit 9 "consumers" "$CONSUME" --key "$KEY" --timeout 1

# The producer reads a fifo this shell writes: with `kill`, the stream holds
# at a quarter of the input until consumer 1 is killed.
source_open src
"$PRODUCE" --key "$KEY" --stats-json="$TMP/produce.json" < "$TMP/src" &
producer=$!
source_attach src
total=$(( MIB * 1024 * 1024 ))
survivors=(0 1 2)
if [ "$MODE" = kill ]; then
  # Mid-stream: consumer 1 has written the first quarter, and the producer
  # has no more input until it is killed.
  source_feed "$TMP/in.bin" 0 $(( total / 4 ))
  wait_for_size "$TMP/out.1" $(( total / 4 ))
  kill -KILL "${pids[1]}"
  rc=0; wait "${pids[1]}" || rc=$?
  [ "$rc" -eq 137 ] || fail "killed consumer: exit $rc, expected 137"
  survivors=(0 2)
  log "killed consumer 1 after $(stat -c %s "$TMP/out.1") bytes"
  source_feed "$TMP/in.bin" $(( total / 4 )) "$total"
else
  source_feed "$TMP/in.bin" 0 "$total"
fi
source_close
expect_job_within 120 0 "$producer" "shm-produce"
for i in "${survivors[@]}"; do
  expect_job_within 60 0 "${pids[$i]}" "shm-consume $i"
  got=$(sha256sum < "$TMP/out.$i" | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "consumer $i: sha256 differs ($(stat -c %s "$TMP/out.$i") bytes out)"
  grep -q "\"bytes\":$total," "$TMP/consume.$i.json" ||
    fail "consume $i stats: $(cat "$TMP/consume.$i.json")"
  grep -q '"end":"end_of_stream"' "$TMP/consume.$i.json" ||
    fail "consume $i stats: $(cat "$TMP/consume.$i.json")"
done
if [ "$MODE" = kill ]; then
  # What the killed one wrote is the quarter the stream held at.
  cmp -n $(( total / 4 )) "$TMP/in.bin" "$TMP/out.1" || fail "killed consumer's output is not the first quarter"
  [ "$(stat -c %s "$TMP/out.1")" -eq $(( total / 4 )) ] || fail "killed consumer wrote past the held point"
fi
grep -q "\"bytes\":$total," "$TMP/produce.json" ||
  fail "produce stats: $(cat "$TMP/produce.json")"
# Every cursor is free again (two closed, the killed one reaped).
[ "$(live_consumers)" -eq 0 ] || fail "cursors still held: $("$SHMRING" info --key "$KEY")"
"$SHMRING" rm --key "$KEY" > /dev/null
expect_no_leak
echo "PASS: $MIB MiB to ${#survivors[@]} consumers byte-exact ($MODE), sha256 $want"
