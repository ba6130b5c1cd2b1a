"""What a wheel needs that a checkout hides: every import declared, every data
file declared as package data, one version everywhere it is shown."""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import re
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

from app import __version__
from app.bundled import resource
from tests.helpers import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _normal(name: str) -> str:
    # PEP 503: PySide6_Essentials, pyside6-essentials and PySide6.Essentials are one.
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = PYPROJECT["project"]
    reqs = list(project["dependencies"])
    for extra, items in project.get("optional-dependencies", {}).items():
        if extra != "dev":  # test tools are not what the app imports
            reqs += items
    return {_normal(re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0]) for r in reqs}


def top_level_imports(root: Path) -> dict[str, set[str]]:
    """Every absolute top-level module imported anywhere under `root`, with the
    files that import it (imports inside functions included)."""
    found: dict[str, set[str]] = {}
    for file in root.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(file.relative_to(root)))
    return found


def undeclared(imports: dict[str, set[str]], declared: set[str]) -> list[str]:
    owners = importlib.metadata.packages_distributions()
    problems = []
    for module, files in sorted(imports.items()):
        if module in sys.stdlib_module_names or module == "app":
            continue
        # An optional package that is not installed here (pynput) is taken to
        # be distributed under its module's name.
        dists = {_normal(d) for d in owners.get(module, [module])}
        if not dists & declared:
            problems.append(f"{module} (from {', '.join(sorted(dists))}; "
                            f"imported by {', '.join(sorted(files))})")
    return problems


def test_every_import_in_app_is_declared_in_pyproject() -> None:
    imports = top_level_imports(REPO / "app")
    # The scan must see what the app really uses, including lazy imports.
    assert {"llama_cpp", "chromadb", "PySide6", "httpx2"} <= imports.keys()
    assert undeclared(imports, _declared()) == []


def test_the_import_scan_catches_an_undeclared_import(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("def f():\n    import httpx2\n    from rich import text\n")
    problems = undeclared(top_level_imports(tmp_path), {"rich"})
    assert len(problems) == 1 and problems[0].startswith("httpx2 (from httpx2; imported by mod.py")


def test_every_resource_file_is_declared_as_package_data() -> None:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["app"]
    folder = REPO / "app" / "resources"
    files = [p.relative_to(REPO / "app").as_posix() for p in folder.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.name != "README.md"]
    assert {"resources/catalog.toml", "resources/prices.toml", "resources/hearth.svg"} <= set(files)
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert missing == []


def test_shipped_data_is_read_from_inside_the_package() -> None:
    app_dir = Path(sys.modules["app"].__file__ or "").parent
    for name in ("catalog.toml", "prices.toml", "hearth.svg",
                 "linux/io.github.hearth.Hearth.desktop"):
        item = resource(name)
        assert item.is_file(), name
        assert Path(str(item)).is_relative_to(app_dir)


def test_one_version_everywhere() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    metainfo = ET.fromstring(resource("linux/io.github.hearth.Hearth.metainfo.xml").read_bytes())
    newest = metainfo.find("releases/release")
    assert newest is not None and newest.get("version") == __version__
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    released = re.findall(r"^## \[?(\d+\.\d+\.\d+)\]?", changelog, flags=re.M)
    assert released and released[0] == __version__
    assert newest.get("date") in changelog.split(f"## {__version__}", 1)[1].splitlines()[0]
