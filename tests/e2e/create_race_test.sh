#!/usr/bin/env bash
# The --create race (docs/tools.md): both sides started at the same moment
# with --create; whichever loses attaches to the winner's ring (never exit
# 3 or 5, never two rings), and the data goes through. 30 rounds, with the
# same --capacity on both sides (the loser's must match the winner's).
#   create_race_test.sh PRODUCE CONSUME RING
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
for round in $(seq 1 30); do
  "$CONSUME" --key "$KEY" --create --capacity 4K --remove-on-exit --timeout 30 \
    > "$TMP/out" 2> "$TMP/cerr" &
  c=$!
  echo "round $round" | "$PRODUCE" --key "$KEY" --create --capacity 4K --timeout 30 2> "$TMP/perr" &
  p=$!
  rc=0; wait "$p" || rc=$?
  [ "$rc" -eq 0 ] || { cat "$TMP/perr" >&2; fail "round $round: producer exit $rc"; }
  rc=0; wait "$c" || rc=$?
  [ "$rc" -eq 0 ] || { cat "$TMP/cerr" >&2; fail "round $round: consumer exit $rc"; }
  [ "$(cat "$TMP/out")" = "round $round" ] || fail "round $round: got '$(cat "$TMP/out")'"
  ring_exists "$KEY" && fail "round $round: the ring outlived --remove-on-exit"
done
log "30 create races: every loser attached to the winner's ring"

expect_no_leak
echo "PASS: the --create race"
