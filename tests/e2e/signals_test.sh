#!/usr/bin/env bash
# Peers that go away mid-stream: SIGTERM/SIGINT on either side (exit
# 143/130, nothing committed lost; a second signal abandons the batch), a
# producer killed -9 (consumer exits 6
# after draining), a consumer gone (producer exits 6), `| head -1` (exit
# 11, unwritten records stay for the next consumer) and --follow.
#   signals_test.sh PRODUCE CONSUME RING
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
mkfifo "$TMP/fifo"
lines() { wc -l < "$1" | tr -d ' '; }

# --- Consumer SIGTERM while data flows: it finishes the batch it is writing,
# releases it and exits 143; a second consumer gets exactly the rest. The
# stream is held mid-way: the producer reads a fifo this shell holds open
# (the stream cannot end before the signal), and the consumer's stdout is a
# fifo this shell reads 1 MiB of and then stops reading, so the consumer is
# stuck writing with the rest of the input behind it, on any machine.
log "consumer SIGTERM mid-stream"
head -c 8M /dev/urandom > "$TMP/in"
mkfifo "$TMP/out1fifo"
"$CONSUME" --key "$KEY" --create --capacity 4K > "$TMP/out1fifo" &
c1=$!
exec 5< "$TMP/out1fifo"
wait_attached "$KEY" 1
"$PRODUCE" --key "$KEY" --wait-consumer < "$TMP/fifo" 5<&- &
producer=$!
exec 3> "$TMP/fifo"
cat "$TMP/in" >&3 5<&- &
writer=$!
: > "$TMP/out1"
read_exactly 60 $((1024 * 1024)) "$TMP/out1" <&5
kill -TERM "$c1"
# The batch it was writing comes out (this shell reads again), then it exits.
cat <&5 >> "$TMP/out1" 3>&- &
reader=$!
expect_job 143 "$c1" "consumer after SIGTERM mid-stream"
expect_job 0 "$reader" "reader of the first consumer's output"
exec 5<&-
log "first consumer: $(stat -c %s "$TMP/out1") bytes"
"$CONSUME" --key "$KEY" --remove-on-exit > "$TMP/out2" 3>&- &
c2=$!
expect_job 0 "$writer" "writer of the producer's input"
exec 3>&-
expect_job 0 "$producer" "producer across two consumers"
expect_job 0 "$c2" "second consumer"
[ -s "$TMP/out2" ] || fail "the first consumer got the whole stream: the signal was not mid-stream"
cat "$TMP/out1" "$TMP/out2" | cmp - "$TMP/in" || fail "out1 + out2 differs from the input"
expect_no_leak

# --- A second signal abandons the batch in hand: a consumer blocked in
# write(2) (its stdout is a fifo this shell stops reading) gets SIGTERM,
# keeps trying to finish the batch, gets a second SIGTERM and exits 143 at
# once without releasing it; the next consumer writes the whole batch again.
# The batch (200 lines of 1005 bytes) is three times what a pipe holds.
log "second signal abandons the batch"
mkfifo "$TMP/outfifo"
exec 4<> "$TMP/outfifo"   # opened, read only below: writes block once it is full
awk 'BEGIN { for (i = 1; i <= 200; i++) printf "%04d%01000d\n", i, 0 }' > "$TMP/big"
"$SHMRING" create --key "$KEY" --capacity 1M > /dev/null
"$PRODUCE" --key "$KEY" --framing lines < "$TMP/big"
"$CONSUME" --key "$KEY" > "$TMP/outfifo" 2> "$TMP/cerr" &
c1=$!
# Its first byte out: the consumer is writing the batch (and stays there).
read_exactly 60 1 "$TMP/drained" <&4
kill -TERM "$c1"
# More than a pipe holds comes out after the signal: it kept writing.
read_exactly 60 100000 "$TMP/drained" <&4
kill -0 "$c1" 2> /dev/null || fail "one signal ended a consumer that still had a batch to write"
kill -TERM "$c1"
expect_job_within 20 143 "$c1" "consumer after a second SIGTERM"
expect_grep "twice while writing; 200 records stay in" "$TMP/cerr"
exec 4<&-
expect_exit 0 "" "$CONSUME" --key "$KEY" --remove-on-exit
cmp "$TMP/stdout" "$TMP/big" || fail "the abandoned batch was not delivered again in full"
expect_no_leak

# --- Consumer SIGINT while blocked waiting for data: exit 130 at once.
log "consumer SIGINT while idle"
"$CONSUME" --key "$KEY" --create --remove-on-exit > /dev/null 2> "$TMP/err" &
c1=$!
wait_attached "$KEY" 1
kill -INT "$c1"
expect_job 130 "$c1" "idle consumer after SIGINT"
expect_no_leak

# --- Producer SIGTERM while blocked reading stdin (lines): exit 143; the
# lines it had committed reach the consumer, which sees end of stream (0);
# the unfinished line is dropped and said so.
log "producer SIGTERM while reading"
"$CONSUME" --key "$KEY" --create --remove-on-exit > "$TMP/out" &
consumer=$!
wait_attached "$KEY" 1
"$PRODUCE" --key "$KEY" --framing lines < "$TMP/fifo" 2> "$TMP/perr" &
producer=$!
exec 3> "$TMP/fifo"
printf 'one\ntwo\nthr' >&3
wait_for_size "$TMP/out" 8
kill -TERM "$producer"
expect_job 143 "$producer" "producer after SIGTERM"
exec 3>&-
expect_grep "unfinished line 3 (3 bytes) was dropped" "$TMP/perr"
expect_job 0 "$consumer" "consumer after the producer's SIGTERM"
[ "$(cat "$TMP/out")" = "$(printf 'one\ntwo')" ] || fail "committed lines: '$(cat "$TMP/out")'"
expect_no_leak

# --- SPSC producer killed -9: the consumer drains, then exits 6.
log "producer killed -9"
"$CONSUME" --key "$KEY" --create --remove-on-exit > "$TMP/out" 2> "$TMP/cerr" &
consumer=$!
wait_attached "$KEY" 1
"$PRODUCE" --key "$KEY" --framing lines < "$TMP/fifo" &
producer=$!
exec 3> "$TMP/fifo"
seq 1 1000 >&3
wait_for_size "$TMP/out" "$(seq 1 1000 | wc -c)"
kill -KILL "$producer"
wait "$producer" 2>/dev/null || true
exec 3>&-
expect_job 6 "$consumer" "consumer after its producer was killed"
expect_grep "died before closing the stream" "$TMP/cerr"
seq 1 1000 | cmp - "$TMP/out" || fail "records committed before the kill were not all written"
expect_no_leak

# --- Consumer gone: a consumer that stops after one record leaves; the
# producer fills the ring and exits 6 instead of blocking forever.
log "consumer gone"
seq 1 200000 > "$TMP/nums"
"$CONSUME" --key "$KEY" --create --capacity 4K --framing lines --count 1 > "$TMP/out" &
consumer=$!
wait_attached "$KEY" 1
expect_exit 6 "is gone .* --wait-consumer" "$PRODUCE" --key "$KEY" --framing lines < "$TMP/nums"
expect_job 0 "$consumer" "consumer --count 1"
[ "$(cat "$TMP/out")" = 1 ] || fail "--count 1 wrote '$(cat "$TMP/out")'"
# What the producer committed stayed in the ring: the next consumer gets
# the lines in order from 2 on, as many as fit.
expect_exit 0 "" "$CONSUME" --key "$KEY" --remove-on-exit
[ "$(head -1 "$TMP/stdout")" = 2 ] || fail "next consumer starts at '$(head -1 "$TMP/stdout")'"
awk 'NR > 1 && $1 != prev + 1 { exit 1 } { prev = $1 }' "$TMP/stdout" || fail "lines left in the ring are not in order"
expect_no_leak

# --- `| head -1`: exit 11 (broken output) without losing the rest: what
# was not written stays in the ring and the next consumer writes it.
log "consumer | head -1"
"$PRODUCE" --key "$KEY" --create --capacity 64K --framing lines --wait-consumer < "$TMP/nums" &
producer=$!
wait_attached "$KEY" 1
set +e +o pipefail
"$CONSUME" --key "$KEY" 2> "$TMP/cerr" | head -1 > "$TMP/first"
rc=${PIPESTATUS[0]}
set -e -o pipefail
expect_rc 11 "$rc" "shm-consume | head -1"
expect_grep "Broken pipe" "$TMP/cerr"
[ "$(cat "$TMP/first")" = 1 ] || fail "head -1 got '$(cat "$TMP/first")'"
"$CONSUME" --key "$KEY" --remove-on-exit > "$TMP/rest" || fail "consumer after head -1"
expect_job 0 "$producer" "producer across a broken consumer"
[ "$(tail -1 "$TMP/rest")" = 200000 ] || fail "the last line never arrived"
awk 'NR > 1 && $1 != prev + 1 { exit 1 } { prev = $1 }' "$TMP/rest" || fail "the rest is not in order"
expect_no_leak

# --- --follow: one consumer across two streams, then SIGTERM ends it.
log "--follow across two producers"
"$CONSUME" --key "$KEY" --create --follow --remove-on-exit > "$TMP/out" &
consumer=$!
wait_attached "$KEY" 1
echo first | "$PRODUCE" --key "$KEY"
echo second | "$PRODUCE" --key "$KEY"
wait_for_size "$TMP/out" 13
kill -TERM "$consumer"
expect_job 143 "$consumer" "--follow consumer after SIGTERM"
[ "$(cat "$TMP/out")" = "$(printf 'first\nsecond')" ] || fail "--follow got '$(cat "$TMP/out")'"

expect_no_leak
echo "PASS: signals and departed peers"
