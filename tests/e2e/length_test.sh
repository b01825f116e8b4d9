#!/usr/bin/env bash
# --framing length: [u32 little-endian length][payload] frames round-trip
# byte-exact, including 0-byte frames and frames of exactly the largest
# record the ring takes; one byte more is refused with exit 7, a truncated
# frame with exit 12.
#   length_test.sh PRODUCE CONSUME RING
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
CAP=64K
MAX=$(( 64 * 1024 / 2 - 8 ))   # half the ring minus the 8-byte header
log "length frames through a $CAP ring $KEY (largest record $MAX bytes)"

frames() {  # frames FILE SIZE...: writes one frame of random bytes per SIZE
  python3 - "$@" <<'PY'
import os, struct, sys
with open(sys.argv[1], "wb") as f:
    for n in map(int, sys.argv[2:]):
        f.write(struct.pack("<I", n) + os.urandom(n))
PY
}

# Edge sizes first, then many random ones, with 0-byte and max-size frames
# mixed in (so they also land at arbitrary ring offsets and wrap points).
sizes=(0 0 1 7 8 9 "$MAX" 0 "$MAX" 4096 65 "$((MAX - 1))")
for i in $(seq 1 3000); do
  case $((i % 50)) in
    0) sizes+=("$MAX") ;;
    1) sizes+=(0) ;;
    *) sizes+=($((RANDOM % 3000))) ;;
  esac
done
frames "$TMP/in" "${sizes[@]}"

"$CONSUME" --key "$KEY" --create --capacity "$CAP" --stats-json="$TMP/c.json" > "$TMP/out" &
consumer=$!
wait_attached "$KEY" 1
"$PRODUCE" --key "$KEY" --framing length < "$TMP/in" || fail "shm-produce exited $?"
wait "$consumer" || fail "shm-consume exited $?"
cmp "$TMP/in" "$TMP/out" || fail "length frames did not round-trip (auto framing)"
grep -q "\"records\":${#sizes[@]}," "$TMP/c.json" || fail "want ${#sizes[@]} records: $(cat "$TMP/c.json")"

# The same frames read back with an explicit --framing length.
"$PRODUCE" --key "$KEY" --framing length < "$TMP/in" &
producer=$!
"$CONSUME" --key "$KEY" --framing length > "$TMP/out2" || fail "shm-consume exited $?"
wait "$producer" || fail "shm-produce exited $?"
cmp "$TMP/in" "$TMP/out2" || fail "length frames did not round-trip (--framing length)"

# One byte over the largest record: exit 7, and the frames before it arrive.
frames "$TMP/big" 5 "$((MAX + 1))" 5
set +e
"$PRODUCE" --key "$KEY" --framing length < "$TMP/big" 2> "$TMP/err"
rc=$?
set -e
expect_rc 7 "$rc" "frame of max+1 bytes"
expect_grep "larger than the largest record" "$TMP/err"
"$CONSUME" --key "$KEY" --framing bytes --count 1 > "$TMP/first" || fail "consume after refusal"
[ "$(stat -c %s "$TMP/first")" -eq 5 ] || fail "the frame before the refused one was not delivered"

# Truncated input: the length says 100, 10 bytes follow: exit 12.
python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<I", 100) + b"x" * 10)' > "$TMP/trunc"
set +e
"$PRODUCE" --key "$KEY" --framing length < "$TMP/trunc" 2> "$TMP/err"
rc=$?
set -e
expect_rc 12 "$rc" "truncated frame"
expect_grep "input ends inside frame 1" "$TMP/err"

"$SHMRING" rm --key "$KEY" > /dev/null
expect_no_leak
echo "PASS: ${#sizes[@]} frames round-trip, limits enforced"
