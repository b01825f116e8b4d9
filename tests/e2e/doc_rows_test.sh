#!/usr/bin/env bash
# Rows of docs/tools.md no other test covers: exit codes 8 (a producer waiting
# for its first consumer), 9 (all MPSC slots live), 11 (stdout failure other
# than EPIPE), 12 (stdin read error), 129 (SIGHUP); $SHMRING_KEY and the
# default key; numeric --proj; the short flags; G/KiB suffixes;
# --stats-json to stderr; --chunk; shm-ring rm --id; the idle state.
# (A second signal abandoning the batch: signals_test.sh. 64 MPSC producers
# and the --create race: mpsc64_test.sh, create_race_test.sh.)
#   doc_rows_test.sh PRODUCE CONSUME RING
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
K2=$(printf '0x%08x' $((KEY + 1)))
K3=$(printf '0x%08x' $((KEY + 2)))
KEYS+=("$K2" "$K3")
json() {  # json FILE EXPR: a Python expression over the parsed j
  python3 -c 'import json,sys; j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(eval(sys.argv[2]))' "$1" "$2"
}
expect_json() {  # expect_json FILE EXPR WANT
  local got
  got=$(json "$1" "$2")
  [ "$got" = "$3" ] || { cat "$1" >&2; fail "$2 = '$got', expected '$3'"; }
}

# The default key 0x5eed0001 is machine-wide: that check runs in a private
# IPC namespace, in a copy of this script started below, which runs only it.
default_key_check() {
  unset SHMRING_KEY
  "$CONSUME" --create --count 1 > "$TMP/default.out" &
  local c=$!
  wait_attached 0x5eed0001 1
  echo "default ring" | "$PRODUCE" --timeout 10 || fail "producer on the default ring"
  expect_job 0 "$c" "consumer on the default ring"
  [ "$(cat "$TMP/default.out")" = "default ring" ] || fail "default ring: '$(cat "$TMP/default.out")'"
  expect_exit 0 "removed ring 0x5eed0001" "$SHMRING" rm
}
if [ -n "${SHMRING_PRIVATE_IPC:-}" ]; then
  KEYS=(0x5eed0001)
  default_key_check
  echo "PASS: the default key in a private IPC namespace"
  exit 0
fi
mkfifo "$TMP/fifo"

# --- 8: a producer that started with no consumer fills the ring and then
# waits for the first one; --timeout bounds that wait.
log "exit 8: producer waiting for its first consumer"
head -c 8K /dev/zero > "$TMP/8k"
expect_exit 8 "timed out after 0.3 s waiting for" "$PRODUCE" --key "$KEY" --create --capacity 4K --timeout 0.3 < "$TMP/8k"
expect_exit 0 "" "$SHMRING" info --key "$KEY" --json
expect_json "$TMP/stdout" 'j["consumers_seen"], j["used_bytes"] > 0' "(0, True)"
expect_exit 0 "" "$SHMRING" rm --key "$KEY"

# --- 9: every slot of an MPSC ring held by a live producer.
log "exit 9: all MPSC slots live"
expect_exit 0 "" "$SHMRING" create --key "$KEY" --kind mpsc --max-producers 2
"$PRODUCE" --key "$KEY" < "$TMP/fifo" &
p1=$!
exec 3> "$TMP/fifo"
wait_attached "$KEY" 1
rm "$TMP/fifo"; mkfifo "$TMP/fifo"
"$PRODUCE" --key "$KEY" < "$TMP/fifo" 3>&- &
p2=$!
exec 4> "$TMP/fifo"
wait_attached "$KEY" 2
expect_exit 9 "all 2 producer slots are held by live processes" "$PRODUCE" --key "$KEY" < /dev/null
exec 3>&- 4>&-
expect_job 0 "$p1" "first MPSC producer"
expect_job 0 "$p2" "second MPSC producer"
expect_exit 0 "" "$SHMRING" rm --key "$KEY"

# --- 11: stdout fails with something other than EPIPE (ENOSPC): exit 11,
# and the unwritten records stay in the ring for the next consumer.
log "exit 11: stdout is /dev/full"
expect_exit 0 "" "$SHMRING" create --key "$KEY" --capacity 4K
printf 'kept\n' | "$PRODUCE" --key "$KEY" --framing lines --timeout 10
expect_exit 11 "writing stdout: No space left on device; 1 unwritten records stay in ring $KEY" \
  sh -c 'exec "$0" --key "$1" > /dev/full' "$CONSUME" "$KEY"
expect_exit 0 "" "$CONSUME" --key "$KEY" --count 1
[ "$(cat "$TMP/stdout")" = kept ] || fail "after exit 11 the next consumer got '$(cat "$TMP/stdout")'"

# --- 12: a stdin read error (a directory: EISDIR).
log "exit 12: stdin read error"
expect_exit 12 "reading stdin: Is a directory" "$PRODUCE" --key "$KEY" < "$TMP"
expect_exit 0 "" "$SHMRING" rm --key "$KEY"

# --- 129: SIGHUP, like SIGINT/SIGTERM.
log "exit 129: SIGHUP"
"$CONSUME" --key "$KEY" --create --remove-on-exit > /dev/null 2> "$TMP/hup.err" &
c=$!
wait_attached "$KEY" 1
kill -HUP "$c"
expect_job_within 20 129 "$c" "consumer after SIGHUP"
expect_grep "interrupted by Hangup" "$TMP/hup.err"
ring_exists "$KEY" && fail "--remove-on-exit after SIGHUP left the ring"

# --- $SHMRING_KEY when neither --key nor --path is given; --key wins.
log "\$SHMRING_KEY"
SHMRING_KEY=$K2 "$CONSUME" --create --count 1 > "$TMP/env.out" &
c=$!
wait_attached "$K2" 1
echo "via env" | SHMRING_KEY=$K2 "$PRODUCE" --timeout 10 || fail "producer with \$SHMRING_KEY"
expect_job 0 "$c" "consumer with \$SHMRING_KEY"
[ "$(cat "$TMP/env.out")" = "via env" ] || fail "\$SHMRING_KEY round trip: '$(cat "$TMP/env.out")'"
expect_exit 3 "no ring with key $K3" env SHMRING_KEY="$K2" "$SHMRING" info --key "$K3"
expect_exit 0 "" env SHMRING_KEY="$K2" "$SHMRING" rm
expect_grep "removed ring $K2" "$TMP/stdout"
ring_exists "$K2" && fail "shm-ring rm with \$SHMRING_KEY left $K2"

# --- The default key 0x5eed0001 (no --key, --path or $SHMRING_KEY). That
# key is machine-wide, so this runs in a private IPC namespace.
log "default key"
if unshare --ipc true 2> "$TMP/unshare.err"; then
  SHMRING_PRIVATE_IPC=1 unshare --ipc bash "$0" "$@" || fail "default key in a private IPC namespace"
elif grep -q "Operation not permitted" "$TMP/unshare.err"; then
  privileged_skip "the default key: unshare --ipc: $(cat "$TMP/unshare.err")"
else
  fail "unshare --ipc: $(cat "$TMP/unshare.err")"
fi

# --- --proj: one character is its code ('1' = 49), a longer one a number.
log "numeric --proj"
touch "$TMP/ftok-file"
for proj in 1 S 0x01 255 0x7f; do
  case "$proj" in ?) code=$(printf '%d' "'$proj") ;; *) code=$((proj)) ;; esac
  want=$(printf '0x%08x' $(( (code << 24) | ($(ftok_key "$TMP/ftok-file" A) & 0xffffff) )))
  expect_exit 3 "no ring with key $want" "$CONSUME" --path "$TMP/ftok-file" --proj "$proj"
done
expect_exit 3 "no ring with key $(ftok_key "$TMP/ftok-file" S)" "$CONSUME" --path "$TMP/ftok-file"

# --- Short flags: -k -c -t -f -n (consumer), -k -f -w -t (producer), -h.
log "short flags"
"$CONSUME" -k "$KEY" -c -f lines -n 2 -t 20 > "$TMP/short.out" &
c=$!
wait_attached "$KEY" 1
printf 'a\nb\nc\n' | "$PRODUCE" -k "$KEY" -f lines -w -t 20 || fail "producer with short flags"
expect_job 0 "$c" "consumer -n 2"
[ "$(cat "$TMP/short.out")" = "$(printf 'a\nb')" ] || fail "-n 2 wrote '$(cat "$TMP/short.out")'"
expect_exit 0 "" "$CONSUME" -k "$KEY" -n 1
[ "$(cat "$TMP/stdout")" = c ] || fail "the third line: '$(cat "$TMP/stdout")'"
"$CONSUME" -k "$KEY" -F > "$TMP/follow.out" &
c=$!
wait_attached "$KEY" 1
echo one | "$PRODUCE" -k "$KEY"
echo two | "$PRODUCE" -k "$KEY"
wait_for_size "$TMP/follow.out" 8
kill -TERM "$c"
expect_job_within 20 143 "$c" "consumer -F after SIGTERM"
[ "$(cat "$TMP/follow.out")" = "$(printf 'one\ntwo')" ] || fail "-F got '$(cat "$TMP/follow.out")'"
for tool in "$PRODUCE" "$CONSUME" "$SHMRING"; do
  expect_exit 0 "Usage\|usage" "$tool" -h < /dev/null
done
expect_exit 0 "" "$SHMRING" rm -k "$KEY"
ring_exists "$KEY" && fail "shm-ring rm -k left the ring"

# --- Size suffixes: G, KiB, MiB (binary).
log "capacity suffixes"
for spec in "1G 1073741824" "64KiB 65536" "2MiB 2097152" "512 512"; do
  set -- $spec
  expect_exit 0 "" "$SHMRING" create --key "$KEY" --capacity "$1" --json
  expect_json "$TMP/stdout" 'j["capacity"]' "$2"
  expect_exit 0 "" "$SHMRING" rm --key "$KEY"
done

# --- --stats-json without a file: one JSON line on stderr, nothing on
# stdout but the data.
log "--stats-json to stderr"
"$CONSUME" --key "$KEY" --create --capacity 64K --stats-json > "$TMP/sj.out" 2> "$TMP/sj.cerr" &
c=$!
wait_attached "$KEY" 1
seq 1 1000 > "$TMP/nums"
"$PRODUCE" --key "$KEY" --framing lines --stats-json < "$TMP/nums" 2> "$TMP/sj.perr" || fail "producer --stats-json"
expect_job 0 "$c" "consumer --stats-json"
cmp "$TMP/sj.out" "$TMP/nums" || fail "--stats-json changed stdout"
expect_json "$TMP/sj.perr" 'j["tool"], j["records"], j["bytes"], j["end"], j["exit_code"]' \
  "('shm-produce', 1000, $(stat -c %s "$TMP/nums"), 'end_of_input', 0)"
expect_json "$TMP/sj.cerr" 'j["tool"], j["records"], j["bytes"], j["end"], j["key"]' \
  "('shm-consume', 1000, $(stat -c %s "$TMP/nums"), 'end_of_stream', '$KEY')"

# --- --chunk: in bytes framing, the most one read(2) asks for, i.e. the
# largest record; the default is capacity/8 (>= 4K, <= 1M).
log "--chunk"
head -c 64K /dev/urandom > "$TMP/64k"
for spec in "4K 16" "16K 4" "default 8"; do
  set -- $spec
  chunk=(--chunk "$1"); [ "$1" = default ] && chunk=()
  "$CONSUME" --key "$KEY" --stats-json="$TMP/chunk.json" > "$TMP/chunk.out" &
  c=$!
  wait_attached "$KEY" 1
  # A regular file: every read(2) returns all it is asked for.
  "$PRODUCE" --key "$KEY" "${chunk[@]}" < "$TMP/64k" || fail "producer --chunk $1"
  expect_job 0 "$c" "consumer after --chunk $1"
  cmp "$TMP/chunk.out" "$TMP/64k" || fail "--chunk $1 changed the bytes"
  expect_json "$TMP/chunk.json" 'j["records"]' "$2"
done
expect_exit 0 "" "$SHMRING" rm --key "$KEY"

# --- shm-ring rm --id SHMID: the id ipcs -m and shm-ring ls show.
log "rm --id"
expect_exit 0 "" "$SHMRING" create --key "$KEY" --capacity 4K --json
id=$(json "$TMP/stdout" 'j["shmid"]')
expect_exit 0 "removed ring $KEY (shmid $id)" "$SHMRING" rm --id "$id"
ring_exists "$KEY" && fail "rm --id $id left ring $KEY"
expect_exit 3 "no segment with shmid $id" "$SHMRING" rm --id "$id"

# --- The idle state: attached (here by a process that is neither producer
# nor consumer), creator dead, no live peer.
log "idle state"
expect_exit 0 "" "$SHMRING" create --key "$KEY" --capacity 4K
python3 -c '
import ctypes, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
shmid = libc.shmget(int(sys.argv[1], 16), 0, 0)
if shmid < 0 or libc.shmat(shmid, None, 0) in (None, ctypes.c_void_p(-1).value):
    sys.exit("shmat failed: errno %d" % ctypes.get_errno())
print("attached", flush=True)
signal.pause()' "$KEY" > "$TMP/attach.out" &  # until killed below
holder=$!
wait_for_size "$TMP/attach.out" 9
expect_exit 0 "" "$SHMRING" info --key "$KEY" --json
expect_json "$TMP/stdout" 'j["state"], j["attachments"], j["creator"]["alive"], j["consumer"], j["producers"]' \
  "('idle', 1, False, None, [])"
expect_exit 0 "" "$SHMRING" ls
expect_grep "^$KEY .* idle$" "$TMP/stdout"
kill -KILL "$holder"
wait "$holder" 2> /dev/null || true
expect_exit 0 "" "$SHMRING" rm --key "$KEY"

expect_no_leak
echo "PASS: documented rows"
