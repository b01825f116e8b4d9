#!/usr/bin/env bash
# shm_wr and shm_rd (the lecture's pair on the C API): in both start orders
# every line comes out as "You wrote: <line>" up to and including "end", the
# reader exits 0 and removes the ring. Also: Ctrl-C (SIGINT) on a waiting
# reader removes the ring (exit 130); usage errors exit 2.
set -euo pipefail
WR=$(realpath "$1")
RD=$(realpath "$2")
TMP=${TEST_TMPDIR:-$(mktemp -d)}
WORK=$(mktemp -d "$TMP/lecture.XXXXXX")
PATHFILE="$WORK/somefile3"  # the lecture's ftok path; ours is per test run
: >"$PATHFILE"

# ftok(PATH, 'R') as glibc computes it, to check for leaks with ipcs.
ftok_key() {
  local dev ino
  read -r dev ino < <(stat -c '%d %i' "$1")
  printf '0x%08x' $(( (0x52 << 24) | ((dev & 0xff) << 16) | (ino & 0xffff) ))
}
KEY=$(ftok_key "$PATHFILE")
cleanup() {
  local rc=$? p
  for p in $(jobs -p); do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ipcrm -M "$KEY" 2>/dev/null || true
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ring_exists() { ipcs -m | awk -v k="$KEY" '$1 == k' | grep -q .; }

# Input: ordinary lines, an empty one, spaces, a 20,000-byte one (longer
# than the lecture's BUFSIZ), then "end", then a line that must not arrive.
LONG=$(head -c 20000 /dev/zero | tr '\0' 'x')
printf 'Hello, ring\n\n  spaced  out  \n%s\nend\nafter end\n' "$LONG" >"$WORK/in"
{
  printf 'You wrote: Hello, ring\nYou wrote: \nYou wrote:   spaced  out  \n'
  printf 'You wrote: %s\nYou wrote: end\n' "$LONG"
} >"$WORK/want"

echo "--- reader first"
"$RD" "$PATHFILE" >"$WORK/out1" &
rd=$!
sleep 0.3  # the reader waits for a writer, like a FIFO
"$WR" "$PATHFILE" <"$WORK/in"
wait "$rd" || fail "reader exited $?"
cmp "$WORK/want" "$WORK/out1" || fail "reader-first output differs"
ring_exists && fail "reader-first: ring $KEY left behind"

echo "--- writer first"
"$WR" "$PATHFILE" <"$WORK/in"  # the lines wait in the ring; writer exits
ring_exists || fail "writer-first: no ring $KEY after the writer"
timeout 20 "$RD" "$PATHFILE" >"$WORK/out2" || fail "reader exited $?"
cmp "$WORK/want" "$WORK/out2" || fail "writer-first output differs"
ring_exists && fail "writer-first: ring $KEY left behind"

echo "--- end of input without \"end\": the writer sends it"
printf 'one\ntwo' | "$WR" "$PATHFILE"
timeout 20 "$RD" "$PATHFILE" >"$WORK/out3" || fail "reader exited $?"
printf 'You wrote: one\nYou wrote: two\nYou wrote: end\n' | cmp - "$WORK/out3" ||
  fail "EOF output differs"

echo "--- Ctrl-C on a waiting reader removes the ring"
"$RD" "$PATHFILE" >/dev/null &
rd=$!
for _ in $(seq 100); do ring_exists && break; sleep 0.05; done
ring_exists || fail "the reader never created $KEY"
kill -INT "$rd"
set +e
wait "$rd"
rc=$?
set -e
[ "$rc" -eq 130 ] || fail "interrupted reader exited $rc, expected 130"
ring_exists && fail "interrupted reader left $KEY behind"

echo "--- usage"
set +e
"$RD" 2>/dev/null; r1=$?
"$WR" a b 2>/dev/null; r2=$?
"$RD" "$WORK/no-such-file" 2>"$WORK/err"; r3=$?
set -e
if [ "$r1" -ne 2 ] || [ "$r2" -ne 2 ]; then
  fail "usage exit codes $r1 $r2, expected 2"
fi
[ "$r3" -eq 1 ] || fail "missing path: exit $r3, expected 1"
grep -q . "$WORK/err" || fail "missing path: no message"
cat "$WORK/err"
echo "PASS"
