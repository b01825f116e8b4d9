#!/usr/bin/env bash
# Exhaustive check of tests/model/mpsc.pml with Debian's spin: spin -a,
# gcc, pan (safety: assertions and invalid end states), memory capped.
# Each further argument is a configuration P:K (P producers, K claims each).
set -euo pipefail
MODEL=$(realpath "$1")
shift
command -v spin >/dev/null || { echo "FAIL: spin not installed (scripts/setup installs it)"; exit 1; }
WORK=${TEST_TMPDIR:-$(mktemp -d)}/model
mkdir -p "$WORK"
cd "$WORK"
cp "$MODEL" mpsc.pml
for pk in "$@"; do
  cfg="-DP=${pk%%:*} -DK=${pk##*:}"
  echo "== $cfg"
  # shellcheck disable=SC2086
  spin -a $cfg mpsc.pml >spin.out 2>&1 || { cat spin.out; exit 1; }
  gcc -O2 -DSAFETY -DCOLLAPSE -DMEMLIM=1024 -w -o pan pan.c
  ./pan -m500000 >pan.out 2>&1 || true
  grep -E "errors:|states, stored|elapsed" pan.out
  if ! grep -q "errors: 0" pan.out || grep -q "Search not completed\|out of memory\|max search depth too small" pan.out; then
    cat pan.out
    [ -f mpsc.pml.trail ] && spin $cfg -t -p -g mpsc.pml | tail -60
    echo "FAIL: $cfg"
    exit 1
  fi
done
# The model can fail: a consumer that ignores claim intents (reclaims a
# live claimer's 0 word) must be caught.
sed 's/    :: LIVE_INTENT(r) ->/    :: false ->/' mpsc.pml >mutant.pml
grep -q ":: false ->" mutant.pml || { echo "FAIL: mutation did not apply"; exit 1; }
spin -a -DP=2 -DK=1 mutant.pml >spin.out 2>&1 || { cat spin.out; exit 1; }
gcc -O2 -DSAFETY -DCOLLAPSE -DMEMLIM=1024 -w -o pan pan.c
./pan -m500000 >pan.out 2>&1 || true
if grep -q "errors: 0" pan.out; then
  cat pan.out
  echo "FAIL: the mutant (no intent check) passed: the model checks nothing"
  exit 1
fi
echo "mutant caught: $(grep -m1 -E 'assertion violated|invalid end state' pan.out)"
echo PASS
