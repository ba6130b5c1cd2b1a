"""Folders in the window: the folders dialog over the real index (real
Chroma, real ONNX embeddings, real watchdog), indexing progress in the status
bar, Pause indexing in the tray, "Use my files", and quitting mid-scan."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from app.core.knowledge.base import KnowledgeBase
from app.paths import Paths
from app.settings import Settings
from tests.helpers import REPO
from tests.integration.knowledge.conftest import check_stopped_cleanly, consistent

pytestmark = pytest.mark.slow

SCAN_MS = 60_000


def notes(folder: Path, n: int = 6) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"note-{i}.md").write_text(
            f"# Note {i}\n\nThe lamp budget meeting {i} decided to spend {i * 100} euros.\n")
    return folder


def row(dialog: Any, path: Path) -> str:
    for i in range(dialog.folders.topLevelItemCount()):
        item = dialog.folders.topLevelItem(i)
        if item.text(0) == str(path):
            return str(item.text(1))
    return ""


def indexed(dialog: Any, path: Path, files: int) -> bool:
    return row(dialog, path).startswith(f"{files} files")


def test_add_a_folder_index_it_and_see_what_was_left_out(
        qtbot: QtBot, hearth: Any, tmp_path: Path) -> None:
    docs = notes(tmp_path / "docs")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a PDF")
    hearth.start()
    dialog = hearth.open_folders()
    states: list[str] = []
    hearth.index.state_changed.connect(lambda state, _text: states.append(state))
    with qtbot.waitSignal(hearth.index.finished, timeout=SCAN_MS) as finished:
        dialog.add_folder(str(docs))
    assert finished.args[0].indexed == 6 and finished.args[0].skipped == 1
    qtbot.waitUntil(lambda: indexed(dialog, docs, 6), timeout=SCAN_MS)
    assert "1 left out" in row(dialog, docs)
    assert dialog.problems.topLevelItemCount() == 1
    problem = dialog.problems.topLevelItem(0)
    assert problem.text(0) == "broken.pdf" and "PDF" in problem.text(1)
    assert "indexing" in states
    qtbot.waitUntil(lambda: hearth.window.index_status.text() == "Index: up to date",
                    timeout=5_000)
    assert ("Indexing finished", "6 files indexed, 1 left out (Folders lists why).") \
        in hearth.tray.notices
    # The window's folder chooser lists it.
    assert str(docs) in [a.text() for a in hearth.window.files_menu.actions()]

    # The app keeps watching: a new file is indexed without asking.
    (docs / "later.md").write_text("# Later\n\nAdded while Hearth was running.\n")
    qtbot.waitUntil(lambda: indexed(dialog, docs, 7), timeout=SCAN_MS)


def test_answers_cite_the_folder_and_the_chooser_narrows_them(
        qtbot: QtBot, hearth: Any, tmp_path: Path) -> None:
    lamps = notes(tmp_path / "lamps")
    other = tmp_path / "other"
    other.mkdir()
    (other / "chairs.md").write_text("# Chairs\n\nThe lamp budget does not cover chairs.\n")
    hearth.settings.override("knowledge.top_k", 8)
    hearth.start()
    dialog = hearth.open_folders()
    dialog.add_folder(str(lamps))
    qtbot.waitUntil(lambda: indexed(dialog, lamps, 6), timeout=SCAN_MS)
    dialog.add_folder(str(other))
    qtbot.waitUntil(lambda: indexed(dialog, other, 1), timeout=SCAN_MS)
    window = hearth.window
    assert window.ask_options().use_files and window.ask_options().folders is None

    with qtbot.waitSignal(window.answer_finished, timeout=SCAN_MS):
        window.ask("What did the lamp budget meeting decide?")
    cited = {Path(s.path).parent for s in window.sources_panel.sources}
    assert cited == {lamps, other}

    qtbot.waitUntil(lambda: not window.busy, timeout=5_000)
    only = next(a for a in window.files_menu.actions() if a.text() == str(other))
    only.trigger()
    assert window.ask_options().folders == (str(other),)
    assert window.files_button.text() == "Use other"
    with qtbot.waitSignal(window.answer_finished, timeout=SCAN_MS):
        window.ask("What did the lamp budget meeting decide?", new_conversation=True)
    assert {Path(s.path).parent for s in window.sources_panel.sources} == {other}

    qtbot.waitUntil(lambda: not window.busy, timeout=5_000)
    window.files_button.setChecked(False)
    assert not window.ask_options().use_files
    with qtbot.waitSignal(window.answer_finished, timeout=SCAN_MS):
        window.ask("Say hello.", new_conversation=True)
    assert window.sources_panel.sources == ()


def test_patterns_local_only_reindex_pause_and_remove(
        qtbot: QtBot, hearth: Any, tmp_path: Path, paths: Paths, settings: Settings) -> None:
    docs = notes(tmp_path / "docs", 3)
    (docs / "data.txt").write_text("plain text about lamps\n")
    hearth.start()
    dialog = hearth.open_folders()
    dialog.add_folder(str(docs))
    qtbot.waitUntil(lambda: indexed(dialog, docs, 4), timeout=SCAN_MS)

    dialog.exclude.setText("*.md")
    dialog.local_only.setChecked(True)
    with qtbot.waitSignal(hearth.index.done, timeout=10_000):
        dialog.save_selected()
    qtbot.waitUntil(lambda: indexed(dialog, docs, 1), timeout=SCAN_MS)
    assert "local only" in row(dialog, docs)
    assert dialog.exclude.text() == "*.md" and dialog.local_only.isChecked()

    with qtbot.waitSignal(hearth.index.done, timeout=SCAN_MS) as done:
        dialog.reindex_selected()
    assert done.args[0] == f"Re-read 1 files of {docs}."

    with qtbot.waitSignal(hearth.index.done, timeout=10_000):
        dialog.toggle_pause()
    qtbot.waitUntil(lambda: row(dialog, docs).startswith("Paused"), timeout=5_000)
    assert dialog.pause_button.text() == "Resume"

    with qtbot.waitSignal(hearth.index.done, timeout=SCAN_MS) as done:
        dialog.remove_selected(confirm=False)
    assert done.args[0].startswith(f"Removed {docs}")
    qtbot.waitUntil(lambda: dialog.folders.topLevelItemCount() == 0, timeout=5_000)
    assert not dialog.remove_button.isEnabled()
    assert [a.text() for a in hearth.window.files_menu.actions() if a.text() == str(docs)] == []
    assert docs.joinpath("data.txt").exists()  # the files themselves are untouched


def test_bad_folders_get_one_sentence_and_nothing_is_lost(
        qtbot: QtBot, hearth: Any, tmp_path: Path) -> None:
    docs = notes(tmp_path / "docs", 2)
    hearth.start()
    dialog = hearth.open_folders()
    # A file, not a folder.
    with qtbot.waitSignal(hearth.index.failed, timeout=SCAN_MS):
        dialog.add_folder(str(docs / "note-0.md"))
    assert dialog.message.text() == f"{docs / 'note-0.md'} is not a folder."
    assert dialog.message.property("error") is True
    # A folder that does not exist.
    with qtbot.waitSignal(hearth.index.failed, timeout=10_000):
        dialog.add_folder(str(tmp_path / "nowhere"))
    assert "is not a folder" in dialog.message.text()

    dialog.add_folder(str(docs))
    qtbot.waitUntil(lambda: indexed(dialog, docs, 2), timeout=SCAN_MS)
    # A folder inside one already indexed.
    (docs / "sub").mkdir()
    with qtbot.waitSignal(hearth.index.failed, timeout=10_000):
        dialog.add_folder(str(docs / "sub"))
    assert "is inside" in dialog.message.text()

    # The folder goes away (an unplugged drive): it says so and keeps the index.
    moved = tmp_path / "moved"
    with qtbot.waitSignal(hearth.index.problem, timeout=SCAN_MS) as problem:
        docs.rename(moved)
    assert "not there" in problem.args[0]
    hearth.index.refresh()
    qtbot.waitUntil(lambda: row(dialog, docs).startswith("Unavailable"), timeout=10_000)
    moved.rename(docs)
    qtbot.waitUntil(lambda: indexed(dialog, docs, 2), timeout=SCAN_MS)


def start_indexing(qtbot: QtBot, hearth: Any, docs: Path, files: int | None = None) -> Any:
    """Start the app, add `docs` in the Folders dialog and wait until its scan
    is under way or, given `files`, until that many are indexed."""
    hearth.start()
    dialog = hearth.open_folders()
    dialog.add_folder(str(docs))
    if files is None:
        qtbot.waitUntil(lambda: hearth.window.index_status.text().startswith("Indexing "),
                        timeout=SCAN_MS)
    else:
        qtbot.waitUntil(lambda: indexed(dialog, docs, files), timeout=SCAN_MS)
    return dialog


def test_a_changed_setting_reaches_the_running_index_process(
        qtbot: QtBot, hearth: Any, tmp_path: Path) -> None:
    docs = notes(tmp_path / "docs", 5)
    start_indexing(qtbot, hearth, docs, files=5)
    search = hearth.index.process.search
    assert len(search("lamp budget meeting")) == 5  # knowledge.top_k: 6
    pid = hearth.index.process.pid
    hearth.settings.set("knowledge.top_k", 2)  # as the settings dialog does
    # The index process answers with its own copy of the settings.
    assert len(search("lamp budget meeting")) == 2
    assert hearth.index.process.pid == pid


def test_pause_indexing_from_the_tray(qtbot: QtBot, hearth: Any, tmp_path: Path) -> None:
    docs = notes(tmp_path / "docs", 2)
    dialog = start_indexing(qtbot, hearth, docs, files=2)

    with qtbot.waitSignal(hearth.index.state_changed, timeout=10_000,
                          check_params_cb=lambda state, _t: state == "paused"):
        hearth.tray.pause_action.trigger()
    window = hearth.window
    assert window.index_status.text() == "Indexing paused"
    assert window.index_pause.isChecked() and window.index_pause.text() == "Resume"
    (docs / "while-paused.md").write_text("# Paused\n\nWritten while indexing was paused.\n")

    # Resuming from the status bar catches up with what changed meanwhile.
    window.index_pause.click()
    assert not hearth.tray.pause_action.isChecked()
    qtbot.waitUntil(lambda: indexed(dialog, docs, 3), timeout=SCAN_MS)
    qtbot.waitUntil(lambda: window.index_status.text() == "Index: up to date", timeout=10_000)


def test_another_process_writing_leaves_this_one_reading(
        qtbot: QtBot, hearth: Any, tmp_path: Path, paths: Paths, settings: Settings) -> None:
    docs = notes(tmp_path / "docs", 2)
    other = KnowledgeBase(paths, settings, writer=True)  # e.g. `hearth index watch`
    try:
        other.add_folder(docs)
        other.reconcile()
        hearth.start()
        qtbot.waitUntil(lambda: hearth.index.state == "busy", timeout=SCAN_MS)
        assert "another Hearth process" in hearth.window.index_status.text()
        dialog = hearth.open_folders()
        qtbot.waitUntil(lambda: indexed(dialog, docs, 2), timeout=10_000)
        more = notes(tmp_path / "more", 1)
        with qtbot.waitSignal(hearth.index.done, timeout=10_000) as done:
            dialog.add_folder(str(more))
        assert "other Hearth process" in done.args[0]
        assert other.find_folder(more).path == str(more)  # recorded for that process
        with qtbot.waitSignal(hearth.index.failed, timeout=10_000):
            dialog.select_path(str(docs))
            dialog.remove_selected(confirm=False)
        assert "Another Hearth process is updating the index" in dialog.message.text()
    finally:
        other.close()
    # When the other process ends, this one takes over (tried again at once here).
    hearth.index.start()
    qtbot.waitUntil(lambda: hearth.index.state in ("idle", "indexing"), timeout=SCAN_MS)




def test_quitting_mid_scan_stops_cleanly_and_loses_nothing(
        qtbot: QtBot, hearth: Any, tmp_path: Path, paths: Paths, settings: Settings) -> None:
    docs = notes(tmp_path / "docs", 400)
    start_indexing(qtbot, hearth, docs)
    hearth.quit()
    # The writer lock is free and the index was closed cleanly.
    with KnowledgeBase(paths, settings, writer=True) as kb:
        check_stopped_cleanly(kb, docs, 400)


def test_the_indexer_dying_is_said_and_a_new_one_finishes_the_work(
        qtbot: QtBot, hearth: Any, tmp_path: Path, paths: Paths, settings: Settings) -> None:
    docs = notes(tmp_path / "docs", 300)
    dialog = start_indexing(qtbot, hearth, docs)
    window = hearth.window
    pid = hearth.index.process.pid
    with qtbot.waitSignal(hearth.index.state_changed, timeout=10_000,
                          check_params_cb=lambda state, _t: state == "error"):
        os.kill(pid, signal.SIGKILL)  # a crash in Chroma or ONNX would look the same
    assert window.index_status.text() == ("Index: the indexer stopped unexpectedly; "
                                          "restarting it…")
    assert window.isVisible()  # the window itself carries on
    # A new process repairs what the dead one left half-done and finishes.
    qtbot.waitUntil(lambda: indexed(dialog, docs, 300), timeout=SCAN_MS * 2)
    assert hearth.index.process.pid not in (None, pid)
    qtbot.waitUntil(lambda: window.index_status.text() == "Index: up to date", timeout=10_000)
    hearth.quit()
    with KnowledgeBase(paths, settings, writer=True) as kb:
        assert not kb.needs_repair
        assert consistent(kb)


def test_an_indexer_that_keeps_dying_is_given_up_on_with_one_sentence(
        qtbot: QtBot, hearth: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.ui import indexing

    monkeypatch.setattr(indexing, "RESTART_LIMIT", 1)  # give up at the second death
    docs = notes(tmp_path / "docs", 2)
    dialog = start_indexing(qtbot, hearth, docs, files=2)
    with qtbot.waitSignal(hearth.index.state_changed, timeout=10_000,
                          check_params_cb=lambda state, _t: state == "error"):
        os.kill(hearth.index.process.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: hearth.index.state in ("idle", "indexing"), timeout=SCAN_MS)
    with qtbot.waitSignal(hearth.index.failed, timeout=10_000) as failed:
        os.kill(hearth.index.process.pid, signal.SIGKILL)
    assert failed.args[0] == ("The indexer keeps stopping unexpectedly, so Hearth no longer "
                              "restarts it; restart Hearth to try again.")
    assert "killed by signal 9" in failed.args[1]
    assert dialog.message.text() == failed.args[0]
    assert hearth.window.index_status.text() == "Index: the indexer keeps stopping; see the log"
    assert not hearth.index.process.running


WINDOW = """
import json, sys, time
from PySide6.QtWidgets import QApplication
from app.paths import get_paths
from app.settings import Settings
from app.ui.app import HearthApp

app = QApplication([])
paths = get_paths()
settings = Settings.load(paths)
settings.override("generation.max_tokens", 8)
settings.override("ui.quick_ask_shortcut", "")
hearth = HearthApp(settings, paths)
hearth.start()
finished = []
hearth.index.finished.connect(finished.append)
hearth.index.add_folder(sys.argv[1])
deadline = time.monotonic() + 60
while not finished and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.01)
events = list(hearth.assistant.ask("What did the lamp budget meeting decide?"))
sources = [e for e in events if type(e).__name__ == "Sources"]
hearth.quit()
print(json.dumps({"indexed": finished[0].indexed if finished else 0,
                  "sources": len(sources[-1].sources) if sources else 0,
                  "modules": sorted(m for m in ("chromadb", "onnxruntime", "watchdog")
                                    if m in sys.modules)}))
"""


def test_the_window_process_never_runs_chroma(tmp_path: Path) -> None:
    """Chroma's writes hold the GIL for tens of milliseconds; the window's
    event loop stays smooth because its process never loads Chroma, ONNX or
    watchdog: the index process indexes and searches for it."""
    docs = notes(tmp_path / "docs", 3)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", WINDOW, str(docs)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"indexed": 3, "sources": 3, "modules": []}


def test_without_folders_no_index_process_runs_not_even_to_pause(
        qtbot: QtBot, hearth: Any) -> None:
    hearth.start()
    assert hearth.index.state == "none"
    with qtbot.waitSignal(hearth.index.state_changed, timeout=5_000,
                          check_params_cb=lambda state, _t: state == "paused"):
        hearth.tray.pause_action.trigger()
    assert hearth.window.index_status.text() == "Indexing paused"
    with qtbot.waitSignal(hearth.index.state_changed, timeout=5_000,
                          check_params_cb=lambda state, _t: state == "none"):
        hearth.tray.pause_action.trigger()
    assert not hearth.index.process.running
