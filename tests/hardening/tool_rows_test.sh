#!/usr/bin/env bash
# The bad-input table (docs/hardening.md) through the tools: every row gets its
# documented exit code (docs/tools.md) and a message naming the problem,
# every command is bounded in time (lib.sh: 30 s each), and nothing is left
# behind. Rows the e2e suite already covers in depth (tests/e2e/
# exit_codes_test.sh) appear here once, for the table's sake.
#   tool_rows_test.sh PRODUCE CONSUME RING SHMPOKE
source tests/e2e/lib.sh "$1" "$2" "$3"
POKE=$(realpath "$4")
K2=$(printf '0x%08x' $((KEY + 1)))
KEYS+=("$K2")

# ---------------------------------------------------------------- usage: 2
# Every tool, every flag that takes a value: a bad value is exit 2 with a
# message that starts with the tool's name and names the problem, before
# anything touches the system.
# usage PATTERN TOOL ARGS...
usage() {
  local pattern=$1 tool=$2
  shift
  expect_exit 2 "$pattern" "$@" < /dev/null
  grep -q "^$(basename "$tool"): " "$TMP/err" ||
    fail "$(basename "$tool") ${*:2}: message without the tool's name: $(cat "$TMP/err")"
  if grep -q 17976931348623157 "$TMP/err"; then
    fail "$(basename "$tool") ${*:2}: DBL_MAX in the message"
  fi
}
for tool in "$PRODUCE" "$CONSUME"; do
  usage "not expected" "$tool" --bogus
  usage "not a 32-bit number" "$tool" --key 0x1ffffffff
  usage "not a 32-bit number" "$tool" --key=-5
  usage "IPC_PRIVATE" "$tool" --key 0
  for cap in 0 1000 128 2T; do
    usage "must be a power of two between 256 and 2^40" "$tool" --key "$KEY" --create --capacity "$cap"
  done
  usage "capacity '-1' is not a size" "$tool" --key "$KEY" --create --capacity=-1
  usage "is not a size" "$tool" --key "$KEY" --create --capacity 12X
  usage "including 0600" "$tool" --key "$KEY" --create --mode 0400
  usage "not octal" "$tool" --key "$KEY" --create --mode 08
  usage "kind: ring not in" "$tool" --key "$KEY" --kind ring
  usage "wait: nap not in" "$tool" --key "$KEY" --wait nap
  usage "timeout: Value -1" "$tool" --key "$KEY" --timeout=-1
  usage "timeout: Value abc" "$tool" --key "$KEY" --timeout abc
  usage "framing: words not in" "$tool" --key "$KEY" --framing words
  usage "proj requires --path" "$tool" --proj A
  usage "proj 'AB' must be one character" "$tool" --path /etc/passwd --proj AB
  usage "proj '256' must be one character" "$tool" --path /etc/passwd --proj 256
  usage "key excludes --path" "$tool" --key 1 --path /etc/passwd
  usage "progress: maybe not in" "$tool" --key "$KEY" --progress=maybe
done
usage "count: Value -1" "$CONSUME" --key "$KEY" --count=-1
usage "count: Value abc" "$CONSUME" --key "$KEY" --count abc
usage "subcommand is required" "$SHMRING"
usage "" "$SHMRING" bogus
usage "not expected" "$SHMRING" ls --bogus
usage "capacity 1000 must be a power of two" "$SHMRING" create --key "$KEY" --capacity 1000
usage "max_producers must be <= 64" "$SHMRING" create --key "$KEY" --kind mpsc --max-producers 65
usage "including 0600" "$SHMRING" create --key "$KEY" --mode 0400
usage "kind: x not in" "$SHMRING" create --key "$KEY" --kind x
usage "id: Value abc" "$SHMRING" info --id abc
usage "id: Value -5" "$SHMRING" rm --id=-5
usage "not a 32-bit number" "$SHMRING" info --key zz
# An empty key (--key "$UNSET") is not the default ring.
usage "key is empty" "$PRODUCE" --key "" --create
usage "is not a number >= 0" "$CONSUME" --key "$KEY" --timeout nan
usage "chunk '0' is not a size > 0" "$PRODUCE" --key "$KEY" --chunk 0
usage "chunk 'abc' is not a size > 0" "$PRODUCE" --key "$KEY" --chunk abc
# --stale with an address is a conflict, not "remove every stale ring".
expect_exit 0 "" "$SHMRING" create --key "$K2" --capacity 4K
usage "excludes --stale" "$SHMRING" rm --stale --key "$KEY"
ring_exists "$K2" || fail "rm --stale --key removed another ring"
expect_exit 0 "" "$SHMRING" rm --key "$K2"
[ "$(own_segments)" -eq "$SEGMENTS_AT_START" ] || fail "a usage error created a segment"

# ------------------------------------------- beyond the kernel: 13
# A valid capacity (2^40) that no kernel here backs: exit 13 (resource
# limit), naming the limit that refused it. (Skipped if this machine grants
# 1 TiB.)
set +e
timeout -k 5 30 "$SHMRING" create --key "$KEY" --capacity 1T > "$TMP/stdout" 2> "$TMP/err"
rc=$?
set -e
if [ "$rc" -eq 0 ]; then
  log "skipped: this machine granted a 1 TiB segment"
  "$SHMRING" rm --key "$KEY"
else
  expect_rc 13 "$rc" "shm-ring create --capacity 1T"
  expect_grep "kernel.shmmax=" "$TMP/err"
  expect_grep "kernel.shmall=" "$TMP/err"
  grep -Eq "sysctl -w kernel.|not enough memory" "$TMP/err" ||
    fail "1T: the message names no limit: $(cat "$TMP/err")"
fi
# SHMMAX itself, lowered in a private IPC namespace (per-namespace sysctl).
# Only "Operation not permitted" skips (visibly); any other failure fails.
if unshare --ipc true 2> "$TMP/unshare.err"; then
  expect_exit 13 "exceeds kernel.shmmax=1048576" unshare --ipc sh -c \
    'echo 1048576 > /proc/sys/kernel/shmmax && exec "$0" --key 0x5eed --create --capacity 2M' \
    "$CONSUME"
elif grep -q "Operation not permitted" "$TMP/unshare.err"; then
  privileged_skip "lowering kernel.shmmax: unshare --ipc: $(cat "$TMP/unshare.err")"
else
  fail "unshare --ipc: $(cat "$TMP/unshare.err")"
fi

# ------------------------------------------------------------ found: 3
expect_exit 3 "no ring with key" "$CONSUME" --key "$KEY"
expect_exit 3 "No such file or directory" "$PRODUCE" --path "$TMP/missing" --proj A < /dev/null
expect_exit 3 "no segment with shmid" "$SHMRING" info --id 99999999

# --------------------------------------------------------- wrong ring: 5
expect_exit 0 "" "$SHMRING" create --key "$KEY" --capacity 4K
expect_exit 5 "is an spsc ring, expected mpsc" "$CONSUME" --key "$KEY" --kind mpsc
expect_exit 5 "is an spsc ring, expected mpsc" "$SHMRING" info --key "$KEY" --kind mpsc
expect_exit 5 "exists with capacity 4096" "$PRODUCE" --key "$KEY" --create --capacity 8K < /dev/null
# Version skew, as a ring made by another shmring release would look.
version=$("$POKE" get "$KEY" version)
"$POKE" set "$KEY" version $((version + 1))
expect_exit 5 "created by shmring layout v$((version + 1)), this is v$version" "$CONSUME" --key "$KEY"
expect_exit 5 "created by shmring layout v$((version + 1)), this is v$version" "$SHMRING" info --key "$KEY"
"$POKE" set "$KEY" version "$version"
# A header that claims more than the segment has.
"$POKE" set "$KEY" capacity 65536
expect_exit 5 "but the kernel says it has" "$PRODUCE" --key "$KEY" < /dev/null
"$POKE" set "$KEY" capacity 4096
# A creator that died before publishing its header (attach waits 2 s).
"$POKE" set "$KEY" state 0
expect_exit 5 "never initialised" "$CONSUME" --key "$KEY"
"$POKE" set "$KEY" state 1
# Put right again, the ring works: the tools changed nothing.
echo "intact" | "$PRODUCE" --key "$KEY" --wait-consumer --timeout 10 || fail "produce on the repaired ring"
expect_exit 0 "" "$CONSUME" --key "$KEY" --count 1
[ "$(cat "$TMP/stdout")" = intact ] || fail "repaired ring: '$(cat "$TMP/stdout")'"
# A ring whose role semaphore set was removed by hand: no role can be
# taken (Errc::removed, exit 3); info and rm still work.
semid=$("$POKE" get "$KEY" sem_id)
ipcrm -s "$semid" || fail "ipcrm -s $semid"
expect_exit 3 "semaphore set (semid $semid) is gone" "$CONSUME" --key "$KEY"
expect_exit 0 "" "$SHMRING" info --key "$KEY"
expect_exit 0 "" "$SHMRING" rm --key "$KEY"
# Segments of other programs under our key.
small=$(ipcmk -M 100 -p 0600 | awk '{ print $NF }')
skey=$(ipcs -m | awk -v id="$small" '$2 == id { print $1 }')
KEYS+=("$skey")
expect_exit 5 "too small to be a shmring ring" "$CONSUME" --key "$skey"
expect_exit 5 "too small to be a shmring ring" "$SHMRING" rm --key "$skey"
expect_exit 0 "" "$SHMRING" rm --key "$skey" --force
other=$(ipcmk -M 65536 -p 0600 | awk '{ print $NF }')
okey=$(ipcs -m | awk -v id="$other" '$2 == id { print $1 }')
KEYS+=("$okey")
"$POKE" set "$okey" magic 0x4c515347  # somebody else's bytes
expect_exit 5 "not created by shmring" "$PRODUCE" --key "$okey" < /dev/null
expect_exit 5 "not created by shmring" "$SHMRING" info --key "$okey"
expect_exit 0 "" "$SHMRING" rm --key "$okey" --force

# ----------------------------------------------------- too large: 7
expect_exit 0 "" "$SHMRING" create --key "$KEY" --capacity 4K
# A length frame of 5000 bytes into a ring whose largest record is 2040.
{ printf '\x88\x13\x00\x00'; head -c 5000 /dev/zero; } > "$TMP/frame"
expect_exit 7 "larger than the largest record" "$PRODUCE" --key "$KEY" --framing length --wait-consumer < "$TMP/frame"
expect_exit 7 "longer than the largest record" "$PRODUCE" --key "$KEY" --framing lines --wait-consumer < <(head -c 3000 /dev/zero | tr '\0' x; echo)
expect_exit 0 "" "$SHMRING" rm --key "$KEY"

# ----------------------------------------------------------- busy: 9
expect_exit 0 "" "$SHMRING" create --key "$KEY" --capacity 4K
expect_exit 9 "already exists" "$SHMRING" create --key "$KEY"
"$CONSUME" --key "$KEY" > /dev/null 2>&1 &
consumer=$!
wait_attached "$KEY" 1
expect_exit 9 "already has a live consumer (pid $consumer)" "$CONSUME" --key "$KEY"
mkfifo "$TMP/fifo"
"$PRODUCE" --key "$KEY" < "$TMP/fifo" &
producer=$!
exec 3> "$TMP/fifo"
wait_attached "$KEY" 2
expect_exit 9 "already has a live producer (pid $producer)" "$PRODUCE" --key "$KEY" < /dev/null
exec 3>&-
expect_job 0 "$producer" "first producer"
expect_job 0 "$consumer" "first consumer"
expect_exit 0 "" "$SHMRING" rm --key "$KEY"

# -------------------------------------------------------- corrupt: 10
# A peer scribbles a record header (span 0, type 5): the consumer stops
# with exit 10 and the offset, it does not read garbage or hang.
expect_exit 0 "" "$SHMRING" create --key "$KEY" --capacity 4K
echo "one record" | "$PRODUCE" --key "$KEY" --wait-consumer --timeout 10 || fail "producer"
"$POKE" set "$KEY" header0 $((5 << 35))
expect_exit 10 "ring $KEY is corrupt at offset 0" "$CONSUME" --key "$KEY" --timeout 5
expect_exit 0 "" "$SHMRING" rm --key "$KEY"
# The same for an MPSC producer writing at a scribbled tail.
expect_exit 0 "" "$SHMRING" create --key "$KEY" --capacity 4K --kind mpsc
"$POKE" set "$KEY" tail 4093
expect_exit 10 "ring $KEY is corrupt (head/tail out of range)" "$PRODUCE" --key "$KEY" --wait-consumer --timeout 5 < <(echo x)
expect_exit 0 "" "$SHMRING" rm --key "$KEY"

# ------------------------------------- removed (IPC_RMID) while attached
# Attached peers carry on to the end of their stream; nobody new gets in;
# the segment goes away with the last of them.
expect_exit 0 "" "$SHMRING" create --key "$KEY" --capacity 64K
"$CONSUME" --key "$KEY" > "$TMP/removed.out" 2> "$TMP/removed.err" &
consumer=$!
rm -f "$TMP/fifo"
mkfifo "$TMP/fifo"
"$PRODUCE" --key "$KEY" --framing lines < "$TMP/fifo" &
producer=$!
exec 3> "$TMP/fifo"
wait_attached "$KEY" 2
echo "before rm" >&3
expect_exit 0 "" "$SHMRING" rm --key "$KEY"
expect_exit 3 "no ring with key" "$CONSUME" --key "$KEY"
echo "after rm" >&3
exec 3>&-
expect_job 0 "$producer" "producer of a removed ring"
expect_job 0 "$consumer" "consumer of a removed ring"
[ "$(cat "$TMP/removed.out")" = "$(printf 'before rm\nafter rm')" ] ||
  fail "removed ring delivered '$(cat "$TMP/removed.out")'"
ring_exists "$KEY" && fail "the removed ring outlived its last user"

expect_no_leak
echo "PASS: tool rows"
