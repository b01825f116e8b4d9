#!/usr/bin/env bash
# Round-trips records through a real ring between the example consumer and
# producer (two processes), checks they arrive byte-exact and in order, and
# that the consumer removed the ring. Used by //examples/cpp:roundtrip_test,
# by CMake's ctest and by scripts/consumer-builds for each consumer build.
#   roundtrip_test.sh PRODUCE CONSUME
set -euo pipefail
if [ "$#" -ne 2 ]; then
  echo "usage: $0 PRODUCE CONSUME" >&2
  exit 2
fi
produce=$1 consume=$2

# A key no other process uses: this script's prefix (0x14, issue 14) and
# its pid, unique among live processes.
key=$(printf '0x14%06x' $(( $$ & 0xffffff )))
out=$(mktemp)
consumer=
cleanup() {
  if [ -n "$consumer" ]; then kill "$consumer" 2>/dev/null || true; fi
  rm -f "$out" "$out.expected"
  # Only on failure is the ring still there; never touch another key.
  ipcrm -M "$key" 2>/dev/null || true
}
trap cleanup EXIT

# Bounded: a lost wake-up fails the check instead of hanging CI.
timeout 60 "$consume" "$key" > "$out" &
consumer=$!
timeout 60 "$produce" "$key" "hello" "shared memory" "" "$(printf 'tab\there')"
if ! wait "$consumer"; then
  consumer=
  echo "roundtrip: the consumer failed" >&2
  exit 1
fi
consumer=

printf 'hello\nshared memory\n\ntab\there\n' > "$out.expected"
if ! cmp -s "$out.expected" "$out"; then
  echo "roundtrip: records differ; expected, then got:" >&2
  od -c "$out.expected" >&2
  od -c "$out" >&2
  exit 1
fi
if ipcs -m | awk -v k="$key" '$1 == k {found = 1} END {exit !found}'; then
  echo "roundtrip: ring $key is still there after the consumer finished" >&2
  exit 1
fi
echo "roundtrip: 4 records through ring $key and back, ring removed"
