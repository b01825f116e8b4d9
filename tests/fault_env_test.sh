#!/usr/bin/env bash
# fault_test refuses a FAULT_ROUNDS or FAULT_SEED that is not a number
# ("abc" used to mean zero rounds and a pass).
#   fault_env_test.sh FAULT_TEST_BINARY
set -uo pipefail
bin=$1
for env in FAULT_ROUNDS=abc FAULT_ROUNDS=10x FAULT_ROUNDS=-1 FAULT_ROUNDS= FAULT_SEED=abc; do
  out=$(env "$env" timeout 60 "$bin" 2>&1)
  rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "FAIL: $env: fault_test passed" >&2; exit 1
  fi
  name=${env%%=*}
  if ! grep -q "$name='.*' is not a" <<< "$out"; then
    echo "FAIL: $env: exit $rc without naming $name:" >&2; echo "$out" | tail -20 >&2; exit 1
  fi
  echo "ok: $env refused (exit $rc)"
done
echo "PASS: FAULT_ROUNDS / FAULT_SEED validated"
