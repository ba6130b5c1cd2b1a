"""One migration runner for Hearth's SQLite files: older files upgrade in
place, a file from a newer Hearth is refused untouched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.core import conversations, migrations
from app.core.conversations import ConversationStore
from app.core.db import SQLiteFile
from app.core.knowledge import store
from app.core.knowledge.store import Manifest
from app.core.migrations import DatabaseTooNewError, Migration
from app.paths import DataDirError


def _old_file(path: Path, steps: tuple[Migration, ...]) -> None:
    """A file as an older Hearth left it: these migrations applied, recorded
    with their time (the table every Hearth has kept)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    for name, sql in steps:
        for statement in migrations.statements(sql):
            db.execute(statement)
        db.execute("INSERT INTO migrations VALUES (?, ?)", (name, 1000.0))
    db.close()


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_an_old_conversation_store_upgrades_and_keeps_its_messages(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    _old_file(path, conversations.MIGRATIONS[:2])
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("INSERT INTO conversations VALUES ('c1', 'Old talk', 1.0, 2.0)")
    db.execute("INSERT INTO messages (id, conversation_id, role, content, created_at) "
               "VALUES ('m1', 'c1', 'user', 'Hello from before', 1.5)")
    db.close()

    s = ConversationStore(path)
    try:
        assert s.applied_migrations() == [name for name, _ in conversations.MIGRATIONS]
        (conv,) = s.search()
        assert conv.title == "Old talk"
        (msg,) = s.messages("c1")
        assert msg.content == "Hello from before"
        assert msg.trace is None  # a column 0003 added, empty for old answers
    finally:
        s.close()
    recorded = dict(_rows(path, "SELECT name, applied_at FROM migrations"))
    old, new = conversations.MIGRATIONS[1][0], conversations.MIGRATIONS[2][0]
    assert recorded[old] == 1000.0  # what was done before stays recorded as it was
    assert recorded[new] > 1000.0


def test_an_old_manifest_upgrades_through_the_same_runner(tmp_path: Path) -> None:
    path = tmp_path / "manifest.sqlite3"
    _old_file(path, store.MIGRATIONS[:1])
    m = Manifest(path)
    try:
        assert m.applied_migrations() == [name for name, _ in store.MIGRATIONS]
    finally:
        m.close()


def test_an_up_to_date_file_is_only_read(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    ConversationStore(path).close()
    before = _rows(path, "SELECT name, applied_at FROM migrations")
    s = ConversationStore(path)
    try:
        assert migrations.migrate(s, conversations.MIGRATIONS, s.NAME) == []
    finally:
        s.close()
    assert _rows(path, "SELECT name, applied_at FROM migrations") == before


@pytest.mark.parametrize("kind", [ConversationStore, Manifest])
def test_a_file_from_a_newer_hearth_is_refused_and_left_alone(
        tmp_path: Path, kind: type[SQLiteFile]) -> None:
    path = tmp_path / "newer.sqlite3"
    kind(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE from_the_future (x)")
    db.execute("INSERT INTO migrations VALUES ('0099_from_the_future', 2000.0)")
    db.close()
    before = path.read_bytes()
    schema = _rows(path, "SELECT name, sql FROM sqlite_master ORDER BY name")

    with pytest.raises(DatabaseTooNewError) as caught:
        kind(path)
    message = str(caught.value)
    assert isinstance(caught.value, DataDirError)  # shown like the other file errors
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence
    assert str(path) in message and "newer Hearth" in message
    assert "0099_from_the_future" in message
    assert path.read_bytes() == before
    assert _rows(path, "SELECT name, sql FROM sqlite_master ORDER BY name") == schema


class _Steps(SQLiteFile):
    NAME = "test file"
    MIGRATIONS: tuple[Migration, ...] = (
        ("0001_a", "CREATE TABLE a (x); INSERT INTO a VALUES (1)"),
        ("0002_b", "CREATE TABLE b (x); INSERT INTO nowhere VALUES (1)"),
    )


def test_each_migration_is_its_own_transaction(tmp_path: Path) -> None:
    path = tmp_path / "steps.sqlite3"
    with pytest.raises(DataDirError):
        _Steps(path)  # 0002 fails: 0001 stays, whole; nothing of 0002 does
    names = [r[0] for r in _rows(path, "SELECT name FROM sqlite_master WHERE type='table'")]
    assert "a" in names and "b" not in names
    assert _rows(path, "SELECT name FROM migrations") == [("0001_a",)]


def test_versions_must_follow_each_other() -> None:
    migrations.check((("0001_a", ""), ("0002_b", "")))
    with pytest.raises(ValueError):
        migrations.check((("0001_a", ""), ("0003_c", "")))
    with pytest.raises(ValueError):
        migrations.check((("first", ""),))
