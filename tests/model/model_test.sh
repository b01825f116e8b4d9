#!/usr/bin/env bash
# Checks tests/model/mpsc.pml with Debian's spin: spin -a, gcc, pan
# (safety: assertions and invalid end states), then shows that mutants of
# the protocol fail.
#   model_test.sh MODEL [--memlim=MB] [--no-mutants] CONFIG...
# CONFIG is P:K (P producers, K claims each) or P:K:K1 (producer 0 makes K
# claims, the others K1), then optionally :bN for a bitstate (supertrace)
# run with a 2^N-bit array (2^(N-23) MB) instead of an exhaustive one
# (COLLAPSE compression, pan capped at --memlim MB, default 2048).
# Bitstate is not exhaustive: its coverage is the reported hash factor
# (bits of the array per stored state: above ~100 nearly every state is
# reached; near 1 hash collisions prune much of the space).
set -euo pipefail
MODEL=$(realpath "$1")
shift
MEMLIM=2048
MUTANTS=1
CONFIGS=()
for arg in "$@"; do
  case "$arg" in
    --memlim=*) MEMLIM=${arg#--memlim=} ;;
    --no-mutants) MUTANTS= ;;
    *) CONFIGS+=("$arg") ;;
  esac
done
command -v spin >/dev/null || { echo "FAIL: spin not installed (scripts/setup installs it)"; exit 1; }
WORK=${TEST_TMPDIR:-$(mktemp -d)}/model
mkdir -p "$WORK"
cd "$WORK"
cp "$MODEL" mpsc.pml

# CONFIG -> DEFS (-DP=.. -DK=.. [-DK1=..]), BITS (empty: exhaustive)
parse() {
  local IFS=:
  # shellcheck disable=SC2206
  local f=($1)
  DEFS="-DP=${f[0]} -DK=${f[1]}"
  BITS=
  local x
  for x in "${f[@]:2}"; do
    case "$x" in
      b*) BITS=${x#b} ;;
      *) DEFS="$DEFS -DK1=$x" ;;
    esac
  done
}

# check FILE CONFIG: spin -a, gcc, pan; the result in pan.out.
check() {
  parse "$2"
  # shellcheck disable=SC2086
  spin -a $DEFS "$1" >spin.out 2>&1 || { cat spin.out; exit 1; }
  if [ -n "$BITS" ]; then
    gcc -O2 -DSAFETY -DBITSTATE -w -o pan pan.c
    ./pan -m1000000 -w"$BITS" >pan.out 2>&1 || true
  else
    gcc -O2 -DSAFETY -DCOLLAPSE -DMEMLIM="$MEMLIM" -w -o pan pan.c
    ./pan -m1000000 -w24 >pan.out 2>&1 || true
  fi
}

for cfg in "${CONFIGS[@]}"; do
  parse "$cfg"
  if [ -n "$BITS" ]; then mode="bitstate -w$BITS"; else mode=exhaustive; fi
  echo "== $cfg: $DEFS, $mode"
  check mpsc.pml "$cfg"
  grep -E "errors:|states, stored|hash factor|elapsed|total actual memory" pan.out
  if ! grep -q "errors: 0" pan.out ||
     grep -q "Search not completed\|out of memory\|max search depth too small" pan.out; then
    cat pan.out
    # shellcheck disable=SC2086
    [ -f mpsc.pml.trail ] && spin $DEFS -t -p -g mpsc.pml | tail -60
    echo "FAIL: $cfg"
    exit 1
  fi
done
[ -n "$MUTANTS" ] || { echo PASS; exit 0; }

# The model can fail: each mutant breaks one rule of the protocol and must
# be caught (an assertion or an invalid end state) in the configuration
# given (bitstate can only miss errors, never invent one). pan stops at
# the first error.
# mutant NAME CONFIG SED-EXPRESSION...
mutant() {
  local name=$1 cfg=$2
  shift 2
  local args=() e
  for e in "$@"; do args+=(-e "$e"); done
  sed "${args[@]}" mpsc.pml >mutant.pml
  if cmp -s mpsc.pml mutant.pml; then
    echo "FAIL: mutant '$name': the mutation did not apply"
    exit 1
  fi
  check mutant.pml "$cfg"
  if grep -q "errors: 0" pan.out; then
    cat pan.out
    echo "FAIL: mutant '$name' passed: the model does not check it"
    exit 1
  fi
  echo "mutant '$name' ($cfg) caught after $(grep -E 'states, stored' pan.out | awk '{print $1}') states: $(grep -m1 -E 'assertion violated|invalid end state' pan.out)"
}
# the consumer reclaims a live claimer's 0 word (ignores claim intents)
mutant "no intent check" 2:1:b28 's/^    :: LIVE_INTENT(r) ->$/    :: false ->/'
# release() publishes head before it zeroes the batch
mutant "head before zeroing" 2:1:b28 's/^  release_to = r;$/  release_to = r; head = r;/'
# release() zeroes only the batch's last record
mutant "zero the last record only" 2:1:b28 \
  's/^    e = 0; q = 0$/    e = 0; q = z - q/' \
  's/^  z = head;  \/\* zero the whole batch \*\/$/  z = q;/'
# the consumer sleeps holding records (no release when the batch ends): a
# producer's second claim waits for that space
mutant "sleep holding records" 2:2:1:b28 \
  's/^      :: r != head -> release(); goto loop  \/\* the batch ends.*$/      :: false -> skip/'
# a trimmed commit without its padding record
mutant "trim without padding" 2:1:b28 \
  's/^      if :: w\[pos + 1\] = PADW(1) :: goto dead fi;$/      skip;/'
# the consumer takes the word at r for a header when r - head == C (the
# ring full to the word, everything peeked, nothing released): it is its
# own oldest record's
mutant "own header when full" 2:1:b28 \
  's/^    if :: r - head == C -> x = 0 :: else -> x = w\[r % C\] fi;$/    x = w[r % C];/'
# the bound judged on the tail as last loaded, without a reload
mutant "no tail reload" 2:1:b28 \
  's/^  :: r + sd - ct > C - 1 -> d_step { ct = tail; assert/  :: r + sd - ct > C - 1 -> d_step { assert/'
echo PASS
