#!/usr/bin/env bash
# Hearth's gates beside the tests: ruff (style, complexity, blind excepts,
# private access), mypy (strict on the core), import-linter (layers and
# contracts in pyproject.toml) and the private-name import check.
# Runs every check even when one fails; exits non-zero if any failed.
#   scripts/lint.sh             check (sets up .venv/ with --dev first)
#   HEARTH_NO_SETUP=1 scripts/lint.sh   skip the set-up step (.ci/run did it)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -z "${HEARTH_NO_SETUP:-}" ]; then
  bash scripts/setup.sh --no-run --dev || exit 1
fi
BIN="$ROOT/.venv/bin"
failed=()

run() {
  local name="$1"; shift
  echo "==> $name"
  if ! "$@"; then
    failed+=("$name")
  fi
}

run ruff "$BIN/ruff" check app tests
run mypy "$BIN/python" -m mypy app
run import-linter "$BIN/lint-imports" --no-cache
run private-imports "$BIN/python" scripts/check_private_imports.py

if [ "${#failed[@]}" -gt 0 ]; then
  echo "scripts/lint.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "scripts/lint.sh: all checks passed"
