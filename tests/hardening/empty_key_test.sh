#!/usr/bin/env bash
# An explicitly empty --key on a shm-ring subcommand is a usage error
# (exit 2, docs/tools.md), not the default ring.
#   bazel test //tests/hardening:empty_key_test
#   empty_key_test.sh PRODUCE CONSUME RING
source tests/e2e/lib.sh "$1" "$2" "$3"
# The default ring 0x5eed0001 is machine-wide outside the sandbox: it may be
# somebody's. This test never creates or removes it, except to undo what a
# deviating tool created (only if it was not there before).
DEFAULT=0x5eed0001
default_existed=0
ring_exists "$DEFAULT" && default_existed=1
failures=0
check() {  # WANT PATTERN CMD...: like expect_exit, but counts instead of exiting
  local want=$1 pattern=$2 rc
  shift 2
  set +e
  timeout -k 5 30 "$@" > "$TMP/stdout" 2> "$TMP/err" < /dev/null
  rc=$?
  set -e
  if [ "$rc" -ne "$want" ] || { [ -n "$pattern" ] && ! grep -q -- "$pattern" "$TMP/err"; }; then
    echo "DEVIATION: $(basename "$1") ${*:2}: exit $rc (want $want${pattern:+, '$pattern'}): $(head -c 300 "$TMP/err" "$TMP/stdout")" >&2
    failures=$((failures + 1))
  fi
}

# An empty --key (e.g. --key "$UNSET") is exit 2 for every subcommand, not
# the default ring 0x5eed0001 (create must not make it, info must not
# show it). Whether or not the default ring exists, info
# --key "" must be exit 2 (not 0 for it, not 3 for its absence).
check 2 "key is empty" "$SHMRING" create --key ""
if [ "$default_existed" -eq 0 ] && ring_exists "$DEFAULT"; then
  echo "DEVIATION: shm-ring create --key '' created the default ring" >&2
  failures=$((failures + 1))
  ipcrm -M "$DEFAULT" 2> /dev/null || true
fi
check 2 "key is empty" "$SHMRING" info --key ""

echo "$failures deviation(s)"
[ "$failures" -eq 0 ]
