"""One SQLite file used by several threads (one connection behind a lock) and
several processes (WAL): the conversation store and the index manifest."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.core.migrations import Migration, applied, migrate
from app.paths import DataDirError


class SQLiteFile:
    """Opens `path` (creating its folder), sets the pragmas, runs `_migrate`
    (by default: MIGRATIONS, through app.core.migrations). A file that is not
    SQLite, or a folder that cannot be made, becomes one DataDirError sentence
    built from the three names below; a file from a newer Hearth is refused
    untouched (DatabaseTooNewError)."""

    NOT_A = "database"  # "{path} is not a Hearth {NOT_A}"
    NAME = "database"  # "Hearth cannot use its {NAME}"
    FOLDER = "data folder"  # "Hearth cannot create its {FOLDER}"
    BUSY_TIMEOUT_MS = 5000
    SYNCHRONOUS = ""  # e.g. "NORMAL"; empty keeps SQLite's default
    MIGRATIONS: Sequence[Migration] = ()  # the schema, step by step (app.core.migrations)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout={int(self.BUSY_TIMEOUT_MS)}")
            self._db.execute("PRAGMA journal_mode=WAL")
            if self.SYNCHRONOUS:
                self._db.execute(f"PRAGMA synchronous={self.SYNCHRONOUS}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except DataDirError:  # already one sentence (a file from a newer Hearth)
            self._db.close()
            raise
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc):
                raise DataDirError(
                    f"{path} is not a Hearth {self.NOT_A}; move it away to start afresh."
                ) from exc
            raise DataDirError(f"Hearth cannot use its {self.NAME} {path}: {exc}.") from exc
        except OSError as exc:
            raise DataDirError(
                f"Hearth cannot create its {self.FOLDER} {path.parent}: {exc.strerror or exc}."
            ) from exc

    def _migrate(self) -> None:
        """Create or upgrade the schema: MIGRATIONS, unless a subclass does otherwise."""
        if self.MIGRATIONS:
            migrate(self, self.MIGRATIONS, self.NAME)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """All rows of one statement, run under the lock."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def applied_migrations(self) -> list[str]:
        """The names of the migrations this file records, in order."""
        with self.read() as db:
            return applied(db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection, for reads outside a transaction (held under the lock)."""
        with self._lock:
            yield self._db

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
