#!/usr/bin/env bash
# The tools and shm-bench use only the public API of //ring (ring/BUILD):
# no file given (tools/, bench/) includes a header of ring/internal/ or names
# the control block, layout:: or detail::. Bazel's visibility keeps
# //ring/internal out of their deps, but an #include of a header that the
# public ones pull in compiles anyway: the default gcc toolchain has no
# layering_check, and clang's (--config=layering) checks only .cc files,
# not headers. This checks both. Arguments: the files to check.
set -euo pipefail

forbidden='#include *"ring/internal/|ControlBlock|layout::|detail::|control\(\)'

# The pattern must catch what it is for, or this test could never fail.
probe=$(mktemp)
trap 'rm -f "$probe"' EXIT
printf '%s\n' '#include "ring/internal/layout.h"' 'auto* cb = seg.control();' \
  'layout::kMagic;' 'detail::Deadline d;' 'layout::ControlBlock* x;' > "$probe"
caught=$(grep -cE "$forbidden" "$probe" || true)
if [ "$caught" -ne 5 ]; then
  echo "public_api_test: the pattern caught $caught of 5 probe lines" >&2
  exit 1
fi

if [ "$#" -eq 0 ]; then
  echo "public_api_test: no files given" >&2
  exit 1
fi
status=0
for f in "$@"; do
  if grep -nHE "$forbidden" "$f" >&2; then status=1; fi
done
if [ "$status" -ne 0 ]; then
  echo "public_api_test: the lines above reach past the public API of" \
    "//ring (ring/BUILD); use ring/shmring.h's API instead" >&2
  exit 1
fi
echo "public_api_test: $# files use only the public API"
