#!/usr/bin/env bash
# docs_examples_test.sh PYTHON MODULE.so PATH=BINARY...: runs check_docs.py
# from the runfiles root, where the docs, the examples and python/shmring/
# sit at their paths.
set -euo pipefail
python=$(realpath "$1")
# The extension, then the package's pure-Python modules (python/shmring/).
module_dir=$(dirname "$(realpath "$2")"):$(realpath python)
shift 2
bins=()
for a in "$@"; do bins+=("${a%%=*}=$(realpath "${a#*=}")"); done
exec "$python" examples/check_docs.py "$python" "$module_dir" "${bins[@]}" \
  -- README.md docs/c.md docs/lecture.md docs/python.md
