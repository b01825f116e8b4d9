#!/usr/bin/env bash
# Runs a Python test script against the built module:
#   run.sh PYTHON MODULE.so SCRIPT [ARGS...]
# PYTHON is the interpreter the module was built for (@python3//:python3).
# The package's pure-Python files (shmring/aio.py) are found beside the
# script's directory: python/ in the source tree and in Bazel's runfiles.
set -euo pipefail
python=$(realpath "$1")
module=$(realpath "$2")
script=$3
shift 3
module_dir=$(dirname "$module")
package_parent=$(realpath "$(dirname "$script")/..")
export PYTHONPATH="$module_dir:$package_parent${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
exec "$python" "$script" "$@"
