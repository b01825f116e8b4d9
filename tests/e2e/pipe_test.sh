#!/usr/bin/env bash
# Random bytes through shm-produce -> shm-consume between two processes:
# the sha256 of what comes out must equal the sha256 of what went in.
#   pipe_test.sh PRODUCE CONSUME RING MIB CAPACITY consumer-first|producer-first [WAIT]
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
MIB=$4 CAPACITY=$5 ORDER=$6 WAIT=${7:-futex}
log "$MIB MiB of random bytes through a $CAPACITY ring $KEY ($WAIT), $ORDER"

check_wait() {  # the ring was created with the wait strategy asked for
  "$SHMRING" info --key "$KEY" --json > "$TMP/info.json"
  grep -q "\"wait\":\"$WAIT\"" "$TMP/info.json" || fail "ring info: $(cat "$TMP/info.json")"
}

head -c "${MIB}M" /dev/urandom > "$TMP/in.bin"
want=$(sha256sum < "$TMP/in.bin" | cut -d' ' -f1)

if [ "$ORDER" = consumer-first ]; then
  # The consumer creates the ring and waits for a producer, like a FIFO
  # reader; the producer attaches without --create.
  "$CONSUME" --key "$KEY" --create --capacity "$CAPACITY" --wait "$WAIT" --remove-on-exit \
      --stats-json="$TMP/consume.json" > "$TMP/out.bin" &
  consumer=$!
  wait_attached "$KEY" 1
  check_wait
  "$PRODUCE" --key "$KEY" --stats-json="$TMP/produce.json" < "$TMP/in.bin" \
    || fail "shm-produce exited $?"
else
  # The producer creates the ring, fills it and blocks until a consumer
  # comes (one that was never there is waited for, not "gone").
  "$PRODUCE" --key "$KEY" --create --capacity "$CAPACITY" --wait "$WAIT" \
      --stats-json="$TMP/produce.json" < "$TMP/in.bin" &
  producer=$!
  wait_attached "$KEY" 1
  check_wait
  "$CONSUME" --key "$KEY" --remove-on-exit --stats-json="$TMP/consume.json" \
      > "$TMP/out.bin" &
  consumer=$!
  wait "$producer" || fail "shm-produce exited $?"
fi
wait "$consumer" || fail "shm-consume exited $?"

got=$(sha256sum < "$TMP/out.bin" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "sha256 differs: in $want, out $got ($(stat -c %s "$TMP/out.bin") bytes out)"

# The stats agree with the data: every byte counted once on each side.
bytes=$((MIB * 1024 * 1024))
grep -q "\"bytes\":$bytes," "$TMP/produce.json" || fail "produce stats: $(cat "$TMP/produce.json")"
grep -q "\"bytes\":$bytes," "$TMP/consume.json" || fail "consume stats: $(cat "$TMP/consume.json")"
grep -q '"end":"end_of_stream"' "$TMP/consume.json" || fail "consume stats: $(cat "$TMP/consume.json")"

expect_no_leak
echo "PASS: $MIB MiB, sha256 $want"
