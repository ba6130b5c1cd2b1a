"""has_folders: the window's cheap question, asked on its GUI thread before
anything of the index is opened."""

from __future__ import annotations

from app.core.knowledge.location import has_folders, knowledge_dir
from app.core.knowledge.store import Manifest
from app.paths import Paths


def test_no_index_and_an_empty_one_have_no_folders(paths: Paths) -> None:
    assert not has_folders(paths)
    db = knowledge_dir(paths) / "manifest.sqlite3"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"")  # an empty file is an empty SQLite database
    assert not has_folders(paths)
    Manifest(db).close()
    assert not has_folders(paths)


def test_a_folder_is_seen_even_while_another_process_writes(paths: Paths) -> None:
    db = knowledge_dir(paths) / "manifest.sqlite3"
    manifest = Manifest(db)
    try:
        with manifest.tx() as db:  # holds the write lock, as an indexer mid-batch does
            assert not has_folders(paths)  # it read instead of waiting (or failing)
            db.execute("INSERT INTO folders (path, added_at) VALUES (?, 0)",
                       (str(paths.data_dir),))
            assert not has_folders(paths)  # not committed yet
        assert has_folders(paths)
        with manifest.tx():
            assert has_folders(paths)
    finally:
        manifest.close()


def test_a_damaged_manifest_counts_as_there_so_opening_it_says_what_is_wrong(
        paths: Paths) -> None:
    db = knowledge_dir(paths) / "manifest.sqlite3"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database" * 100)
    assert has_folders(paths)
