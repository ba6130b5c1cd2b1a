"""The core never imports Qt, checked by importing it; the private-name check
that scripts/lint.sh runs catches what it should. (The import contracts, ruff
and mypy run in scripts/lint.sh, beside the tests.)"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from types import ModuleType

from tests.helpers import REPO

CORE_MODULES = sorted(
    ".".join(p.relative_to(REPO).with_suffix("").parts)
    for p in (REPO / "app" / "core").rglob("*.py")
)


def test_no_core_file_mentions_qt_in_its_imports() -> None:
    offenders = []
    for path in (REPO / "app" / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] in
                          ("PySide6", "PyQt5", "PyQt6", "shiboken6") or n.startswith("app.ui")]
    assert not offenders


def test_importing_every_core_module_loads_no_qt() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {CORE_MODULES!r}: importlib.import_module(m)\n"
        "import app.cli, app.settings, app.paths\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr


def _private_import_check() -> ModuleType:
    path = REPO / "scripts" / "check_private_imports.py"
    spec = importlib.util.spec_from_file_location("check_private_imports", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_private_name_check_flags_imports_across_modules() -> None:
    check = _private_import_check()
    source = (
        "from app.core.knowledge.store import Folder, _rows\n"
        "from .retriever import _scaled\n"
        "from . import _helpers\n"
        "import app.core._internal\n"
        "from app.core.knowledge.scan import __all__, SKIP_DIRS\n"
        "from llama_cpp import _internals\n"
    )
    found = list(check.offences(source, "app.core.knowledge.base"))
    assert [line.split(": ", 1)[1] for line in found] == [
        "imports _rows from app.core.knowledge.store",
        "imports _scaled from app.core.knowledge.retriever",
        "imports _helpers from app.core.knowledge",
        "imports the private module app.core._internal",
    ]


def test_private_name_check_allows_a_module_its_own_names() -> None:
    check = _private_import_check()
    assert not list(check.offences("from app.core.text import _x\n", "app.core.text"))
    # A package's __init__ importing from itself relative: still the same module.
    assert not list(check.offences("from . import _x\n", "app.core", is_package=True))
