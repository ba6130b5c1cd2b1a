"""No module of Hearth imports another module's private names.

A name that starts with one underscore is private to the module that defines
it: `from app.core.knowledge.store import _rows` in another module fails here.
(Attribute access such as `store._rows` is ruff's SLF001; import-linter sees
modules, not names.) Tests may import private names to test them.

    python scripts/check_private_imports.py [PATH ...]   (default: app)

Exit status 1 and one line per offence when there is any.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = "app"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.resolve().relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def offences(source: str, current: str, is_package: bool = False,
             filename: str = "<source>") -> Iterator[str]:
    """`file:line: what` for each private name `source` (module `current`) imports
    from another first-party module."""
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(node, current, is_package)
            if target.split(".")[0] != FIRST_PARTY or target == current:
                continue
            for alias in node.names:
                if _private(alias.name):
                    yield f"{filename}:{node.lineno}: imports {alias.name} from {target}"
            if any(_private(part) for part in target.split(".")):
                yield f"{filename}:{node.lineno}: imports from the private module {target}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == FIRST_PARTY and any(_private(p) for p in parts):
                    yield f"{filename}:{node.lineno}: imports the private module {alias.name}"


def check(paths: list[Path]) -> list[str]:
    found: list[str] = []
    for top in paths:
        files = sorted(top.rglob("*.py")) if top.is_dir() else [top]
        for path in files:
            found += offences(path.read_text(encoding="utf-8"), module_name(path),
                              path.name == "__init__.py", str(path.relative_to(ROOT)))
    return found


def main(argv: list[str]) -> int:
    paths = [Path(a).resolve() for a in argv] or [ROOT / FIRST_PARTY]
    found = check(paths)
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} private name(s) imported across modules; make them public "
              "(no underscore) or keep the use inside their module.", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
