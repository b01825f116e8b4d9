#!/usr/bin/env bash
# The permission rows of the bad-input table (docs/hardening.md) through the tools, and
# the security defaults (docs/hardening.md): mode 0600 unless widened on
# request, `shm-ring info` shows owner and mode, another user gets exit 4.
#   tool_permission_test.sh PRODUCE CONSUME RING SHMPOKE
#
# It needs a second user. Bazel's sandbox maps only root into its user
# namespace, so this test is tagged no-sandbox and first re-executes itself
# in a private IPC namespace (unshare --ipc): it never touches the host's
# segments. Not root, or unshare refused with "Operation not permitted":
# a visible privileged skip (a failure under SHMRING_REQUIRE_PRIVILEGED=1).
# Any other failure (setpriv missing, another error) fails.
if [ -z "${SHMRING_PRIVATE_IPC:-}" ]; then
  skip() {
    echo "PRIVILEGED TEST SKIPPED: $*" >&2
    if [ "${SHMRING_REQUIRE_PRIVILEGED:-}" = 1 ]; then
      echo "FAIL: privileged test skipped while SHMRING_REQUIRE_PRIVILEGED=1" >&2
      exit 1
    fi
    exit 0
  }
  command -v setpriv > /dev/null || { echo "FAIL: setpriv not found (util-linux)" >&2; exit 1; }
  [ "$(id -u)" -eq 0 ] || skip "acting as a second user needs root (uid $(id -u))"
  if ! err=$(unshare --ipc true 2>&1); then
    case "$err" in
      *"Operation not permitted"*) skip "unshare --ipc: $err" ;;
      *) echo "FAIL: unshare --ipc: $err" >&2; exit 1 ;;
    esac
  fi
  SHMRING_PRIVATE_IPC=1 exec unshare --ipc bash "$0" "$@"
fi
source tests/e2e/lib.sh "$1" "$2" "$3"
POKE=$(realpath "$4")
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)

# ----------------------------------------------- default mode 0600: 4
expect_exit 0 "" "$SHMRING" create --key "$KEY" --capacity 4K
expect_exit 0 "" "$SHMRING" info --key "$KEY"
expect_grep "owner *root, mode 0600" "$TMP/stdout"
expect_exit 0 "" "$SHMRING" info --key "$KEY" --json
expect_grep '"mode":"0600"\|"mode": *"0600"\|"mode":384' "$TMP/stdout"
expect_exit 4 "Permission denied" "${NOBODY[@]}" "$CONSUME" --key "$KEY"
expect_exit 4 "Permission denied" "${NOBODY[@]}" "$PRODUCE" --key "$KEY" < /dev/null
expect_exit 4 "Permission denied" "${NOBODY[@]}" "$SHMRING" info --key "$KEY"
expect_exit 4 "Permission denied" "${NOBODY[@]}" "$SHMRING" rm --key "$KEY"
ring_exists "$KEY" || fail "another user removed a 0600 ring"
# ... and --create as that user does not replace it.
expect_exit 4 "Permission denied" "${NOBODY[@]}" "$CONSUME" --key "$KEY" --create
expect_exit 0 "" "$SHMRING" rm --key "$KEY"

# ----------------------------------------- --mode widens on request: 0
expect_exit 0 "" "$SHMRING" create --key "$KEY" --capacity 4K --mode 0666
expect_exit 0 "" "$SHMRING" info --key "$KEY"
expect_grep "mode 0666" "$TMP/stdout"
echo "from nobody" | "${NOBODY[@]}" "$PRODUCE" --key "$KEY" --timeout 10 ||
  fail "nobody could not write a 0666 ring"
expect_exit 0 "" "$CONSUME" --key "$KEY" --count 1
[ "$(cat "$TMP/stdout")" = "from nobody" ] || fail "0666 ring: '$(cat "$TMP/stdout")'"
expect_exit 0 "" "$SHMRING" rm --key "$KEY"

# ------------------------- mode 0400, owned by the user who tries: 4
expect_exit 0 "" "$SHMRING" create --key "$KEY" --capacity 4K
"$POKE" chown "$KEY" 65534 0400
expect_exit 0 "" "$SHMRING" info --key "$KEY"
expect_grep "owner *nobody, mode 0400\|owner *65534, mode 0400" "$TMP/stdout"
expect_exit 4 "Permission denied" "${NOBODY[@]}" "$CONSUME" --key "$KEY"
expect_exit 4 "Permission denied" "${NOBODY[@]}" "$PRODUCE" --key "$KEY" < /dev/null
expect_exit 0 "" "$SHMRING" rm --key "$KEY"

# --------------------------------- an ftok path the user cannot see: 4
mkdir -p "$TMP/private"
chmod 0700 "$TMP/private"
touch "$TMP/private/ring.key"
expect_exit 4 "ftok path '$TMP/private/ring.key': Permission denied" \
  "${NOBODY[@]}" "$CONSUME" --path "$TMP/private/ring.key" --proj A --create
expect_exit 4 "Permission denied" \
  "${NOBODY[@]}" "$PRODUCE" --path "$TMP/private/ring.key" --proj A --create < /dev/null
ftok_ring=$(ftok_key "$TMP/private/ring.key" A)
KEYS+=("$ftok_ring")
ring_exists "$ftok_ring" && fail "a refused ftok path created a ring ($ftok_ring)"

expect_no_leak
echo "PASS: tool permissions"
