"""The index process's protocol end to end: every request through the real
dispatcher over a real pipe (real Chroma, ONNX and watchdog on temp folders),
unreadable and unknown messages answered with one sentence, a window and an
index process of different versions refusing each other, and a settings
change reaching the running child."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from app.core.errors import HearthError
from app.core.knowledge import progress as ev
from app.core.knowledge import protocol as p
from app.core.knowledge.index_client import IndexProcess, version_mismatch
from app.core.knowledge.index_server import IndexHost, Sender, dispatch
from app.paths import Paths
from app.settings import Settings
from tests.integration.knowledge.test_index_process import SCAN_S, Events, notes
from tests.kb_helpers import wait_for

pytestmark = pytest.mark.slow


class Window:
    """The window's end of a pipe to a dispatcher running on a thread here:
    the messages as the child would get them (pickled), without a spawn."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.replies: dict[int, p.Reply] = {}
        self.other: queue.Queue[object] = queue.Queue()
        self._ids = 0

    def read(self, timeout: float) -> object:
        if not self.conn.poll(timeout):
            raise AssertionError(f"the dispatcher said nothing in {timeout} s")
        return self.conn.recv()

    def wait(self, call_id: int, timeout: float = SCAN_S) -> p.Reply:
        while call_id not in self.replies:
            m = self.read(timeout)
            if isinstance(m, p.CallDone | p.CallFailed):
                self.replies[m.call_id] = m
            else:
                self.other.put(m)
        return self.replies.pop(call_id)

    def call(self, request: object, timeout: float = SCAN_S) -> p.Reply:
        self._ids += 1
        self.conn.send(p.Call(self._ids, request))  # type: ignore[arg-type]
        return self.wait(self._ids, timeout)

    def next_other(self, timeout: float = SCAN_S) -> object:
        """The next message that is not a call's answer."""
        while self.other.empty():
            m = self.read(timeout)
            if isinstance(m, p.CallDone | p.CallFailed):
                self.replies[m.call_id] = m
            else:
                self.other.put(m)
        return self.other.get()

    def events(self) -> list[object]:
        out = []
        while not self.other.empty():
            out.append(self.other.get())
        while self.conn.poll(0):
            out.append(self.conn.recv())
        return out


@pytest.fixture
def window(paths: Paths, settings: Settings) -> Iterator[Window]:
    window_end, server_end = Pipe(duplex=True)
    before = set(threading.enumerate())
    send = Sender(server_end)
    host = IndexHost(paths, settings, send)
    server = threading.Thread(target=dispatch, args=(server_end, host, send),
                              name="test-dispatcher")
    server.start()
    w = Window(window_end)
    hello = w.read(10)
    assert hello == p.Hello(p.PROTOCOL_VERSION, hello.pid)  # type: ignore[attr-defined]
    yield w
    window_end.send(p.Stop())
    server.join(SCAN_S)
    assert not server.is_alive()
    window_end.close()
    server_end.close()
    # The dispatcher's pools, the watcher, the observers and the knowledge
    # base's search threads have all ended: every thread started since, by
    # identity, not by name.
    def started() -> list[str]:
        return [t.name for t in threading.enumerate()
                if t not in before and t.is_alive()]

    wait_for(lambda: not started(), timeout=10, what="the index server's threads to end")


def done(reply: p.Reply) -> object:
    assert isinstance(reply, p.CallDone), reply
    return reply.value


def test_every_request_goes_through_the_real_dispatcher(window: Window, tmp_path: Path) -> None:
    docs = notes(tmp_path / "docs", 3)
    (docs / "scratch.txt").write_text("The lamp budget scratch pad.\n")
    assert done(window.call(p.Open())) is None
    assert window.next_other() == p.StateChanged(p.IndexState.NONE, "")
    assert done(window.call(p.AddFolder(str(docs)))) == f"Added {docs}; indexing it now."
    finished = next(m for m in iter(window.next_other, None) if isinstance(m, p.RunFinished))
    assert finished.stats.indexed == 4

    hits = done(window.call(p.Search("lamp budget meeting", 10)))
    assert isinstance(hits, list) and len(hits) == 4
    # The answer cache's question vector comes from the same embedder.
    vector = done(window.call(p.EmbedQuestion("What is the lamp budget?")))
    assert isinstance(vector, list) and len(vector) == 384
    assert abs(sum(x * x for x in vector) - 1.0) < 1e-3
    assert done(window.call(p.UpdateFolder(str(docs), (), ("*.txt",), False))) == (
        f"Saved the settings of {docs}.")
    reread = done(window.call(p.Reindex(str(docs))))
    assert isinstance(reread, str) and reread.endswith(f" files of {docs}.")
    hits = done(window.call(p.Search("lamp budget meeting", 10, folders=(str(docs),))))
    assert isinstance(hits, list) and sorted(Path(h.path).name for h in hits) == [
        "note-0.md", "note-1.md", "note-2.md"]
    assert done(window.call(p.SetFolderPaused(str(docs), True))) == f"Paused {docs}."
    assert done(window.call(p.SetFolderPaused(str(docs), False))) == f"Resumed {docs}."
    assert done(window.call(p.SetPaused(True))) is None
    assert done(window.call(p.SetPaused(False))) is None
    assert done(window.call(p.ApplySettings.of({"knowledge.debounce_ms": 100}))) is None
    assert done(window.call(p.Refresh())) is None
    seen = window.events()
    folders = [m for m in seen if isinstance(m, p.FoldersChanged)][-1].folders
    assert folders[0].path == str(docs) and folders[0].exclude == ("*.txt",)
    assert folders[0].indexed == 3 and not folders[0].paused
    states = [m.state for m in seen if isinstance(m, p.StateChanged)]
    assert p.IndexState.PAUSED in states and states[-1] == p.IndexState.INDEXING
    assert any(isinstance(m, p.Activity) for m in seen)
    removed = done(window.call(p.RemoveFolder(str(docs))))
    assert isinstance(removed, str) and removed.startswith(f"Removed {docs} and its ")


def test_unreadable_unknown_and_malformed_messages_get_one_sentence(
        window: Window, tmp_path: Path) -> None:
    window.conn.send_bytes(b"this is not a pickle")
    rejected = window.next_other(10)
    assert isinstance(rejected, p.Rejected)
    assert rejected.message.startswith("The index process could not read a message (")
    window.conn.send(("call", 1, "add_folder", ()))  # the shape before the protocol
    assert window.next_other(10) == p.Rejected(
        "The index process does not understand tuple messages.")
    assert window.call(ev.Stats()) == p.CallFailed(1, "Unknown index request 'Stats'.")
    unknown_key = window.call(p.ApplySettings.of({"ui.theme": "dark"}))
    assert unknown_key == p.CallFailed(2, "ui.theme is not a setting of the index.")
    bad_value = window.call(p.ApplySettings.of({"knowledge.top_k": "many"}))
    assert isinstance(bad_value, p.CallFailed) and "knowledge.top_k" in bad_value.message
    not_a_folder = window.call(p.AddFolder(str(tmp_path / "nowhere")))
    assert isinstance(not_a_folder, p.CallFailed)
    assert not_a_folder.message == f"{tmp_path / 'nowhere'} is not a folder."
    assert "Traceback" in not_a_folder.details
    # The same dispatcher still does real work.
    docs = notes(tmp_path / "docs", 2)
    assert done(window.call(p.AddFolder(str(docs)))) == f"Added {docs}; indexing it now."


def test_a_window_and_an_index_process_of_different_versions_refuse_each_other(
        paths: Paths, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # The child is spawned from the code on disk (version PROTOCOL_VERSION);
    # this window says it speaks another, as after an upgrade while it ran.
    ours = p.PROTOCOL_VERSION
    monkeypatch.setattr(p, "PROTOCOL_VERSION", ours + 1)
    events = Events()
    proc = IndexProcess(paths, settings, events)
    try:
        with pytest.raises(HearthError) as refused:
            proc.call(p.Refresh()).result(SCAN_S)
        sentence = version_mismatch(ours)
        assert str(refused.value) == sentence
        assert sentence == (f"The indexer belongs to another version of Hearth (protocol "
                            f"{ours}, this window speaks {ours + 1}); restart Hearth.")
        assert events.next(p.Exited) == p.Exited(sentence, sentence)
        # No second process is started to be refused again.
        with pytest.raises(HearthError, match=r"^The indexer belongs to another version"):
            proc.call(p.Refresh()).result(5)
        assert not proc.running
    finally:
        proc.stop()


def test_a_settings_change_reaches_the_running_index_process(
        paths: Paths, settings: Settings, tmp_path: Path) -> None:
    docs = notes(tmp_path / "docs", 5)
    events = Events()
    proc = IndexProcess(paths, settings, events)
    try:
        proc.call(p.AddFolder(str(docs))).result(SCAN_S)
        assert events.next(p.RunFinished).stats.indexed == 5
        # No k: the index process's own knowledge.top_k decides (6 by default).
        assert len(proc.search("lamp budget meeting")) == 5
        pid = proc.pid
        applied = proc.apply_settings({"knowledge.top_k": 2})
        assert applied is not None and applied.result(SCAN_S) is None
        assert len(proc.search("lamp budget meeting")) == 2
        assert proc.pid == pid

        # Files larger than knowledge.max_file_mb are left out from now on.
        applied = proc.apply_settings({"knowledge.max_file_mb": 1})
        assert applied is not None and applied.result(SCAN_S) is None
        (docs / "big.md").write_text("# Big\n\n" + "lamp " * 300_000)

        def left_out() -> tuple[p.FileProblem, ...]:
            # A live change ends without a summary: ask for the folders.
            proc.call(p.Refresh()).result(SCAN_S)
            latest = events.latest(p.FoldersChanged)
            return latest.folders[0].problems if latest is not None else ()

        problem = wait_for(left_out, timeout=SCAN_S, what="the big file to be left out")[0]
        assert problem.path == str(docs / "big.md") and "knowledge.max_file_mb" in problem.reason
    finally:
        proc.stop()
    # Nothing is sent to a process that does not run.
    assert proc.apply_settings({"knowledge.top_k": 3}) is None
