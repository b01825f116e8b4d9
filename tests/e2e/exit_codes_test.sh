#!/usr/bin/env bash
# The documented exit codes (docs/tools.md) for usage and addressing errors,
# wrong rings, taken roles, timeouts and records that cannot fit.
#   exit_codes_test.sh PRODUCE CONSUME RING
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
MPSC_KEY=$(printf '0x%08x' $((KEY + 1)))
KEYS+=("$MPSC_KEY")

# --- 2: usage.
expect_exit 2 "not expected" "$PRODUCE" --bogus < /dev/null
expect_exit 2 "is not a 32-bit number" "$CONSUME" --key zz
expect_exit 2 "IPC_PRIVATE" "$CONSUME" --key 0
expect_exit 2 "power of two" "$CONSUME" --key "$KEY" --create --capacity 3000
expect_exit 2 "is not a size" "$CONSUME" --key "$KEY" --create --capacity 12X
expect_exit 2 "octal" "$CONSUME" --key "$KEY" --create --mode 0999
expect_exit 2 "excludes" "$CONSUME" --key "$KEY" --path /
expect_exit 2 "requires\|needs\|Needs" "$CONSUME" --proj A
expect_exit 2 "framing" "$PRODUCE" --framing words < /dev/null
expect_exit 2 "A subcommand is required" "$SHMRING"
expect_exit 0 "" "$PRODUCE" --help
expect_grep "Exit codes" "$TMP/stdout"
expect_exit 0 "" "$CONSUME" --version
expect_grep "shm-consume (shmring)" "$TMP/stdout"
expect_exit 0 "" "$SHMRING" --version
ring_exists "$KEY" && fail "a usage error created a ring"

# --- 3: nothing there.
expect_exit 3 "no ring with key" "$CONSUME" --key "$KEY"
expect_exit 3 "no ring with key" "$PRODUCE" --key "$KEY" < /dev/null
expect_exit 3 "no ring with key" "$SHMRING" info --key "$KEY"
expect_exit 3 "No such file" "$CONSUME" --path "$TMP/does-not-exist" --proj A
touch "$TMP/ftok-file"
FTOK_KEY=$(ftok_key "$TMP/ftok-file" A)
KEYS+=("$FTOK_KEY")
expect_exit 3 "no ring with key $FTOK_KEY" "$CONSUME" --path "$TMP/ftok-file" --proj A

# --- 5: a ring of the wrong kind, capacity or wait strategy.
expect_exit 0 "" "$SHMRING" create --key "$KEY" --kind spsc --capacity 4K
expect_exit 5 "is an spsc ring, expected mpsc" "$PRODUCE" --key "$KEY" --kind mpsc < /dev/null
expect_exit 5 "exists with capacity 4096" "$CONSUME" --key "$KEY" --create --capacity 8K
expect_exit 5 "wait strategy futex" "$CONSUME" --key "$KEY" --wait semaphore

# --- 9: exclusive create of an existing ring; a taken role.
expect_exit 9 "already exists" "$SHMRING" create --key "$KEY"
expect_exit 0 "" "$SHMRING" create --key "$KEY" --exist-ok

"$CONSUME" --key "$KEY" > /dev/null 2>&1 &
consumer=$!
wait_attached "$KEY" 1
expect_exit 9 "already has a live consumer" "$CONSUME" --key "$KEY"
mkfifo "$TMP/fifo"
"$PRODUCE" --key "$KEY" < "$TMP/fifo" &
producer=$!
exec 3> "$TMP/fifo"
wait_attached "$KEY" 2
expect_exit 9 "already has a live producer" "$PRODUCE" --key "$KEY" < /dev/null
exec 3>&-
expect_job 0 "$producer" "producer at EOF of its fifo"
expect_job 0 "$consumer" "consumer at end of stream"

# --- 8: timeouts. No producer comes; then a full ring nobody reads.
expect_exit 8 "timed out" "$CONSUME" --key "$KEY" --timeout 0.3
"$CONSUME" --key "$KEY" > /dev/null 2>&1 &
consumer=$!
wait_attached "$KEY" 1
kill -STOP "$consumer"   # alive, attached, but not reading
head -c 65536 /dev/zero > "$TMP/zeros"
expect_exit 8 "timed out .* waiting for space" "$PRODUCE" --key "$KEY" --timeout 0.3 < "$TMP/zeros"
kill -KILL "$consumer"
wait "$consumer" 2>/dev/null || true
# A fresh ring for what follows (this one is full of unread zeros).
expect_exit 0 "" "$SHMRING" rm --key "$KEY"
expect_exit 0 "" "$SHMRING" create --key "$KEY" --capacity 4K

# --- 7: a line that can never fit (max record of a 4 KiB ring: 2040).
{ echo short; head -c 3000 /dev/zero | tr '\0' x; echo; } > "$TMP/long"
expect_exit 7 "line 2 is longer than the largest record" "$PRODUCE" --key "$KEY" --framing lines --wait-consumer < "$TMP/long"
expect_exit 7 "larger than the largest record" "$PRODUCE" --key "$KEY" --chunk 4K < /dev/null
# ... and the line before it was committed: a consumer gets exactly it.
expect_exit 0 "" "$CONSUME" --key "$KEY" --count 1
[ "$(cat "$TMP/stdout")" = short ] || fail "the line before the long one: '$(cat "$TMP/stdout")'"

# --- 5: a segment that is not a shmring ring under the key.
expect_exit 0 "" "$SHMRING" rm --key "$KEY"
foreign=$(ipcmk -M 8192 -p 0600 | awk '{ print $NF }')
fkey=$(ipcs -m | awk -v id="$foreign" '$2 == id { print $1 }')
KEYS+=("$fkey")
expect_exit 5 "segment $fkey was never initialised" "$CONSUME" --key "$fkey"
expect_exit 5 "segment $fkey was never initialised" "$SHMRING" rm --key "$fkey"
ring_exists "$fkey" || fail "rm without --force removed a segment that is not a ring"
expect_exit 0 "removed segment $fkey" "$SHMRING" rm --key "$fkey" --force

# --- the same addressing through ftok: both sides derive one key.
ftok_consumer() { "$CONSUME" --path "$TMP/ftok-file" --proj A --create --remove-on-exit; }
ftok_consumer > "$TMP/ftok.out" &
consumer=$!
for i in $(seq 1 500); do ring_exists "$FTOK_KEY" && break; sleep 0.02; done
echo "via ftok" | "$PRODUCE" --path "$TMP/ftok-file" --proj A || fail "ftok producer"
expect_job 0 "$consumer" "ftok consumer"
[ "$(cat "$TMP/ftok.out")" = "via ftok" ] || fail "ftok round trip"

expect_no_leak
echo "PASS: exit codes"
