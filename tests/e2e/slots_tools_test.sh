#!/usr/bin/env bash
# The fixed-slot kind through the tools: shm-ring creates, shows,
# lists and removes slots rings; shm-produce / shm-consume move records and
# refuse a slots ring with exit 5 and a message naming Queue<T>; a slots
# ring without --slot-size, or --slot-size on a record ring, is a usage
# error; the record tools do not accept --kind slots.
#   slots_tools_test.sh PRODUCE CONSUME RING
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
K2=$(printf '0x%08x' $((KEY + 1)))
KEYS+=("$K2")
json() {  # json FILE EXPR: a Python expression over the parsed j
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
expect_json() {  # expect_json FILE EXPR WANT
  local got
  got=$(json "$1" "$2")
  [ "$got" = "$3" ] || { cat "$1" >&2; fail "$2 = '$got', expected '$3'"; }
}

log "create --kind slots needs --slot-size, and only slots rings take it"
expect_exit 2 "slot_size" "$SHMRING" create --key "$KEY" --kind slots --capacity 4K
expect_exit 2 "slots rings only" "$SHMRING" create --key "$KEY" --slot-size 8
expect_exit 2 "between 1 and half its capacity" \
  "$SHMRING" create --key "$KEY" --kind slots --slot-size 4096 --capacity 4K
ring_exists "$KEY" && fail "a refused create left a segment"

log "create, info, ls"
expect_exit 0 "" "$SHMRING" create --key "$KEY" --kind slots --slot-size 12 --capacity 4K
grep -q "slots of 12 bytes" "$TMP/stdout" || { cat "$TMP/stdout" >&2; fail "create output"; }
expect_exit 0 "" "$SHMRING" info --key "$KEY" --json
expect_json "$TMP/stdout" 'j["kind"]' slots
expect_json "$TMP/stdout" 'j["slot_size"]' 12
expect_json "$TMP/stdout" 'j["slot_count"]' 341
expect_json "$TMP/stdout" 'j["max_record"]' 12
expect_json "$TMP/stdout" 'j["max_producers"]' 1
expect_exit 0 "" "$SHMRING" info --key "$KEY"
grep -q "341 elements of 12 bytes" "$TMP/stdout" || { cat "$TMP/stdout" >&2; fail "info text"; }
expect_exit 0 "" "$SHMRING" info --key "$KEY" --kind slots
expect_exit 5 "is a slots ring, expected spsc" "$SHMRING" info --key "$KEY" --kind spsc
expect_exit 0 "" "$SHMRING" ls
awk -v k="$KEY" '$1 == k && $3 == "slots" { f = 1 } END { exit !f }' "$TMP/stdout" ||
  { cat "$TMP/stdout" >&2; fail "ls does not show the slots ring"; }
expect_exit 0 "" "$SHMRING" ls --json
python3 -c 'import json,sys; r=[x for x in json.load(open(sys.argv[1])) if x["key"] == sys.argv[2]]; assert r and r[0]["kind"] == "slots" and r[0]["slot_size"] == 12, r' \
  "$TMP/stdout" "$KEY" || fail "ls --json"

log "--exist-ok must match the element size"
expect_exit 0 "" "$SHMRING" create --key "$KEY" --kind slots --slot-size 12 --capacity 4K --exist-ok
expect_exit 5 "12-byte elements, asked for 8" \
  "$SHMRING" create --key "$KEY" --kind slots --slot-size 8 --capacity 4K --exist-ok

log "the record tools refuse a slots ring (exit 5) and name Queue<T>"
expect_exit 5 "is a slots ring" "$PRODUCE" --key "$KEY" --timeout 5 < /dev/null
grep -q "QueueWriter" "$TMP/err" || fail "shm-produce's message does not name QueueWriter"
expect_exit 5 "is a slots ring" "$CONSUME" --key "$KEY" --timeout 5
expect_exit 2 "" "$PRODUCE" --key "$K2" --create --kind slots < /dev/null
ring_exists "$K2" && fail "shm-produce --kind slots created a ring"

log "rm"
expect_exit 0 "" "$SHMRING" rm --key "$KEY"
ring_exists "$KEY" && fail "rm left the slots ring"
expect_no_leak
echo PASS
