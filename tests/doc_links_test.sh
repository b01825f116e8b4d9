#!/usr/bin/env bash
# doc_links_test.sh PYTHON CHECK_LINKS.py FILE.md...: runs the link check
# from the runfiles root, where the docs sit at their repository paths.
set -euo pipefail
python=$(realpath "$1")
checker=$2
shift 2
exec "$python" "$checker" "$@"
