"""The window's index process (app.core.knowledge.index_client and
index_server) without Qt: a real
child process with real Chroma, ONNX embeddings and watchdog, talked to over
its pipe — calls, events, searches, bad calls, a clean stop, and
the window dying under it."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from app.core.errors import HearthError
from app.core.knowledge import progress as ev
from app.core.knowledge import protocol as p
from app.core.knowledge.base import KnowledgeBase
from app.core.knowledge.index_client import IndexProcess
from app.paths import Paths
from app.settings import Settings
from tests.helpers import REPO
from tests.integration.knowledge.conftest import check_stopped_cleanly, consistent
from tests.kb_helpers import wait_for

pytestmark = pytest.mark.slow

SCAN_S = 90.0

E = TypeVar("E")


class Events:
    """What the index process reported, in order; `next(kind)` takes the
    events of one kind one by one, waiting for the next if need be."""

    def __init__(self) -> None:
        self.q: queue.Queue[p.Event] = queue.Queue()
        self.seen: list[p.Event] = []
        self._taken: dict[type, int] = {}

    def __call__(self, event: p.Event) -> None:
        self.q.put(event)

    def next(self, kind: type[E], timeout: float = SCAN_S) -> E:
        while True:
            of_kind = [e for e in self.seen if isinstance(e, kind)]
            taken = self._taken.get(kind, 0)
            if len(of_kind) > taken:
                self._taken[kind] = taken + 1
                return of_kind[taken]
            self.seen.append(self.q.get(timeout=timeout))

    def latest(self, kind: type[E]) -> E | None:
        """The last event of this kind so far (after taking in what has come)."""
        while not self.q.empty():
            self.seen.append(self.q.get())
        of_kind = [e for e in self.seen if isinstance(e, kind)]
        return of_kind[-1] if of_kind else None


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def proc(paths: Paths, settings: Settings, events: Events) -> Iterator[IndexProcess]:
    p = IndexProcess(paths, settings, events)
    yield p
    p.stop()


def notes(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"note-{i}.md").write_text(
            f"# Note {i}\n\nThe lamp budget meeting {i} decided to spend {i * 100} euros.\n")
    return folder


def test_the_index_process_writes_follows_searches_and_stops_cleanly(
        proc: IndexProcess, events: Events, paths: Paths, settings: Settings,
        tmp_path: Path) -> None:
    docs = notes(tmp_path / "docs", 3)
    (docs / "garden.md").write_text("# Garden\n\nThe tomatoes need water every morning.\n")
    added = proc.call(p.AddFolder(str(docs))).result(SCAN_S)
    assert added == f"Added {docs}; indexing it now."
    stats = events.next(p.RunFinished).stats
    assert isinstance(stats, ev.Stats) and stats.indexed == 4
    folders = events.next(p.FoldersChanged).folders
    assert folders[0].path == str(docs)

    # Another process writes the index: this one holds the writer lock.
    pid = proc.pid
    assert pid is not None and pid != os.getpid()
    kb_dir = paths.data_dir / "knowledge"
    assert int((kb_dir / "writer.pid").read_text()) == pid

    # Searches are answered over there, from the same index.
    hits = proc.search("When do the tomatoes need water?", 2)
    assert hits[0].path == str(docs / "garden.md")
    assert hits[0].start_line == 1
    only = proc.search("lamp budget", 10, folders=[str(docs)], path_glob="*note-1*")
    assert [h.path for h in only] == [str(docs / "note-1.md")]

    # It keeps following the folder.
    (docs / "later.md").write_text("# Later\n\nThe bicycle shed gets a new roof.\n")
    wait_for(lambda: any(h.path.endswith("later.md")
                         for h in proc.search("bicycle shed roof", 3)), timeout=SCAN_S)

    proc.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(HearthError, match=r"^Hearth is shutting down\.$"):
        proc.call(p.Refresh()).result(5)
    # The lock is free, the index was closed cleanly and agrees with itself.
    with KnowledgeBase(paths, settings, writer=True) as kb:
        assert not kb.needs_repair
        assert consistent(kb)
        assert kb.status()["folders"][0]["indexed"] == 5


def test_bad_calls_get_one_sentence_and_the_process_carries_on(
        proc: IndexProcess, events: Events, tmp_path: Path) -> None:
    docs = notes(tmp_path / "docs", 2)
    with pytest.raises(HearthError) as not_a_folder:
        proc.call(p.AddFolder(str(docs / "note-0.md"))).result(SCAN_S)
    assert str(not_a_folder.value) == f"{docs / 'note-0.md'} is not a folder."
    assert "Traceback" in getattr(not_a_folder.value, "details", "")
    with pytest.raises(HearthError) as unknown:
        proc.call(ev.Stats()).result(10)  # type: ignore[arg-type]  # not a request
    assert str(unknown.value) == "Unknown index request 'Stats'."
    with pytest.raises(HearthError) as removed:
        proc.call(p.RemoveFolder(str(tmp_path / "never-added"))).result(10)
    assert "is not an indexed folder" in str(removed.value)
    # Nothing was lost on the way: the same process still does real work.
    pid = proc.pid
    proc.call(p.AddFolder(str(docs))).result(SCAN_S)
    assert events.next(p.RunFinished).stats.indexed == 2
    assert proc.pid == pid


def test_it_reads_what_another_writer_wrote_and_takes_over_without_losing_it(
        proc: IndexProcess, events: Events, paths: Paths, settings: Settings,
        tmp_path: Path) -> None:
    """Chroma keeps what it loaded per process; a process that read while
    another wrote must see that process's vectors, and keep them once it
    writes itself (Chroma would otherwise save its outdated copy over them)."""
    docs = notes(tmp_path / "docs", 5)
    other = KnowledgeBase(paths, settings, writer=True)  # e.g. `hearth index watch`
    try:
        other.add_folder(docs)
        other.reconcile()
        proc.call(p.Open()).result(SCAN_S)
        assert events.next(p.StateChanged).state == p.IndexState.OPENING
        assert events.next(p.StateChanged).state == p.IndexState.BUSY
        assert proc.search("lamp budget meeting", 3)  # the reader has loaded the index

        (docs / "zebra.md").write_text("# Zebra\n\nThe zebra crossing was painted yellow.\n")
        other.reconcile()
        hit = proc.search("zebra crossing painted yellow", 1)[0]
        assert hit.path == str(docs / "zebra.md") and hit.vector_score is not None
    finally:
        other.close()

    proc.call(p.Open()).result(SCAN_S)  # the other process has gone: this one writes
    assert proc.call(p.Refresh()).result(SCAN_S) is None
    (docs / "owl.md").write_text("# Owl\n\nAn owl nests in the old church tower.\n")
    wait_for(lambda: any(h.path.endswith("owl.md")
                         for h in proc.search("owl nests church tower", 1)), timeout=SCAN_S)
    zebra = proc.search("zebra crossing painted yellow", 1)[0]
    assert zebra.path == str(docs / "zebra.md") and zebra.vector_score is not None
    proc.stop()
    with KnowledgeBase(paths, settings, writer=True) as kb:
        assert consistent(kb)
        assert kb.vectors is not None and kb.vectors.count() == 7
        by_vector = kb.search("zebra crossing painted yellow", 1)[0]
        assert by_vector.path == str(docs / "zebra.md") and by_vector.vector_score is not None


def test_a_dead_index_process_fails_its_calls_and_the_next_call_starts_another(
        proc: IndexProcess, events: Events, paths: Paths, settings: Settings,
        tmp_path: Path) -> None:
    docs = notes(tmp_path / "docs", 200)
    proc.call(p.AddFolder(str(docs))).result(SCAN_S)
    events.next(p.Activity)
    pid = proc.pid
    assert pid is not None
    pending = proc.call(p.Reindex(str(docs)))
    os.kill(pid, signal.SIGKILL)
    exited = events.next(p.Exited)
    sentence, details = exited.message, exited.details
    assert sentence == "The indexer stopped unexpectedly; try again."
    assert f"pid {pid}" in details and "killed by signal 9" in details
    with pytest.raises(HearthError, match=r"^The indexer stopped unexpectedly; try again\.$"):
        pending.result(10)

    # A new process opens the index, repairs what the dead one left half-done
    # and finishes the folder.
    proc.call(p.Open()).result(SCAN_S)
    assert proc.pid not in (None, pid)
    wait_for(lambda: _indexed_files(events) == 200, timeout=SCAN_S)
    proc.stop()
    with KnowledgeBase(paths, settings, writer=True) as kb:
        assert consistent(kb)
        assert kb.status()["folders"][0]["indexed"] == 200


def _indexed_files(events: Events) -> int:
    """Files indexed, from the latest folders event so far."""
    latest = events.latest(p.FoldersChanged)
    return latest.folders[0].indexed if latest else 0


WINDOW = """
import sys
from pathlib import Path
from app.core.knowledge.index_client import IndexProcess
from app.core.knowledge.protocol import AddFolder
from app.paths import get_paths
from app.settings import Settings

paths = get_paths()
events = []
proc = IndexProcess(paths, Settings.load(paths), events.append)
proc.call(AddFolder(sys.argv[1])).result(90)
print(proc.pid, flush=True)
sys.stdin.read()  # until killed
"""


def test_the_index_process_closes_the_index_when_the_window_is_killed(
        paths: Paths, settings: Settings, tmp_path: Path) -> None:
    docs = notes(tmp_path / "docs", 40)
    window = subprocess.Popen([sys.executable, "-c", WINDOW, str(docs)], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert window.stdout is not None
        child = int(window.stdout.readline())
        window.send_signal(signal.SIGKILL)
        window.wait(10)
    finally:
        if window.poll() is None:
            window.kill()
        if window.stdin is not None:
            window.stdin.close()
        if window.stdout is not None:
            window.stdout.close()

    def gone() -> bool:
        try:
            return psutil.Process(child).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(gone, timeout=SCAN_S)
    # It finished its batch and closed the index; the next writer carries on.
    with KnowledgeBase(paths, settings, writer=True) as kb:
        check_stopped_cleanly(kb, docs, 40)
