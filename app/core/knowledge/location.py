"""Where the index lives on disk, and the one question answered without
opening it (no Chroma, no numpy): has any folder been added?"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from app.paths import Paths


def knowledge_dir(paths: Paths) -> Path:
    return paths.data_dir / "knowledge"


def has_folders(paths: Paths) -> bool:
    """Whether any folder was ever added. No migration, and it never waits
    for a process that is writing the index: the window asks on its GUI
    thread."""
    db = knowledge_dir(paths) / "manifest.sqlite3"
    if not db.exists():
        return False
    try:
        con = sqlite3.connect(str(db), timeout=1.0)
        try:
            return con.execute("SELECT 1 FROM folders LIMIT 1").fetchone() is not None
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        # No table yet: nothing was added. Anything else: opening the index
        # properly says what is wrong.
        return "no such table" not in str(exc)
