#!/usr/bin/env bash
# The tools never lose a user's data by following the docs: a refused
# role, a stale or never-initialised ring, timeouts, exit 6's count, limits
# and removal, create races. One function per case (the recipes themselves
# are recipes_test.sh).
#   no_data_loss_test.sh PRODUCE CONSUME RING [stale]
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
source "$(dirname "$0")/own_keys.sh"

json_field() {  # json_field FIELD FILE: a top-level scalar of a JSON line
  python3 -c 'import json,sys; print(json.load(open(sys.argv[2]))[sys.argv[1]])' "$1" "$2"
}

# ------------------------------------------------- stale, in private IPC
# `rm --stale` and `ls` look at every ring: run where only ours exist.
if [ "${4:-}" = stale ]; then
  new_key K
  new_key K2
  echo important | "$PRODUCE" --key "$K" --create || fail "producer"
  # Unread data, nobody attached: not 0%, not idle, not stale.
  "$SHMRING" ls > "$TMP/ls"
  row=$(awk -v k="$K" '$1 == k' "$TMP/ls")
  [ -n "$row" ] || { cat "$TMP/ls" >&2; fail "ls does not list $K"; }
  [ "$(echo "$row" | awk '{ print $5 }')" != "0%" ] || fail "ls shows a ring holding a record as 0%: $row"
  [ "$(echo "$row" | awk '{ print $NF }')" = unread ] || fail "ls state for unread data: $row"
  "$SHMRING" info --key "$K" > "$TMP/info"
  expect_grep "(<0.1%)" "$TMP/info"
  expect_exit 0 "" "$SHMRING" rm --stale
  expect_grep "kept $K (shmid [0-9]*): [0-9]* unread bytes in 1 record; \`shm-ring rm --key $K\` drops it" "$TMP/stdout"
  expect_exit 0 "" "$CONSUME" --key "$K" --count 1
  [ "$(cat "$TMP/stdout")" = important ] || fail "rm --stale lost the record: '$(cat "$TMP/stdout")'"
  # Read, nobody attached, creator gone: now it is stale and goes.
  expect_exit 0 "stale" "$SHMRING" ls
  expect_exit 0 "removed stale ring $K" "$SHMRING" rm --stale
  ring_exists "$K" && fail "rm --stale kept a drained, used ring"
  # A ring made by `shm-ring create` and never used is not stale at once.
  expect_exit 0 "" "$SHMRING" create --key "$K2" --capacity 4K
  expect_exit 0 "" "$SHMRING" ls
  [ "$(awk -v k="$K2" '$1 == k { print $NF }' "$TMP/stdout")" = idle ] || fail "fresh ring not idle"
  expect_exit 0 "kept $K2 (shmid [0-9]*): never used" "$SHMRING" rm --stale
  ring_exists "$K2" || fail "rm --stale removed a ring made a moment ago"
  expect_exit 0 "" "$SHMRING" rm --key "$K2"
  # --json says the same.
  echo x | "$PRODUCE" --key "$K" --create || fail "producer"
  expect_exit 0 "" "$SHMRING" rm --stale --json
  python3 - "$TMP/stdout" "$K" <<'PY' || fail "rm --stale --json: $(cat "$TMP/stdout")"
import json, sys
j = json.load(open(sys.argv[1]))
assert sys.argv[2] not in j["removed"], j
assert any(k["key"] == sys.argv[2] and k["unread_bytes"] > 0 for k in j["kept"]), j
PY
  expect_exit 0 "" "$SHMRING" rm --key "$K"
  echo "PASS: no data loss: stale"
  exit 0
fi

# Cases run one by one in subshells, so that a run reports every failing
# case; their keys are taken here, where the cleanup trap sees them.
new_key K
new_key K6
new_key K6b
new_key K8
new_key K9
new_key K10
for m in keep remove remove-w; do new_key "K7_${m//-/_}"; done
for r in $(seq 1 10); do new_key "KR_$r"; done
new_key KP
log "key $K"

# --------------------------------------------------------------- refused role
case_refused_role() {
# A tool refused its role (exit 9) leaves the ring alone, --remove-on-exit
# or not: the live pair goes on.
# Bounded: the first consumer must not wait forever.
timeout -k 5 60 "$CONSUME" --key "$K" --create > "$TMP/first.out" &
first=$!
wait_attached "$K" 1
expect_exit 9 "already has a live consumer (pid " "$CONSUME" --key "$K" --create --remove-on-exit
expect_exit 0 "" "$SHMRING" info --key "$K" --json
[ "$(json_field marked_for_removal "$TMP/stdout")" = False ] || fail "a refused consumer marked the ring for removal"
mkfifo "$TMP/fifo"
timeout -k 5 60 "$PRODUCE" --key "$K" --framing lines < "$TMP/fifo" &
producer=$!
exec 3<> "$TMP/fifo"  # read-write: never blocks, even if the producer is gone
wait_attached "$K" 2
expect_exit 9 "already has a live producer (pid " "$PRODUCE" --key "$K" --create --remove-on-exit < /dev/null
expect_exit 0 "" "$SHMRING" info --key "$K" --json
[ "$(json_field marked_for_removal "$TMP/stdout")" = False ] || fail "a refused producer marked the ring for removal"
echo "still here" >&3
exec 3>&-
expect_job 0 "$producer" "the first producer"
expect_job 0 "$first" "the first consumer"
[ "$(cat "$TMP/first.out")" = "still here" ] || fail "first pair got '$(cat "$TMP/first.out")'"
# A tool that did get its role still removes the ring.
echo bye | "$PRODUCE" --key "$K" || fail "producer"
expect_exit 0 "" "$CONSUME" --key "$K" --remove-on-exit
ring_exists "$K" && fail "--remove-on-exit of a consumer with its role kept the ring"
  return 0
}

# -------------------------------------------------------------- uninitialised
case_uninitialised() {
# A segment that was never initialised: the advice printed works as printed.
shmid=$(ipcmk -M 8192 -p 0600 | awk '{ print $NF }')
zkey=$(ipcs -m | awk -v id="$shmid" '$2 == id { print $1 }')
KEYS+=("$zkey")
expect_exit 5 "never initialised" "$CONSUME" --key "$zkey"
advice=$(grep -o '`shm-ring rm [^`]*`' "$TMP/err" | tr -d '`') || fail "no removal advice: $(cat "$TMP/err")"
expect_exit 5 "never initialised" "$SHMRING" rm --key "$zkey"
grep -qF "$advice" "$TMP/err" || fail "rm gives other advice: $(cat "$TMP/err")"
# shellcheck disable=SC2086  # the advice is a command line
expect_exit 0 "removed" "$SHMRING" ${advice#shm-ring }
ring_exists "$zkey" && fail "following the advice did not remove the segment"
shmid=$(ipcmk -M 8192 -p 0600 | awk '{ print $NF }')
KEYS+=("$(ipcs -m | awk -v id="$shmid" '$2 == id { print $1 }')")
expect_exit 5 "\`shm-ring rm --id $shmid --force\`" "$SHMRING" info --id "$shmid"
expect_exit 0 "" "$SHMRING" rm --id "$shmid" --force
  return 0
}

# -------------------------------------------------------------- stats timeout
# --stats-json says "timeout" for every timeout, the first peer's included.
case_stats_timeout() {
head -c 8192 /dev/zero > "$TMP/8k"
expect_exit 8 "" "$PRODUCE" --key "$K6" --create --capacity 4K --timeout 0.3 --stats-json="$TMP/p.json" < "$TMP/8k"
[ "$(json_field end "$TMP/p.json")" = timeout ] || fail "producer first-peer timeout: $(cat "$TMP/p.json")"
[ "$(json_field exit_code "$TMP/p.json")" = 8 ] || fail "producer exit_code: $(cat "$TMP/p.json")"
expect_grep "waiting for a consumer" "$TMP/err"
expect_exit 0 "" "$CONSUME" --key "$K6" --remove-on-exit > /dev/null
K6=$K6b
echo a | "$PRODUCE" --key "$K6" --create || fail "producer"
expect_exit 0 "" "$CONSUME" --key "$K6"
# Between streams: waiting for the next producer.
expect_exit 8 "" "$CONSUME" --key "$K6" --timeout 0.3 --stats-json="$TMP/c.json"
[ "$(json_field end "$TMP/c.json")" = timeout ] || fail "consumer first-producer timeout: $(cat "$TMP/c.json")"
expect_grep "waiting for a producer" "$TMP/err"
expect_exit 0 "" "$SHMRING" rm --key "$K6"
  return 0
}

# --------------------------------------------------------------------- exit 6
# Exit 6: the count of what stays is exact, and a ring marked for removal
# is not promised to a next consumer (nor waited on under -w).
case_exit_6() {
seq 1 2000 | sed 's/^/line /' > "$TMP/lines"
for mode in keep remove remove-w; do
  v="K7_${mode//-/_}"
  K7=${!v}
  flags=()
  [ "$mode" = keep ] || flags=(--remove-on-exit)
  wflag=()
  [ "$mode" = remove-w ] && wflag=(--wait-consumer)
  timeout -k 5 60 "$CONSUME" --key "$K7" --create --capacity 4K --count 1 "${flags[@]}" > "$TMP/one" &
  c=$!
  wait_attached "$K7" 1
  expect_exit 6 "" "$PRODUCE" --key "$K7" --framing lines "${wflag[@]}" < "$TMP/lines"
  expect_job 0 "$c" "consumer --count 1 ($mode)"
  [ "$(cat "$TMP/one")" = "line 1" ] || fail "first record: '$(cat "$TMP/one")'"
  msg=$(cat "$TMP/err")
  n=$(echo "$msg" | sed -n 's/.*; \([0-9]*\) unread records (of \([0-9]*\) committed).*/\1/p')
  [ -n "$n" ] || fail "$mode: no unread count in: $msg"
  if [ "$mode" = keep ]; then
    echo "$msg" | grep -q "stay in the ring for the next consumer" || fail "keep: $msg"
    expect_exit 0 "" "$CONSUME" --key "$K7" --remove-on-exit --timeout 10
    got=$(wc -l < "$TMP/stdout")
    [ "$got" -eq "$n" ] || fail "the message says $n records stay, the next consumer got $got"
    [ "$(head -1 "$TMP/stdout")" = "line 2" ] || fail "next consumer starts at '$(head -1 "$TMP/stdout")'"
  else
    echo "$msg" | grep -q "marked for removal, so no consumer can attach" || fail "$mode: $msg"
    echo "$msg" | grep -q "next consumer" && fail "$mode: promises a next consumer: $msg"
  fi
  ring_exists "$K7" && fail "$mode: ring left behind"
done
  return 0
}

# -------------------------------------------------------------- max producers
case_max_producers() {
expect_exit 2 "max-producers 0" "$SHMRING" create --key "$K8" --kind mpsc --max-producers 0
ring_exists "$K8" && fail "--max-producers 0 created a ring"
expect_exit 0 "" "$SHMRING" create --key "$K8" --kind mpsc --max-producers 1 --json
[ "$(json_field max_producers "$TMP/stdout")" = 1 ] || fail "--max-producers 1: $(cat "$TMP/stdout")"
expect_exit 0 "" "$SHMRING" rm --key "$K8"
  return 0
}

# --------------------------------------------------------------- memory limit
# More than this machine's memory (RAM + swap), within 2^40 and shmmax:
# exit 13, naming memory, not advising to raise a limit that is not it.
case_memory_limit() {
mem=$(awk '/^(MemTotal|SwapTotal):/ { s += $2 * 1024 } END { printf "%.0f", s }' /proc/meminfo)
cap=$((1 << 30))
while [ "$cap" -le $((2 * mem)) ] && [ "$cap" -lt $((1 << 40)) ]; do cap=$((cap * 2)); done
shmmax=$(cat /proc/sys/kernel/shmmax)
if [ "$(cat /proc/sys/vm/overcommit_memory)" = 1 ]; then
  log "memory_limit: vm.overcommit_memory=1 commits any size; the shmmax case is tool_rows_test's"
else
  expect_exit 13 "" "$SHMRING" create --key "$K9" --capacity "$cap"
  if python3 -c "import sys; sys.exit(not int(sys.argv[1]) >= int(sys.argv[2]) + 4096)" "$shmmax" "$cap"; then
    expect_grep "not enough memory" "$TMP/err"
    grep -q "sysctl -w kernel.shmmax" "$TMP/err" && fail "advises raising shmmax, which is not the limit: $(cat "$TMP/err")"
  else
    expect_grep "exceeds kernel.shmmax" "$TMP/err"
  fi
  ring_exists "$K9" && fail "a refused create left a segment"
fi
  return 0
}

# ----------------------------------------------------- removed while attached
case_removed_while_attached() {
"$CONSUME" --key "$K10" --create > /dev/null &
c=$!
wait_attached "$K10" 1
expect_exit 0 "it disappears when its 1 attached process detaches$" "$SHMRING" rm --key "$K10"
# No producer can attach a removed ring: the consumer says so and detaches.
expect_job_within 30 3 "$c" "consumer of the removed ring"
expect_exit 2 "SHMRING_KEY" env SHMRING_KEY=zz "$CONSUME"
expect_exit 2 "SHMRING_KEY" env SHMRING_KEY=0 "$SHMRING" info
  return 0
}

# ---------------------------------------------------------------- create race
# --create on both sides started at once: exactly one creates, the other
# attaches, neither fails.
case_create_race() {
for round in $(seq 1 10); do
  v="KR_$round"
  KR=${!v}
  "$CONSUME" --key "$KR" --create --remove-on-exit > "$TMP/race.out" 2> "$TMP/race.err" &
  c=$!
  echo "round $round" | "$PRODUCE" --key "$KR" --create 2> "$TMP/race.perr" ||
    fail "round $round: producer failed: $(cat "$TMP/race.perr")"
  expect_job 0 "$c" "round $round consumer"
  [ "$(cat "$TMP/race.out")" = "round $round" ] || fail "round $round: '$(cat "$TMP/race.out")' $(cat "$TMP/race.err")"
  ring_exists "$KR" && fail "round $round: ring left behind"
done
# --producers N: the stream is not over until N producers came (the first
# one here is done before the consumer starts), bounded by --timeout.
echo first | "$PRODUCE" --key "$KP" --create --kind mpsc || fail "first producer"
expect_exit 8 "waiting for 1 more of the 2 producers (--producers)" "$CONSUME" --key "$KP" --producers 2 --timeout 0.5 --stats-json
[ "$(cat "$TMP/stdout")" = first ] || fail "--producers: '$(cat "$TMP/stdout")'"
expect_grep '"end":"timeout"' "$TMP/err"
expect_exit 2 "excludes" "$CONSUME" --key "$KP" --producers 2 --follow
expect_exit 0 "" "$SHMRING" rm --key "$KP"
  return 0
}

# stale where only this test's rings are listed.
case_stale() { in_private_ipc bash "$0" "$PRODUCE" "$CONSUME" "$SHMRING" stale; }

failed=()
for name in create_race refused_role stale uninitialised stats_timeout \
  exit_6 max_producers memory_limit removed_while_attached; do
  log "case $name"
  # In the background: a subshell tested with || would run with set -e
  # switched off.
  ( "case_$name" ) &
  wait $! || failed+=("$name")
done
[ "${#failed[@]}" -eq 0 ] || fail "no data loss: cases failing: ${failed[*]}"
for k in "${KEYS[@]}"; do ring_exists "$k" && fail "ring $k left behind"; done
echo "PASS: no data loss"
