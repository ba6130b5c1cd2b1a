"""The one way Hearth creates and upgrades its SQLite files (the conversation
store and the index manifest).

A migration is `(name, script)`: the name starts with its version
("0003_message_trace"), versions increase by one in the order given, and a
migration, once released, is never edited (append a new one instead). Each
file records the names applied, with the time, in its `migrations` table;
that is what every Hearth has recorded, so existing files upgrade in place.
Each migration runs in its own transaction with its record: a crash leaves the
file at the last whole step, and the next open goes on from there.

A file that records a migration this Hearth does not know was written by a
newer Hearth: it is left untouched and opening it fails with one sentence
(DatabaseTooNewError).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app.paths import DataDirError

if TYPE_CHECKING:
    from app.core.db import SQLiteFile

Migration = tuple[str, str]  # (name "NNNN_what", SQL script)


class DatabaseTooNewError(DataDirError):
    """The file was upgraded by a newer Hearth; this one leaves it as it is."""


def version(name: str) -> int:
    """The version a migration's name starts with: "0003_message_trace" -> 3."""
    head = name.split("_", 1)[0]
    if not head.isdigit():
        raise ValueError(f"migration {name!r} does not start with its version number")
    return int(head)


def check(migrations: Sequence[Migration]) -> None:
    """Versions 1, 2, 3… in order, names unique (a programming error if not)."""
    for expected, (name, _sql) in enumerate(migrations, start=1):
        if version(name) != expected:
            raise ValueError(f"migration {name!r} should have version {expected}")


def statements(script: str) -> Iterator[str]:
    """The statements of an SQL script; a trigger's BEGIN…END stays whole."""
    buf = ""
    for part in script.split(";"):
        buf += part
        if sqlite3.complete_statement(buf + ";"):
            if buf.strip():
                yield buf.strip()
            buf = ""
        else:
            buf += ";"
    if buf.strip():
        yield buf.strip()


def applied(db: sqlite3.Connection) -> list[str]:
    """The names of the migrations a file records, in name order (none for a new file)."""
    table = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'"
    ).fetchone()
    if table is None:
        return []
    return [row[0] for row in db.execute("SELECT name FROM migrations ORDER BY name")]


def _refuse_newer(done: Sequence[str], migrations: Sequence[Migration], path: Path,
                  what: str) -> None:
    known = {name for name, _sql in migrations}
    unknown = [name for name in done if name not in known]
    if unknown:
        raise DatabaseTooNewError(
            f"{path} was upgraded by a newer Hearth (its {what} has step {unknown[-1]}, "
            f"this Hearth knows up to {migrations[-1][0]}), so it is left as it is; "
            "update Hearth to open it."
        )


def migrate(file: SQLiteFile, migrations: Sequence[Migration], what: str) -> list[str]:
    """Apply the migrations `file` lacks, in order, one transaction each; return
    the names applied now. An up-to-date file is only read."""
    check(migrations)
    with file.read() as db:
        done = applied(db)
    _refuse_newer(done, migrations, file.path, what)
    ran: list[str] = []
    for name, sql in migrations:
        if name in done:
            continue
        with file.tx() as db:
            # Another process may have upgraded the file since it was read.
            done = applied(db)
            _refuse_newer(done, migrations, file.path, what)
            if name in done:
                continue
            db.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)"
            )
            for statement in statements(sql):
                db.execute(statement)
            db.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
        ran.append(name)
    return ran
