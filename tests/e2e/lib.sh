# Helpers shared by the e2e sh_tests. Sourced with the tools' paths as
# arguments: lib.sh PRODUCE CONSUME RING.
#
# Every test gets keys of its own (below), a trap that kills what it started
# and removes its rings, and a leak check on the segments under its keys.
# Nothing here relies on Bazel's sandbox: the suite passes with
# --spawn_strategy=standalone, next to other rings and other test runs.
set -euo pipefail

PRODUCE=$(realpath "$1")
CONSUME=$(realpath "$2")
SHMRING=$(realpath "$3")
TMP=${TEST_TMPDIR:-$(mktemp -d)}

# The suite's key range (tests/support.h, .ci/run's leak check): the high
# byte 0x5e, then 16 bits of this shell's pid, then 8 bits the test picks:
# KEY is ...00, a test's further rings KEY+1, KEY+2, ... Unique per test
# process while pid_max <= 65536.
KEY=$(printf '0x5e%04x00' $(( $$ & 0xffff )))
KEYS=("$KEY")
CLEANUP_DIRS=()  # removed by the trap

# Keys (0x%08x) of every segment in this IPC namespace.
all_keys() {
  awk 'NR > 1 { printf "0x%08x\n", ($1 < 0 ? $1 + 4294967296 : $1) }' /proc/sysvipc/shm
}
# Segments this test owns: under its key block KEY..KEY+255, or one of KEYS
# (e.g. an ftok key or ipcmk's). Never a machine-wide count.
own_segments() {
  local block=$(( KEY >> 8 ))
  all_keys | { n=0; while read -r k; do
    if [ $(( k >> 8 )) -eq "$block" ]; then n=$((n + 1)); continue; fi
    for o in "${KEYS[@]}"; do
      if [ $((k)) -eq $((o)) ]; then n=$((n + 1)); break; fi
    done
  done; echo "$n"; }
}
SEGMENTS_AT_START=$(own_segments)
# Role semaphore sets (one per ring, under the ring's key) this test owns:
# under its key block or one of KEYS, from /proc/sysvipc/sem.
own_sem_sets() {
  local block=$(( KEY >> 8 ))
  awk 'NR > 1 { printf "0x%08x\n", ($1 < 0 ? $1 + 4294967296 : $1) }' /proc/sysvipc/sem |
    { n=0; while read -r k; do
      if [ $(( k >> 8 )) -eq "$block" ]; then n=$((n + 1)); continue; fi
      for o in "${KEYS[@]}"; do
        if [ $((k)) -eq $((o)) ]; then n=$((n + 1)); break; fi
      done
    done; echo "$n"; }
}
SEM_SETS_AT_START=$(own_sem_sets)

# ftok_key FILE PROJ: glibc's ftok(FILE, PROJ) for a one-character PROJ.
ftok_key() {
  local dev ino proj
  read -r dev ino < <(stat -L -c '%d %i' "$1")
  proj=$(printf '%d' "'$2")
  printf '0x%08x' $(( ((proj & 0xff) << 24) | ((dev & 0xff) << 16) | (ino & 0xffff) ))
}

# privileged_skip WHY: a part that needs privileges this environment does
# not grant (a second user, root, unshare) is skipped, visibly; under
# SHMRING_REQUIRE_PRIVILEGED=1 (.ci/run, as root) the skip is a failure.
privileged_skip() {
  echo "PRIVILEGED TEST SKIPPED: $*" >&2
  if [ "${SHMRING_REQUIRE_PRIVILEGED:-}" = 1 ]; then
    fail "privileged test skipped while SHMRING_REQUIRE_PRIVILEGED=1: $*"
  fi
}

cleanup() {
  local rc=$?
  # Kill what the test left running, then remove its rings whatever happened.
  local p
  for p in $(jobs -p); do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  local k
  for k in "${KEYS[@]}"; do
    ipcrm -M "$k" 2>/dev/null || true
    ipcrm -S "$k" 2>/dev/null || true  # the ring's role semaphore set
  done
  [ "${#CLEANUP_DIRS[@]}" -eq 0 ] || rm -rf "${CLEANUP_DIRS[@]}"
  exit "$rc"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "--- $*" >&2; }

# expect_rc WANT GOT WHAT
expect_rc() {
  [ "$2" -eq "$1" ] || fail "$3: exit code $2, expected $1"
}

# expect_grep PATTERN FILE: a message the user must see.
expect_grep() {
  grep -q -- "$1" "$2" || { cat "$2" >&2; fail "expected '$1' in $2"; }
}

# wait_attached KEY N: waits (bounded, 60 s) until N processes hold their
# roles on ring KEY (a live consumer or broadcast cursor, live producers),
# as `shm-ring info` shows them. Not the segment's attachment count: a tool
# attaches (shmat) before it takes its role, so N attachments do not mean N
# roles taken, and a test acting on the roles would race the tool.
wait_attached() {
  local key=$1 n=$2 deadline=$(( SECONDS + 60 ))
  while :; do
    if "$SHMRING" info --key "$key" --json 2> /dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)
held = sum(bool(c.get("alive")) for c in j.get("consumers") or [])
held += bool((j.get("consumer") or {}).get("alive"))
held += sum(bool(p.get("alive")) for p in j.get("producers") or [])
sys.exit(0 if held >= int(sys.argv[1]) else 1)' "$n"; then
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.02
  done
  "$SHMRING" info --key "$key" >&2 || true
  fail "ring $key never had $n processes holding their roles"
}

# wait_nattach KEY N: waits (bounded, 60 s) until ring KEY has at least N
# attachments (shm_nattch), for a process that maps the ring but takes no
# role (shm-ring watch).
wait_nattach() {
  local key=$1 n=$2 att deadline=$(( SECONDS + 60 ))
  while :; do
    att=$(ipcs -m | awk -v k="$(printf '0x%08x' "$key")" '$1 == k { print $6 }')
    if [ -n "$att" ] && [ "$att" -ge "$n" ]; then return 0; fi
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.02
  done
  ipcs -m >&2
  fail "ring $key never had $n attachments"
}

# wait_listening PORT: waits (bounded, 60 s) until a TCP socket listens on
# PORT (state 0A in /proc/net/tcp or tcp6), so a client started next does
# not race the listener's start-up.
wait_listening() {
  local hex deadline=$(( SECONDS + 60 ))
  hex=$(printf '%04X' "$1")
  until cat /proc/net/tcp /proc/net/tcp6 2> /dev/null | grep -q ":$hex [0-9A-F]*:0000 0A"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "nothing listens on port $1 after 60 s"
    sleep 0.02
  done
}

ring_exists() {
  ipcs -m | awk -v k="$(printf '0x%08x' "$1")" '$1 == k { f = 1 } END { exit !f }'
}

# The test must leave its keys as it found them (tools remove their rings
# with --remove-on-exit; the trap is only the safety net).
expect_no_leak() {
  local now
  now=$(own_segments)
  if [ "$now" -ne "$SEGMENTS_AT_START" ]; then
    ipcs -m >&2
    fail "segments under this test's keys: $SEGMENTS_AT_START at start, $now now (a ring was left behind)"
  fi
  now=$(own_sem_sets)
  if [ "$now" -ne "$SEM_SETS_AT_START" ]; then
    ipcs -s >&2
    fail "semaphore sets under this test's keys: $SEM_SETS_AT_START at start, $now now (a ring's role semaphore set was left behind)"
  fi
}

# expect_exit WANT PATTERN CMD...: runs CMD (bounded to 30 s; stdin is the
# caller's), wants exit code WANT and, unless PATTERN is empty, PATTERN in
# its stderr or stdout. Leaves stdout in $TMP/stdout and stderr in $TMP/err.
expect_exit() {
  local want=$1 pattern=$2 rc
  shift 2
  set +e
  timeout -k 5 30 "$@" > "$TMP/stdout" 2> "$TMP/err"
  rc=$?
  set -e
  if [ "$rc" -ne "$want" ]; then
    cat "$TMP/err" >&2
    fail "$(basename "$1") ${*:2}: exit $rc, expected $want"
  fi
  if [ -n "$pattern" ]; then
    cat "$TMP/err" "$TMP/stdout" > "$TMP/both"
    expect_grep "$pattern" "$TMP/both"
  fi
  log "ok: exit $rc: $(basename "$1") ${*:2}"
}

# wait_for_size FILE BYTES: waits (bounded) until FILE has at least BYTES.
wait_for_size() {
  local i
  for i in $(seq 1 3000); do
    [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
    sleep 0.02
  done
  fail "$1 never reached $2 bytes"
}

# expect_job WANT PID WHAT: a background job's exit code (not in a
# subshell: only this shell can wait for its children).
expect_job() {
  local rc=0
  wait "$2" || rc=$?
  [ "$rc" -eq "$1" ] || fail "$3: exit $rc, expected $1"
  log "ok: exit $rc: $3"
}

# expect_job_within SECONDS WANT PID WHAT: like expect_job, but fails
# (instead of hanging) if the job is still running after SECONDS, a
# generous liveness bound.
expect_job_within() {
  local i
  for i in $(seq 1 $(( $1 * 50 ))); do
    kill -0 "$3" 2> /dev/null || break
    sleep 0.02
  done
  kill -0 "$3" 2> /dev/null && fail "$4: still running after $1 s"
  expect_job "$2" "$3" "$4"
}

# ---- Holding a stream at a point. A test that acts "mid-stream" (kill,
# SIGSTOP, a signal) first holds the stream there, so the action lands at
# the same point on a fast or a slow machine: the producer's stdin is a
# fifo the test writes a part of the input to and then stops writing to
# (source_*), or a consumer's stdout is a fifo the test stops reading
# (read_exactly).

# source_open NAME: makes the fifo $TMP/NAME, to be the stdin of a job the
# caller starts next (`< "$TMP/NAME" &`), then source_attach NAME opens the
# test's write end as fd $SOURCE_FD (blocks until the job opened it).
source_open() { rm -f "$TMP/$1"; mkfifo "$TMP/$1"; }
source_attach() { exec {SOURCE_FD}> "$TMP/$1"; }
# source_feed FILE FROM TO: bytes [FROM, TO) of FILE into the source; the
# job's input then pauses there until the next feed.
source_feed() {
  dd if="$1" bs=64K iflag=skip_bytes,count_bytes skip="$2" count=$(( $3 - $2 )) \
    status=none >&"$SOURCE_FD"
}
# source_close: end of the job's input.
source_close() { exec {SOURCE_FD}>&-; }

# read_exactly SECONDS BYTES FILE < FIFO: appends exactly BYTES from a fifo
# a job writes to onto FILE (blocking reads, no polling), failing if they do
# not come within SECONDS. Reading stops there: the writer then blocks once
# the pipe is full, where it is until the test reads again.
read_exactly() {
  local before after
  before=$(stat -c %s "$3" 2>/dev/null || echo 0)
  timeout -k 5 "$1" dd bs=64K iflag=fullblock,count_bytes count="$2" status=none >> "$3" || true
  after=$(stat -c %s "$3")
  [ $(( after - before )) -eq "$2" ] ||
    fail "read $(( after - before )) of $2 bytes from a fifo within $1 s"
}
