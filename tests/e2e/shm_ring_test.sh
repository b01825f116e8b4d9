#!/usr/bin/env bash
# shm-ring create | info | ls | rm, text and --json: kind, capacity, fill,
# peers and their liveness, stale rings, and removal. `ls` lists every ring
# on the host (outside Bazel's sandbox: other users' and other tests' too),
# so this test looks only for its own keys in it; `rm --stale` removes every
# stale ring, so it runs only in a private IPC namespace (unshare).
#   shm_ring_test.sh PRODUCE CONSUME RING
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
K1=$KEY
K2=$(printf '0x%08x' $((KEY + 1)))
K3=$(printf '0x%08x' $((KEY + 2)))
KEYS+=("$K2" "$K3")
json() {  # json FILE EXPR: evaluates a Python expression over the parsed j
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
expect_json() {  # expect_json FILE EXPR WANT
  local got
  got=$(json "$1" "$2")
  [ "$got" = "$3" ] || { cat "$1" >&2; fail "$2 = '$got', expected '$3'"; }
}

stale_check() {
  "$SHMRING" create --key "$K1" --capacity 4K > /dev/null
  "$CONSUME" --key "$K1" > /dev/null &
  local c=$!
  wait_attached "$K1" 1
  "$SHMRING" create --key "$K2" --kind mpsc > /dev/null
  "$SHMRING" create --key "$K3" --capacity 4K > /dev/null
  head -c 1000 /dev/zero | "$PRODUCE" --key "$K3"
  # K3's unread records and the never-used K2 are kept, and K3
  # is reported with what it holds; the active K1 is left alone.
  expect_exit 0 "" "$SHMRING" rm --stale --json
  expect_json "$TMP/stdout" 'sorted(j["removed"])' "[]"
  expect_json "$TMP/stdout" '[(k["key"], k["unread_bytes"]) for k in j["kept"] if k["key"] == "'$K3'"]' "[('$K3', 1008)]"
  # Once K3 is read it is stale and goes; K2 (never used) stays.
  expect_exit 0 "" "$CONSUME" --key "$K3"
  [ "$(wc -c < "$TMP/stdout")" -eq 1000 ] || fail "K3 lost data"
  expect_exit 0 "" "$SHMRING" rm --stale --json
  expect_json "$TMP/stdout" 'sorted(j["removed"])' "['$K3']"
  ring_exists "$K1" || fail "rm --stale removed an active ring"
  ring_exists "$K2" || fail "rm --stale removed a never-used ring"
  ring_exists "$K3" && fail "rm --stale left a stale ring"
  kill -KILL "$c"
  wait "$c" 2> /dev/null || true
  "$SHMRING" rm --key "$K1" > /dev/null
  "$SHMRING" rm --key "$K2" > /dev/null
}
# The re-executed copy in a private IPC namespace (below) runs only that.
if [ -n "${SHMRING_PRIVATE_IPC:-}" ]; then
  stale_check
  expect_no_leak
  echo "PASS: rm --stale in a private IPC namespace"
  exit 0
fi

expect_exit 0 "" "$SHMRING" create --key "$K1" --capacity 64K --mode 0640 --json
expect_json "$TMP/stdout" 'j["created"]' True
expect_json "$TMP/stdout" 'j["kind"], j["capacity"], j["max_record"], j["mode"], j["wait"]' \
  "('spsc', 65536, 32760, '0640', 'futex')"
expect_exit 0 "created ring" "$SHMRING" create --key "$K2" --kind mpsc --capacity 1M --wait semaphore --max-producers 8
expect_exit 0 "" "$SHMRING" create --key "$K2" --exist-ok --json
expect_json "$TMP/stdout" 'j["created"], j["kind"], j["max_producers"], j["wait"]' "(False, 'mpsc', 8, 'semaphore')"

# K1 gets a live consumer and a producer that has committed 3 records and
# waits on its input (a fifo this shell holds open until the producer's
# SIGTERM below, however long the steps between take); K2 stays idle: made
# by `shm-ring create`, never used.
"$CONSUME" --key "$K1" --count 5 > /dev/null &
consumer=$!
wait_attached "$K1" 1
source_open k1.in
"$PRODUCE" --key "$K1" --framing lines < "$TMP/k1.in" &
producer=$!
source_attach k1.in
seq 1 3 >&"$SOURCE_FD"
wait_attached "$K1" 2
expect_exit 0 "" "$SHMRING" info --key "$K1" --json
expect_json "$TMP/stdout" 'j["consumer"]["pid"], j["consumer"]["alive"]' "($consumer, True)"
expect_json "$TMP/stdout" '[(p["pid"], p["alive"]) for p in j["producers"]]' "[($producer, True)]"
expect_json "$TMP/stdout" 'j["attachments"], j["state"], j["stale"], j["version"]' "(2, 'active', False, 3)"
expect_json "$TMP/stdout" 'j["semaphores_present"], j["semid"] >= 0' "(True, True)"
expect_json "$TMP/stdout" 'j["creator"]["alive"], j["owner"], j["mode"]' "(False, '$(id -un)', '0640')"
expect_json "$TMP/stdout" 'j["hugepages"], j["handshake"] in ("membarrier", "fallback")' "(False, True)"
expect_exit 0 "" "$SHMRING" info --key "$K1"
expect_grep "kind        spsc" "$TMP/stdout"
expect_grep "consumer    pid $consumer (alive)" "$TMP/stdout"
expect_grep "producer    pid $producer (alive), slot 0" "$TMP/stdout"
expect_grep "owner       $(id -un), mode 0640, 2 other attachments" "$TMP/stdout"

# Fill: a ring with unread data says so (K3: 1000 bytes, nobody reading).
expect_exit 0 "" "$SHMRING" create --key "$K3" --capacity 4K
head -c 1000 /dev/zero | "$PRODUCE" --key "$K3"
expect_exit 0 "" "$SHMRING" info --key "$K3" --json
expect_json "$TMP/stdout" 'j["used_bytes"], j["producers_seen"], j["producers"]' "(1008, 1, [])"

# ls: all three rings, K1 active, K2 idle (never used, just made), K3
# unread (holds data, nobody attached: not "stale", not 0%).
mine="('$K1', '$K2', '$K3')"
expect_exit 0 "" "$SHMRING" ls --json
expect_json "$TMP/stdout" "sorted((r['key'], r['state']) for r in j if r['key'] in $mine)" \
  "[('$K1', 'active'), ('$K2', 'idle'), ('$K3', 'unread')]"
expect_exit 0 "" "$SHMRING" ls
expect_grep "^$K1 .* spsc .*64 KiB .* active$" "$TMP/stdout"
expect_grep "^$K2 .* mpsc .* 0/8 .* idle$" "$TMP/stdout"
expect_grep "^$K3 .* 24% .* unread$" "$TMP/stdout"
# info by shmid, as ls shows it.
id2=$(ipcs -m | awk -v k="$K2" '$1 == k { print $2 }')
expect_exit 0 "" "$SHMRING" info --id "$id2" --json
expect_json "$TMP/stdout" 'j["key"]' "$K2"
expect_exit 2 "excludes --id" "$SHMRING" info --id "$id2" --key "$K2"

# A segment that is not a ring shows up only with --all.
foreign=$(ipcmk -M 8192 | awk '{ print $NF }')
fkey=$(ipcs -m | awk -v id="$foreign" '$2 == id { print $1 }')
KEYS+=("$fkey")
expect_exit 0 "" "$SHMRING" ls --all
expect_grep "^$fkey .*not a ring" "$TMP/stdout"
expect_exit 0 "" "$SHMRING" ls
grep -q "^$fkey " "$TMP/stdout" && fail "ls without --all lists a foreign segment"
ipcrm -m "$foreign"

# rm --stale keeps unread and never-used rings, removes drained ones, and
# leaves an active one alone. It would remove every stale ring on the host,
# so it runs in a private IPC namespace (stale_check above).
if unshare --ipc true 2> "$TMP/unshare.err"; then
  SHMRING_PRIVATE_IPC=1 unshare --ipc bash "$0" "$@" ||
    fail "rm --stale in a private IPC namespace"
elif grep -q "Operation not permitted" "$TMP/unshare.err"; then
  privileged_skip "rm --stale: unshare --ipc: $(cat "$TMP/unshare.err")"
else
  fail "unshare --ipc: $(cat "$TMP/unshare.err")"
fi
expect_exit 0 "" "$SHMRING" rm --key "$K2"
expect_exit 0 "" "$SHMRING" rm --key "$K3"

# rm of a ring in use: marked, gone when its users detach.
id1=$(ipcs -m | awk -v k="$K1" '$1 == k { print $2 }')
expect_exit 0 "disappears when its 2 attached processes detach" "$SHMRING" rm --key "$K1"
expect_grep "removed ring $K1" "$TMP/stdout"
expect_exit 0 "" "$SHMRING" ls --json
expect_json "$TMP/stdout" "[(r['key'], r['state']) for r in j if r['shmid'] == $id1]" "[('0x00000000', 'removing')]"
kill -TERM "$producer"
expect_job 143 "$producer" "producer after SIGTERM"
source_close
expect_job 0 "$consumer" "consumer of a removed ring"
expect_exit 3 "no ring with key $K1" "$SHMRING" rm --key "$K1"

# The wake-up handshake: a producer without membarrier (SHMRING_NO_MEMBARRIER=1)
# joining a ring whose consumer has it leaves the ring in fallback mode
# (docs/design/ordering.md#switching-a-ring-to-fallback-without-losing-a-wake-up).
expect_exit 0 "" "$SHMRING" create --key "$K3" --capacity 4K
"$CONSUME" --key "$K3" --count 5 > "$TMP/k3.out" &
consumer=$!
wait_attached "$K3" 1
seq 1 5 | SHMRING_NO_MEMBARRIER=1 "$PRODUCE" --key "$K3" --framing lines
expect_job 0 "$consumer" "consumer of the fallback producer"
[ "$(cat "$TMP/k3.out")" = "$(seq 1 5)" ] || fail "fallback ring lost lines"
expect_exit 0 "" "$SHMRING" info --key "$K3" --json
expect_json "$TMP/stdout" 'j["handshake"]' "fallback"
expect_exit 0 "" "$SHMRING" rm --key "$K3"

# Huge pages: on a machine without free ones the error names the knob.
# vm.nr_hugepages is machine-wide: another process (segment_test as root
# reserves two for a moment) may raise it between the read and the create.
# A ring made then must really have huge pages (no silent fallback).
if [ "$(cat /proc/sys/vm/nr_hugepages)" = 0 ]; then
  set +e
  timeout -k 5 30 "$SHMRING" create --key "$K3" --hugepages > "$TMP/stdout" 2> "$TMP/err"
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    expect_exit 0 "" "$SHMRING" info --key "$K3" --json
    expect_json "$TMP/stdout" 'j["hugepages"]' True
    expect_exit 0 "" "$SHMRING" rm --key "$K3"
    log "huge pages were reserved meanwhile (vm.nr_hugepages $(cat /proc/sys/vm/nr_hugepages) now): the no-huge-pages row was not checked"
  else
    expect_rc 13 "$rc" "shm-ring create --hugepages"
    expect_grep "/proc/sys/vm/nr_hugepages" "$TMP/err"
  fi
fi

expect_no_leak
echo "PASS: shm-ring"
