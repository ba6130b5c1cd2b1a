"""A guard for the window tests: fails a test in which the window's own code
(app/ui) opened a file or ran an SQLite statement on the GUI thread. It sees
what Python does (audit events for `open`, a trace callback on every SQLite
connection); Qt's own file access in C++ is not seen.

The test's own code may use the store on the main thread to check results:
only I/O with a frame of app/ui on the stack counts."""

from __future__ import annotations

import sqlite3
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import app
import app.ui

UI_DIR = str(Path(app.ui.__file__).resolve().parent)
# Files shipped inside the package (the icon) are read once, at start-up.
PACKAGE_DIR = str(Path(app.__file__).resolve().parent)
# Reading Python's own files (imports inside a function) is not the window's I/O.
_CODE = (".py", ".pyc", ".so", ".pth", ".pyi")


# Places allowed to open a file on the GUI thread: none. Settings, provider
# and autostart writes run through `run_op` like every other file access; an
# entry here ("file.py" or "file.py:function") would need a reason beside it.
ALLOWED: tuple[str, ...] = ()


class _Guard:
    def __init__(self) -> None:
        self.on = False
        self.hits: list[str] = []
        self.lock = threading.Lock()

    def ui_caller(self) -> str | None:
        if not self.on or threading.current_thread() is not threading.main_thread():
            return None
        for frame in reversed(traceback.extract_stack()[:-3]):
            if frame.filename.startswith(UI_DIR):
                return f"{Path(frame.filename).name}:{frame.lineno} {frame.name}"
        return None

    def hit(self, what: str) -> None:
        where = self.ui_caller()
        if where is not None and what.startswith("open ") and _allowed(where):
            return
        if where is not None:
            with self.lock:
                self.hits.append(f"{what} from {where}")

    def statement(self, sql: str) -> None:
        if self.on:
            self.hit(f"SQLite {sql.strip().split()[0] if sql.strip() else sql!r}")


def _allowed(where: str) -> bool:
    name, _, rest = where.partition(":")
    function = rest.partition(" ")[2]
    return any(a == name or a == f"{name}:{function}" for a in ALLOWED)


GUARD = _Guard()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not GUARD.on:
        return
    if event == "open":
        path = args[0]
        if isinstance(path, int | type(None)):
            return
        name = str(path)
        if name.endswith(_CODE) or "__pycache__" in name or name.startswith(PACKAGE_DIR):
            return
        GUARD.hit(f"open {name}")


_installed = False


def _traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    conn = _connect(*args, **kwargs)
    conn.set_trace_callback(GUARD.statement)
    return conn


_connect = sqlite3.connect


def install() -> _Guard:
    """Install the audit hook and the traced `sqlite3.connect` once per
    process (audit hooks cannot be removed; both do nothing while the guard
    is off)."""
    global _installed
    if not _installed:
        sys.addaudithook(_audit)
        sqlite3.connect = _traced_connect  # type: ignore[assignment]
        _installed = True
    return GUARD
