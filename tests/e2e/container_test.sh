#!/usr/bin/env bash
# A producer in another PID namespace (unshare --pid --fork --mount-proc,
# sharing our IPC namespace, as `docker run --ipc=container:X` does)
# attaches to an MPSC ring, delivers, and its kill -9 is noticed by the
# consumer within the usual bound. unshare (util-linux, scripts/setup) must
# exist; where creating a PID namespace is refused with "Operation not
# permitted" (no root, no user namespaces) the test is skipped visibly
# (privileged_skip: a failure under SHMRING_REQUIRE_PRIVILEGED=1); any other
# unshare failure is a failure.
source "$(dirname "$0")/lib.sh"

command -v unshare >/dev/null || fail "unshare not found (util-linux, scripts/setup)"
if ! err=$(unshare --pid --fork --mount-proc true 2>&1); then
  case "$err" in
    *"Operation not permitted"*)
      privileged_skip "unshare --pid --fork --mount-proc: $err"
      echo "PASS (skipped: cannot create a PID namespace here)"
      exit 0 ;;
    *) fail "unshare --pid --fork --mount-proc: $err" ;;
  esac
fi

"$SHMRING" create --key "$KEY" --kind mpsc --capacity 65536 >/dev/null

# 1. Delivery from another PID namespace.
"$CONSUME" --key "$KEY" --count 100 >"$TMP/out" &
consumer=$!
seq 1 100 | unshare --pid --fork --mount-proc "$PRODUCE" --key "$KEY" --kind mpsc \
  || fail "producer in a new PID namespace"
wait "$consumer" || fail "consumer exit $?"
[ "$(seq 1 100)" = "$(cat "$TMP/out")" ] || fail "records from the other namespace differ"

# The ring's semaphore set is there, under the ring's key.
"$SHMRING" info --key "$KEY" >"$TMP/info"
expect_grep "semaphores  semid" "$TMP/info"
[ "$(own_sem_sets)" -eq 1 ] || fail "no semaphore set under $KEY"

# 2. kill -9 of a producer in another PID namespace: the consumer (which
# follows the stream to its end) sees end of stream within the bound.
"$CONSUME" --key "$KEY" >"$TMP/out2" 2>"$TMP/err2" &
consumer=$!
( while :; do echo line; sleep 0.01; done ) |
  unshare --pid --fork --mount-proc "$PRODUCE" --key "$KEY" --kind mpsc 2>/dev/null &
pipeline=$!
deadline=$(( SECONDS + 60 ))  # unshare and exec on a loaded machine
until [ -s "$TMP/out2" ] || [ "$SECONDS" -ge "$deadline" ]; do
  sleep 0.01
done
[ -s "$TMP/out2" ] || fail "nothing delivered from the namespaced producer"
# The producer as the host sees it: shm-produce, child of unshare.
victim=$(pgrep -f "^$PRODUCE --key $KEY" | head -1)
[ -n "$victim" ] || fail "cannot find the namespaced producer"
"$SHMRING" info --key "$KEY" >"$TMP/info2"
expect_grep "alive" "$TMP/info2"
start=$(date +%s%N)
kill -KILL "$victim"
for i in $(seq 1 300); do
  kill -0 "$consumer" 2>/dev/null || break
  sleep 0.01
done
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
kill -0 "$consumer" 2>/dev/null && fail "consumer still waiting ${elapsed_ms} ms after the kill"
wait "$consumer" || fail "consumer exit $? after the producer's death: $(cat "$TMP/err2")"
echo "end of stream ${elapsed_ms} ms after kill -9 of a producer in another PID namespace"
[ "$elapsed_ms" -lt 1000 ] || fail "noticed after ${elapsed_ms} ms (bound 1000 ms)"
kill "$pipeline" 2>/dev/null || true

"$SHMRING" rm --key "$KEY" >/dev/null
[ "$(own_sem_sets)" -eq 0 ] || fail "semaphore set left under $KEY after shm-ring rm"
expect_no_leak
echo "PASS"
