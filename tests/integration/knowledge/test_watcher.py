"""Live updates with real watchdog on a temp folder: search results follow
creates, edits, atomic saves, renames, deletes and bulk copies; the folder
may vanish and come back; running out of inotify watches falls back to polling."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.knowledge import progress as ev
from app.core.knowledge import watcher as watcher_mod
from app.core.knowledge.base import KnowledgeBase
from app.core.knowledge.watcher import Watcher, WatchWarning
from tests.integration.knowledge.conftest import consistent
from tests.kb_helpers import wait_for


class Events:
    def __init__(self) -> None:
        self.items: list[Any] = []

    def __call__(self, event: ev.ProgressEvent) -> None:
        self.items.append(event)

    def done(self, path: Path) -> int:
        return sum(isinstance(e, ev.FileDone) and e.path == str(path) for e in self.items)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def watching(kb: KnowledgeBase, docs: Path, events: Events) -> Iterator[Watcher]:
    (docs / "start.md").write_text("The lighthouse keeper logs the weather every night.")
    kb.add_folder(docs)
    w = Watcher(kb, events, debounce_s=0.2, reconcile_s=None)
    w.start()
    assert w.ready.wait(60)
    yield w
    w.stop()


def top_path(kb: KnowledgeBase, query: str) -> str | None:
    results = kb.search(query, 1)
    return results[0].path if results else None


def has_text(kb: KnowledgeBase, path: Path, text: str) -> bool:
    return any(text in r.text and r.path == str(path) for r in kb.search(text, 5))


def test_create_modify_rename_delete_follow_search(watching: Watcher, kb: KnowledgeBase,
                                                   docs: Path) -> None:
    note = docs / "notes" / "garden.md"
    note.parent.mkdir()
    note.write_text("Tomatoes need six hours of sun and deep watering.")
    wait_for(lambda: top_path(kb, "tomato plants sunlight") == str(note), what="new file")

    note.write_text("Basil grows well next to tomatoes and repels aphids.")
    wait_for(lambda: has_text(kb, note, "repels aphids"), what="edit")
    assert not has_text(kb, note, "six hours of sun")

    moved = docs / "notes" / "herbs.md"
    note.rename(moved)
    wait_for(lambda: top_path(kb, "basil aphids") == str(moved), what="rename")
    wait_for(lambda: kb.manifest.file(str(note)) is None, what="old path forgotten")

    moved.unlink()
    wait_for(lambda: kb.manifest.file(str(moved)) is None, what="delete")
    assert top_path(kb, "basil aphids") != str(moved)
    wait_for(lambda: watching.idle.is_set() and consistent(kb), what="consistency")


def test_atomic_save_and_bursts_are_coalesced(watching: Watcher, kb: KnowledgeBase, docs: Path,
                                              events: Events) -> None:
    target = docs / "draft.md"
    target.write_text("First draft about migrating geese.")
    wait_for(lambda: has_text(kb, target, "migrating geese"), what="first version")
    # An editor's save: write a temp file beside it, then rename it over.
    tmp = docs / ".draft.md.swp"
    tmp.write_text("Second draft about hibernating bears.")
    os.replace(tmp, target)
    wait_for(lambda: has_text(kb, target, "hibernating bears"), what="atomic save")
    assert not has_text(kb, target, "migrating geese")
    assert all(".swp" not in f.path for f in kb.manifest.files())

    before = events.done(target)
    for i in range(40):  # a burst of writes, faster than the debounce
        target.write_text(f"Revision {i} about hibernating bears and honey.")
    wait_for(lambda: has_text(kb, target, "Revision 39"), what="last revision")
    assert events.done(target) - before <= 2


def test_bulk_copy_storm_is_rescanned(watching: Watcher, kb: KnowledgeBase, docs: Path,
                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(watcher_mod, "STORM_PATHS", 20)
    src = tmp_path / "import"
    src.mkdir()
    for i in range(60):
        (src / f"card-{i}.txt").write_text(f"Index card number {i} lists species {i * 7 + 1000}.")
    shutil.copytree(src, docs / "cards")
    wait_for(lambda: len(kb.manifest.files(statuses=["indexed"])) == 61, timeout=60,
             what="all copied files indexed")
    assert top_path(kb, "Index card number 42") == str(docs / "cards" / "card-42.txt")


def test_folder_that_vanishes_keeps_its_index_and_is_followed_again(
        watching: Watcher, kb: KnowledgeBase, docs: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watcher_mod, "HEALTH_S", 0.2)
    away = tmp_path / "unplugged"
    docs.rename(away)
    wait_for(lambda: kb.folders()[0].state == "missing", what="folder marked missing")
    assert top_path(kb, "lighthouse keeper weather") == str(docs / "start.md")
    away.rename(docs)
    wait_for(lambda: kb.folders()[0].state == "ok", what="folder back")
    (docs / "after.md").write_text("Otters hold hands while they sleep.")
    wait_for(lambda: top_path(kb, "otters sleeping") == str(docs / "after.md"),
             what="changes followed after the folder came back")


def test_inotify_limit_falls_back_to_polling(kb: KnowledgeBase, docs: Path) -> None:
    """The real limit is machine-wide (fs.inotify.max_user_watches) and cannot be
    lowered for one test, so the observer here fails the way inotify does."""
    from watchdog.observers import Observer

    class Exhausted(Observer):  # type: ignore[misc,valid-type]
        def schedule(self, *args: Any, **kwargs: Any) -> Any:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    warnings: list[WatchWarning] = []
    kb.add_folder(docs)
    w = Watcher(kb, on_warning=warnings.append, debounce_s=0.1, reconcile_s=None,
                observer_factory=Exhausted)
    w.start()
    try:
        assert w.ready.wait(60)
        assert w.polling == {str(docs)}
        assert "polling" in warnings[0].message
        (docs / "polled.md").write_text("Penguins huddle together for warmth.")
        wait_for(lambda: top_path(kb, "penguin huddle") == str(docs / "polled.md"),
                 what="change seen by polling")
    finally:
        w.stop()


def test_changes_while_not_watching_are_caught_at_start(kb: KnowledgeBase, docs: Path) -> None:
    (docs / "a.md").write_text("Kestrels hover before they dive.")
    kb.add_folder(docs)
    kb.reconcile()
    (docs / "a.md").unlink()
    (docs / "b.md").write_text("Herons stand still in shallow water.")
    w = Watcher(kb, debounce_s=0.1, reconcile_s=None)
    w.start()
    try:
        assert w.ready.wait(60)
        assert kb.manifest.file(str(docs / "a.md")) is None
        assert top_path(kb, "heron fishing") == str(docs / "b.md")
    finally:
        w.stop()


def test_periodic_reconcile_catches_missed_events(kb: KnowledgeBase, docs: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    kb.add_folder(docs)
    w = Watcher(kb, debounce_s=0.1, reconcile_s=0.5)
    monkeypatch.setattr(w, "_on_event", lambda *a: None)  # every event is "dropped"
    w.start()
    try:
        assert w.ready.wait(60)
        (docs / "missed.md").write_text("Moths navigate by the moon.")
        wait_for(lambda: top_path(kb, "moth navigation moon") == str(docs / "missed.md"),
                 what="periodic reconcile")
    finally:
        w.stop()


def test_folder_added_by_another_process_is_picked_up(watching: Watcher, kb: KnowledgeBase,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watcher_mod, "HEALTH_S", 0.2)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "moss.md").write_text("Moss grows on the shaded north side of trees.")
    # What `hearth index add` does when another process holds the writer lock.
    with KnowledgeBase(kb.paths, kb.settings) as reader:
        reader.add_folder(extra)
    wait_for(lambda: top_path(kb, "moss on trees") == str(extra / "moss.md"),
             what="the new folder indexed by the running watcher")
