#!/usr/bin/env bash
# Run Hearth's whole test suite. Sets up .venv/ first (fast when already done).
#   scripts/test.sh                 every test (benchmarks excluded)
#   scripts/test.sh tests/unit -x   any pytest arguments
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh --no-run --dev
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests; that is a failure." >&2
  exit 1
fi
exit "$code"
