#!/usr/bin/env bash
# Deviations of the tools from docs/tools.md found while writing
# tool_rows_test.sh, kept as regression checks once fixed: an explicitly
# empty --key on a shm-ring subcommand must be a usage error (exit 2), not
# the default ring.
#   bazel test //tests/hardening:tool_deviations_test
#   tool_deviations_test.sh PRODUCE CONSUME RING
source tests/e2e/lib.sh "$1" "$2" "$3"
KEYS+=(0x5eed0001)
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

# An empty --key (e.g. --key "$UNSET") is exit 2 for shm-produce,
# shm-consume and shm-ring rm, but shm-ring create and info still take it
# as the default ring 0x5eed0001 (and create makes it).
check 2 "key is empty" "$SHMRING" create --key ""
ipcrm -M 0x5eed0001 2> /dev/null || true
"$SHMRING" create --key 0x5eed0001 > /dev/null
check 2 "key is empty" "$SHMRING" info --key ""
ipcrm -M 0x5eed0001 2> /dev/null || true

echo "$failures deviation(s)"
[ "$failures" -eq 0 ]
