#!/usr/bin/env bash
# Exit 4: a ring whose mode forbids the caller. Root bypasses modes, so the
# tools run as nobody (setpriv). That needs real uids, which Bazel's sandbox
# (a user namespace) does not map: this test is tagged no-sandbox, runs in
# the host's IPC namespace with a key of its own (lib.sh) and checks only it.
# Not root, or setpriv refused with "Operation not permitted": a visible
# privileged skip (a failure under SHMRING_REQUIRE_PRIVILEGED=1).
#   permission_test.sh PRODUCE CONSUME RING
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"

NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
pub=$(mktemp -d /tmp/shmring-e2e.XXXXXX)
CLEANUP_DIRS+=("$pub")
cp "$PRODUCE" "$CONSUME" "$SHMRING" "$pub/"
chmod 755 "$pub" "$pub"/*
if [ "$(id -u)" -ne 0 ]; then
  privileged_skip "running a tool as nobody needs root (uid $(id -u))"
  exit 0
fi
if ! "${NOBODY[@]}" "$pub/shm-consume" --version > /dev/null 2> "$TMP/setpriv.err"; then
  grep -q "Operation not permitted" "$TMP/setpriv.err" ||
    fail "setpriv as nobody: $(cat "$TMP/setpriv.err")"
  privileged_skip "setpriv as nobody: $(cat "$TMP/setpriv.err")"
  exit 0
fi

expect_exit 0 "" "$SHMRING" create --key "$KEY" --capacity 4K --mode 0600
expect_exit 4 "Permission denied" "${NOBODY[@]}" "$pub/shm-consume" --key "$KEY"
expect_exit 4 "Permission denied" "${NOBODY[@]}" "$pub/shm-produce" --key "$KEY" < /dev/null
expect_exit 4 "cannot open segment $KEY: Permission denied" "${NOBODY[@]}" "$pub/shm-ring" info --key "$KEY"
expect_exit 4 "cannot remove segment $KEY: Operation not permitted" "${NOBODY[@]}" "$pub/shm-ring" rm --key "$KEY" --force
ring_exists "$KEY" || fail "nobody removed root's ring"
expect_exit 0 "" "$SHMRING" rm --key "$KEY"
ring_exists "$KEY" && fail "ring $KEY left behind"
echo "PASS: permission denied is exit 4"
