# Keys of this test process alone, for tests that must not rely on Bazel's
# sandbox: sourced after lib.sh. new_key VAR sets VAR to a key that no
# segment uses now, made from this shell's pid and the clock (two runs of
# one test at once get different keys), and adds it to lib.sh's cleanup.
KEYS=()  # lib.sh's name-derived key is not ours: never remove it

new_key() {
  local i k rc
  for i in $(seq 1 200); do
    k=$(printf '0x5f%06x' $(( ($$ * 7919 + 10#$(date +%N) / 1000 + i * 104729) % 0xffffff )))
    set +e
    "$SHMRING" info --key "$k" > /dev/null 2>&1
    rc=$?
    set -e
    if [ "$rc" -eq 3 ]; then
      KEYS+=("$k")
      printf -v "$1" '%s' "$k"
      return 0
    fi
  done
  fail "no free key after 200 tries"
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
