# Helpers shared by the e2e sh_tests. Sourced with the tools' paths as
# arguments: lib.sh PRODUCE CONSUME RING.
#
# Every test gets a key derived from its name (Bazel's sandbox also gives
# each test its own IPC namespace), a trap that kills what it started and
# removes its rings, and a leak check against the segment count at start.
set -euo pipefail

PRODUCE=$(realpath "$1")
CONSUME=$(realpath "$2")
SHMRING=$(realpath "$3")
TMP=${TEST_TMPDIR:-$(mktemp -d)}

# A key of our own: 0x5e + 24 bits of a checksum of the test's name.
KEY=$(printf '0x5e%06x' $(( $(printf '%s' "${TEST_TARGET:-$0}" | cksum | cut -d' ' -f1) % 0xffffff )))
KEYS=("$KEY")
CLEANUP_DIRS=()  # removed by the trap

segments() { ipcs -m | awk '$1 ~ /^0x/' | wc -l; }
SEGMENTS_AT_START=$(segments)

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

# Waits (bounded) until ring KEY exists with at least N attachments.
wait_attached() {
  local key=$1 n=$2 i
  for i in $(seq 1 1000); do
    local att
    att=$(ipcs -m | awk -v k="$(printf '0x%08x' "$key")" '$1 == k { print $6 }')
    if [ -n "$att" ] && [ "$att" -ge "$n" ]; then return 0; fi
    sleep 0.02
  done
  ipcs -m >&2
  fail "ring $key never had $n attachments"
}

ring_exists() {
  ipcs -m | awk -v k="$(printf '0x%08x' "$1")" '$1 == k { f = 1 } END { exit !f }'
}

# The test must leave the namespace as it found it (tools remove their
# rings with --remove-on-exit; the trap is only the safety net).
expect_no_leak() {
  local now
  now=$(segments)
  if [ "$now" -ne "$SEGMENTS_AT_START" ]; then
    ipcs -m >&2
    fail "segments: $SEGMENTS_AT_START at start, $now now (a ring was left behind)"
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
