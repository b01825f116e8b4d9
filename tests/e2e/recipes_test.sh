#!/usr/bin/env bash
# Every recipe in README.md, docs/tools.md and docs/lecture.md, run as
# printed: the docs are the source, so a doc cannot drift from behaviour.
#   recipes_test.sh PRODUCE CONSUME RING README TOOLS_MD LECTURE_MD
#
# Each ```sh block of those files is preceded by `<!-- recipe: NAME -->`
# (run here by recipe_NAME, which knows what input to give and what to
# check), `<!-- not run: REASON -->`, or `<!-- consumer-builds: FILE -->`
# (a build-system block that scripts/consumer-builds runs in CI); a block
# with none of them fails the test.
# What the test changes in a block before running it, and nothing else:
# - `0x5eed` becomes a key of this test process, which is also exported as
#   $SHMRING_KEY (so recipes without --key get their own ring too);
# - `/tmp/` becomes a directory of the test;
# - the setup lines `bazel build ...` and `export PATH="$(bazel info ...`
#   are dropped: the test puts the tools it was given on PATH;
# - host B (ssh, socat) is played by a second key on this machine, and
#   socat's port 7000 by a free port.
# Recipes made of several shells run in both orders (each side first).
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
source "$(dirname "$0")/own_keys.sh"
DOCS=("$(realpath "$4")" "$(realpath "$5")" "$(realpath "$6")")

WORK="$TMP/work"
mkdir -p "$WORK/bin"
export PATH="$WORK/bin:$(dirname "$PRODUCE"):$PATH"
new_key KEY
new_key KEY_B
export SHMRING_KEY=$KEY
log "keys $KEY (host A) and $KEY_B (host B)"

# ssh HOST CMD...: host B's side of a recipe, with host B's keys.
cat > "$WORK/bin/ssh" <<EOF
#!/usr/bin/env bash
shift  # the host
args=()
for a in "\$@"; do args+=("\${a//$KEY/$KEY_B}"); done
SHMRING_KEY=$KEY_B exec "\${args[@]}"
EOF
chmod +x "$WORK/bin/ssh"

# ------------------------------------------------------------ blocks
# block FILE NAME OUT: the recipe's ```sh block, as the test runs it.
block() {
  awk -v m="<!-- recipe: $2 -->" '
    found && /^```/ { if (inb) exit; inb = 1; next }
    inb { print }
    $0 == m { found = 1 }' "$1" |
    sed -e "s/0x5eed\([^0-9a-fA-F]\|$\)/$KEY\1/g" -e "s#/tmp/#$WORK/#g" \
      -e '/^bazel /d' -e '/^export PATH=.*bazel info/d' > "$3"
  [ -s "$3" ] || fail "recipe $2 in $1: empty block"
}

# sections BLOCK DIR: splits a block at its "# shell N", "# consumer",
# "# producer", "# host X" comments into DIR/pre (what comes before) and,
# per section K (1, 2...), DIR/K.cmd (its first command, continuation
# lines joined) and DIR/K.rest (the lines after it).
sections() {
  rm -rf "$2"
  mkdir -p "$2"
  python3 - "$1" "$2" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
out, k, cmd, rest, pre = sys.argv[2], 0, {}, {}, []
head = re.compile(r"^# (shell \d|consumer|producer|host [AB])\b")
for line in lines:
    if head.match(line):
        k += 1
        cmd[k], rest[k] = [], []
        continue
    if k == 0:
        pre.append(line)
    elif not cmd[k] or cmd[k][-1].endswith("\\"):
        if line.strip() and (cmd[k] or not line.startswith("#")):
            cmd[k].append(line)
    elif line.strip():
        rest[k].append(line)
open(f"{out}/pre", "w").write("\n".join(pre) + "\n")
for i in cmd:
    open(f"{out}/{i}.cmd", "w").write("\n".join(cmd[i]) + "\n")
    open(f"{out}/{i}.rest", "w").write("\n".join(rest[i]) + ("\n" if rest[i] else ""))
PY
}

# run_bg FILE [STDIN]: runs a command file in $WORK in the background,
# bounded (a recipe that hangs fails the test instead of timing it out).
run_bg() {
  (cd "$WORK" && exec timeout -k 5 120 bash "$1" < "${2:-/dev/null}") &
}

expect_gone() {
  ring_exists "$1" && fail "$2: ring $1 left behind"
  return 0
}

# two_sides DIR WHAT [STDIN2] [KEY]: runs 1.cmd and 2.cmd of DIR in both
# orders, the first attached before the second starts; both must exit 0.
# After each order, `check_order ORDER` (the caller's) looks at the result.
two_sides() {
  local dir=$1 what=$2 in2=${3:-/dev/null} key=${4:-$KEY} order a b
  for order in consumer-first producer-first; do
    reset_order
    if [ "$order" = consumer-first ]; then
      run_bg "$dir/1.cmd"; a=$!
      wait_attached "$key" 1
      run_bg "$dir/2.cmd" "$in2"; b=$!
    else
      run_bg "$dir/2.cmd" "$in2"; b=$!
      wait_attached_or_done "$key" "$b"
      run_bg "$dir/1.cmd"; a=$!
    fi
    expect_job 0 "$a" "$what ($order): shell 1"
    expect_job 0 "$b" "$what ($order): shell 2"
    check_order "$order"
  done
}

# A producer with little input may be done before anyone attaches.
wait_attached_or_done() {
  local i
  for i in $(seq 1 1000); do
    ring_exists "$1" && return 0
    kill -0 "$2" 2> /dev/null || return 0
    sleep 0.02
  done
  fail "ring $1 never appeared"
}

# descendant_named PID NAME: PID or its first child, grandchild... named
# NAME (the command a shell runs for a recipe).
descendant_named() {
  local p=$1 i
  for i in 1 2 3 4; do
    [ "$(cat "/proc/$p/comm" 2> /dev/null)" = "$2" ] && { echo "$p"; return 0; }
    p=$(pgrep -P "$p" | head -1)
    [ -n "$p" ] || return 1
  done
  return 1
}

# ------------------------------------------------------------ recipes

recipe_two_shells() {  # FILE
  block "$1" two-shells "$TMP/b"
  sections "$TMP/b" "$TMP/s"
  reset_order() { head -c 3M /dev/urandom > "$WORK/in.bin"; rm -f "$WORK/out.bin"; }
  check_order() {
    (cd "$WORK" && bash "$TMP/s/2.rest") > "$TMP/rest.out" || fail "two-shells ($1): the lines after shell 2 failed"
    [ "$(grep 'in.bin\|out.bin' "$TMP/rest.out" | awk '{ print $1 }' | sort -u | wc -l)" -eq 1 ] &&
      [ "$(grep -c 'in.bin\|out.bin' "$TMP/rest.out")" -eq 2 ] ||
      { cat "$TMP/rest.out" >&2; fail "two-shells ($1): sha256 differ"; }
    expect_gone "$KEY" "two-shells ($1)"
  }
  two_sides "$TMP/s" "two-shells"
}

YOU_WROTE_IN=$'hello there\nend\n  spaced   out  \nlast line'
you_wrote_check() {  # OUT WHAT
  local want
  want=$(printf '%s\n' "$YOU_WROTE_IN" | sed 's/^/You wrote: /')
  [ "$(cat "$1")" = "$want" ] || { cat "$1" >&2; fail "$2: shell 1 printed something else"; }
}

recipe_you_wrote() {  # FILE
  block "$1" you-wrote "$TMP/b"
  sections "$TMP/b" "$TMP/s"
  printf '%s\n' "$YOU_WROTE_IN" > "$TMP/typed"
  echo 'exec > "'"$TMP"'/shell1.out"' | cat - "$TMP/s/1.cmd" > "$TMP/s/1.cmd.x"
  mv "$TMP/s/1.cmd.x" "$TMP/s/1.cmd"
  reset_order() { :; }
  check_order() { you_wrote_check "$TMP/shell1.out" "you-wrote ($1)"; expect_gone "$KEY" "you-wrote ($1)"; }
  two_sides "$TMP/s" "you-wrote" "$TMP/typed"
}

# The key ftok(FILE, 'R') gives (lib.sh's ftok_key), free and cleaned up
# like ours (own_keys.sh's claim_key): if another segment has it, FILE is
# moved aside and made anew (another inode).
free_ftok_key() {  # FILE VAR
  local i
  for i in $(seq 1 20); do
    if claim_key "$(ftok_key "$1" R)" "$2"; then return 0; fi
    mv "$1" "$1.taken.$i"
    touch "$1"
  done
  fail "ftok($1, R): every key tried is taken"
}

recipe_lecture_pair() {  # FILE
  block "$1" lecture-pair "$TMP/b"
  sections "$TMP/b" "$TMP/s"
  touch "$WORK/somefile3"
  free_ftok_key "$WORK/somefile3" FKEY
  printf '%s\n' "$YOU_WROTE_IN" > "$TMP/typed"
  echo 'exec > "'"$TMP"'/shell1.out"' | cat - "$TMP/s/1.cmd" > "$TMP/s/1.cmd.x"
  mv "$TMP/s/1.cmd.x" "$TMP/s/1.cmd"
  reset_order() { :; }
  check_order() { you_wrote_check "$TMP/shell1.out" "lecture-pair ($1)"; expect_gone "$FKEY" "lecture-pair ($1)"; }
  two_sides "$TMP/s" "lecture-pair" "$TMP/typed" "$FKEY"
}

recipe_try_it() {  # FILE
  block "$1" try-it "$TMP/b"
  sections "$TMP/b" "$TMP/s"
  (cd "$WORK" && bash "$TMP/s/pre") || fail "try-it: the set-up lines failed"
  free_ftok_key "$WORK/somefile3" FKEY
  # What is typed into shell 2: the lines after its command, up to ^D.
  sed '/^^D$/,$d' "$TMP/s/2.rest" > "$TMP/typed"
  grep -qxF '^D' "$TMP/s/2.rest" || fail "try-it: no ^D after the typed lines"
  awk '
    found && /^```/ { if (inb) exit; inb = 1; next }
    inb { print }
    $0 == "<!-- recipe-output: try-it -->" { found = 1 }' "$1" > "$TMP/want"
  [ -s "$TMP/want" ] || fail "try-it: no expected output block"
  echo 'exec > "'"$TMP"'/shell1.out"' | cat - "$TMP/s/1.cmd" > "$TMP/s/1.cmd.x"
  mv "$TMP/s/1.cmd.x" "$TMP/s/1.cmd"
  reset_order() { :; }
  check_order() {
    cmp -s "$TMP/shell1.out" "$TMP/want" || { diff "$TMP/want" "$TMP/shell1.out" >&2; fail "try-it ($1): shell 1 does not show what the lecture says"; }
    expect_gone "$FKEY" "try-it ($1)"
  }
  two_sides "$TMP/s" "try-it" "$TMP/typed" "$FKEY"
}

recipe_many_producers() {  # FILE
  block "$1" many-producers "$TMP/b"
  local f variant
  for f in a b c; do seq 1 20000 | sed "s/^/$f /" > "$WORK/$f.log"; done
  # As printed; with the consumer starting late; with producers starting
  # late, one after another has finished. The wrappers only delay.
  for variant in as-printed late-consumer late-producers; do
    rm -f "$WORK/all.log"
    cat > "$TMP/wrap" <<EOF
case $variant in
late-consumer) shm-consume() { sleep 1; command shm-consume "\$@"; } ;;
late-producers) shm-produce() { sleep "\$(( RANDOM % 3 )).\$(( RANDOM % 10 ))"; command shm-produce "\$@"; } ;;
esac
EOF
    cat "$TMP/wrap" "$TMP/b" > "$TMP/run"
    (cd "$WORK" && timeout -k 5 60 bash "$TMP/run") > "$TMP/mp.out" 2> "$TMP/mp.err" ||
      { cat "$TMP/mp.err" >&2; fail "many-producers ($variant): exit $?"; }
    [ "$(cat "$TMP/mp.out")" = "60000 all.log" ] || { cat "$TMP/mp.err" >&2; fail "many-producers ($variant): '$(cat "$TMP/mp.out")'"; }
    for f in a b c; do
      grep "^$f " "$WORK/all.log" | cmp -s - "$WORK/$f.log" || fail "many-producers ($variant): $f.log's lines not all there, in order"
    done
    expect_gone "$KEY" "many-producers ($variant)"
    log "ok: many-producers ($variant)"
  done
}

# Frames of every awkward size, NUL bytes included.
frames() {
  python3 -c '
import struct, sys
out = sys.stdout.buffer
for i, n in enumerate([0, 1, 7, 8, 9, 255, 4096, 65536, 3, 0, 100000] * 3):
    out.write(struct.pack("<I", n) + bytes((i + j) % 256 for j in range(n)))'
}

recipe_binary_messages() {  # FILE
  block "$1" binary-messages "$TMP/b"
  grep -v '^#' "$TMP/b" | grep . > "$TMP/lines"
  [ "$(wc -l < "$TMP/lines")" -eq 2 ] || fail "binary-messages: expected two command lines"
  mkdir -p "$TMP/s"
  { echo 'app-that-writes-frames() { frames; }'; declare -f frames; sed -n 1p "$TMP/lines"; } > "$TMP/s/2.cmd"
  { echo 'app-that-reads-frames() { cat > "'"$WORK"'/frames.got"; }'; sed -n 2p "$TMP/lines"; } > "$TMP/s/1.cmd"
  frames > "$TMP/frames.want"
  reset_order() { rm -f "$WORK/frames.got"; }
  check_order() {
    cmp -s "$WORK/frames.got" "$TMP/frames.want" || fail "binary-messages ($1): frames differ"
    expect_exit 0 "" "$SHMRING" rm --key "$KEY"
  }
  two_sides "$TMP/s" "binary-messages"
}

recipe_follow() {  # FILE
  block "$1" follow "$TMP/b"
  rm -f "$WORK/sink.bin"
  run_bg "$TMP/b"
  local c=$!
  echo one | shm-produce --create || fail "follow: first producer"
  wait_for_size "$WORK/sink.bin" 4
  echo two | shm-produce --create || fail "follow: second producer"
  wait_for_size "$WORK/sink.bin" 8
  # Ctrl-C reaches the foreground command, not the shell around it.
  local pid
  pid=$(descendant_named "$c" shm-consume) || fail "follow: no shm-consume under the recipe's shell"
  kill -INT "$pid"
  expect_job 130 "$c" "follow: Ctrl-C"
  [ "$(cat "$WORK/sink.bin")" = $'one\ntwo' ] || fail "follow: sink.bin is '$(cat "$WORK/sink.bin")'"
  expect_exit 0 "" "$SHMRING" rm --key "$KEY"
}

recipe_progress() {  # FILE
  block "$1" progress "$TMP/b"
  head -c 4M /dev/urandom > "$WORK/big.bin"
  shm-consume --create > "$TMP/big.out" &
  local c=$!
  (cd "$WORK" && bash "$TMP/b") 2> "$TMP/progress.err" || { cat "$TMP/progress.err" >&2; fail "progress: exit $?"; }
  expect_job 0 "$c" "progress: consumer"
  cmp -s "$TMP/big.out" "$WORK/big.bin" || fail "progress: data differ"
  python3 - "$WORK/produce.json" <<'PY' || fail "progress: $(cat "$WORK/produce.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["end"] == "end_of_input" and j["exit_code"] == 0 and j["bytes"] == 4 << 20, j
PY
  expect_exit 0 "" "$SHMRING" rm --key "$KEY"
}

recipe_inspect() {  # FILE
  block "$1" inspect "$TMP/b"
  # ls and rm --stale look at every ring: where only ours are, if allowed.
  in_private_ipc bash -c 'set -e; echo unread | shm-produce --create; cd "$1" && bash "$2"' _ "$WORK" "$TMP/b" \
    > "$TMP/inspect.out" 2> "$TMP/inspect.err" || { cat "$TMP/inspect.err" >&2; fail "inspect: exit $?"; }
  grep -q "^$KEY .* unread$" "$TMP/inspect.out" || { cat "$TMP/inspect.out" >&2; fail "inspect: ls does not show the ring as unread"; }
  grep -q "\"key\":\"$KEY\"" "$TMP/inspect.out" || fail "inspect: info --json"
  grep -q "^kept $KEY (shmid [0-9]*): [0-9]* unread bytes" "$TMP/inspect.out" || fail "inspect: rm --stale does not say it kept the ring"
  "$SHMRING" rm --key "$KEY" > /dev/null 2>&1 || true  # when run in our namespace
}

recipe_broadcast() {  # FILE
  block "$1" broadcast "$TMP/b"
  head -c 3M /dev/urandom > "$WORK/data.bin"
  rm -f "$WORK/a.bin" "$WORK/b.bin" "$WORK/c.bin"
  run_bg "$TMP/b"
  expect_job 0 $! "broadcast"
  local f
  for f in a b c; do
    cmp -s "$WORK/$f.bin" "$WORK/data.bin" || fail "broadcast: $f.bin differs from data.bin"
  done
  expect_gone "$KEY" "broadcast"
}

recipe_ssh() {  # FILE
  block "$1" ssh "$TMP/b"
  grep -v '^#' "$TMP/b" | grep . > "$TMP/line"
  head -c 2M /dev/urandom > "$TMP/a.bin"
  shm-produce --key "$KEY" --create < "$TMP/a.bin" &
  local p=$!
  run_bg "$TMP/line"
  local r=$!
  shm-consume --key "$KEY_B" --create > "$TMP/b.bin"
  expect_job 0 "$r" "ssh: the recipe"
  expect_job 0 "$p" "ssh: host A's producer"
  cmp -s "$TMP/a.bin" "$TMP/b.bin" || fail "ssh: host B got other bytes"
  expect_exit 0 "" "$SHMRING" rm --key "$KEY"
  expect_exit 0 "" "$SHMRING" rm --key "$KEY_B"
}

recipe_ssh_length() {  # FILE
  block "$1" ssh-length "$TMP/b"
  grep -v '^#' "$TMP/b" | grep . > "$TMP/line"
  frames > "$TMP/frames.want"
  shm-produce --create --framing length < "$TMP/frames.want" &
  local p=$!
  run_bg "$TMP/line"
  local r=$!
  shm-consume --key "$KEY_B" --create --framing length > "$TMP/frames.got"
  expect_job 0 "$r" "ssh-length: the recipe"
  expect_job 0 "$p" "ssh-length: host A's producer"
  cmp -s "$TMP/frames.want" "$TMP/frames.got" || fail "ssh-length: frames differ"
  expect_exit 0 "" "$SHMRING" rm --key "$KEY"
  expect_exit 0 "" "$SHMRING" rm --key "$KEY_B"
}

recipe_socat() {  # FILE
  block "$1" socat "$TMP/b"
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  sed -i -e "s/7000/$port/g" -e "s/hostB/127.0.0.1/g" "$TMP/b"
  sections "$TMP/b" "$TMP/s"
  head -c 2M /dev/urandom > "$TMP/a.bin"
  (export SHMRING_KEY=$KEY_B; run_bg "$TMP/s/1.cmd"; wait $!) &
  local hb=$!
  # Listening (state 0A in /proc/net/tcp) before host A connects.
  local hex i
  hex=$(printf '%04X' "$port")
  for i in $(seq 1 1500); do
    cat /proc/net/tcp /proc/net/tcp6 2> /dev/null | grep -q ":$hex [0-9A-F]*:0000 0A" && break
    sleep 0.02
  done
  shm-consume --key "$KEY_B" --create > "$TMP/b.bin" &
  local cb=$!
  shm-produce --create < "$TMP/a.bin" &
  local p=$!
  run_bg "$TMP/s/2.cmd"
  local ha=$!
  expect_job 0 "$ha" "socat: host A"
  expect_job 0 "$p" "socat: host A's producer"
  expect_job 0 "$hb" "socat: host B"
  expect_job 0 "$cb" "socat: host B's consumer"
  cmp -s "$TMP/a.bin" "$TMP/b.bin" || fail "socat: host B got other bytes"
  expect_exit 0 "" "$SHMRING" rm --key "$KEY"
  expect_exit 0 "" "$SHMRING" rm --key "$KEY_B"
}

# ------------------------------------------------------------- run all
# Every sh block is marked, every recipe has a runner and runs.
ran=0
for doc in "${DOCS[@]}"; do
  prev=""
  while IFS= read -r line; do
    if [ "$line" = '```sh' ]; then
      case "$prev" in
        "<!-- recipe: "*" -->" | "<!-- not run: "*" -->") ;;
        # Build-system blocks: scripts/consumer-builds runs those in CI.
        "<!-- consumer-builds: "*" -->") ;;
        *) fail "$(basename "$doc"): a \`\`\`sh block without a recipe or not-run marker (after: '$prev')" ;;
      esac
    fi
    prev=$line
  done < "$doc"
  for name in $(sed -n 's/^<!-- recipe: \(.*\) -->$/\1/p' "$doc"); do
    fn="recipe_${name//-/_}"
    declare -F "$fn" > /dev/null || fail "$(basename "$doc"): no runner for recipe '$name'"
    log "recipe $name of $(basename "$doc")"
    "$fn" "$doc"
    ran=$((ran + 1))
    log "ok: recipe $name of $(basename "$doc") (${SECONDS}s into the test)"
  done
done
# 14 when this was written: a floor against an extractor that finds none.
[ "$ran" -ge 14 ] || fail "only $ran recipes found"
for k in "${KEYS[@]}"; do expect_gone "$k" "the end"; done
echo "PASS: $ran recipes"
