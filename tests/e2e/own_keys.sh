# Keys for tests that take many rings of their own: sourced after lib.sh.
# new_key VAR sets VAR to the next key of this shell's block (lib.sh's
# KEY+1, KEY+2, ...: the suite's one key scheme, tests/support.h) that no
# segment uses now (a ring an earlier process with the same pid left
# behind is skipped, never shared), and adds it to lib.sh's cleanup.
# Call it in the test's own shell, not in a subshell: the block's counter
# lives here. A test that sources this file takes every key from new_key
# (never KEY+n by hand: new_key would hand the same key out again).
OWN_KEY_BASE=$KEY  # lib.sh's block, before a test reuses the name KEY
OWN_KEY_NEXT=0

# claim_key KEY VAR: if no segment has KEY, sets VAR to it, adds it to
# lib.sh's cleanup and returns 0; returns 1 if KEY is taken.
claim_key() {
  local rc
  set +e
  "$SHMRING" info --key "$1" > /dev/null 2>&1
  rc=$?
  set -e
  [ "$rc" -eq 3 ] || return 1
  KEYS+=("$1")
  printf -v "$2" '%s' "$1"
}

new_key() {
  local k
  while [ "$OWN_KEY_NEXT" -lt 255 ]; do
    OWN_KEY_NEXT=$((OWN_KEY_NEXT + 1))
    k=$(printf '0x%08x' $(( OWN_KEY_BASE + OWN_KEY_NEXT )))
    if claim_key "$k" "$1"; then return 0; fi
  done
  fail "no free key left in this test's block ($OWN_KEY_BASE + 1..255)"
}

# in_private_ipc CMD...: runs CMD in an IPC namespace of its own if this
# machine allows it (then `shm-ring ls` and `rm --stale` see only the
# test's rings), else in the current one.
in_private_ipc() {
  if unshare --ipc true 2> /dev/null; then
    unshare --ipc "$@"
  else
    "$@"
  fi
}
