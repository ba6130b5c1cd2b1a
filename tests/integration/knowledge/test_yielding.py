"""The real indexer steps aside while an answer is being generated: it pauses
between pieces of work while the mark exists, goes on when it goes, stops at
once when cancelled, and the watcher's updates pause the same way."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from app.core.foreground import answering
from app.core.knowledge import progress as ev
from app.core.knowledge.base import KnowledgeBase
from app.core.knowledge.watcher import Watcher
from app.paths import Paths
from app.settings import Settings
from tests.integration.knowledge.conftest import check_stopped_cleanly, consistent
from tests.kb_helpers import wait_for


def _write(docs: Path, files: int) -> None:
    for i in range(files):
        paras = [f"Log {i}, entry {j}: the pump at station {i} ran {j * 3 + i} minutes and "
                 f"moved {i * 11 + j} litres before valve {j} closed." for j in range(10)]
        (docs / f"log-{i:03d}.md").write_text(f"# Log {i}\n\n" + "\n\n".join(paras))


def _passages(kb: KnowledgeBase) -> int:
    return int(kb.manifest.query("SELECT COUNT(*) FROM chunks")[0][0])


def _polls_while_paused(kb: KnowledgeBase, polls: int) -> None:
    """Let the paused indexer look at the mark this many more times."""
    yielder = kb.indexer.yielder
    assert yielder is not None
    seen = [0]
    real = yielder.busy

    def counting() -> bool:
        seen[0] += 1
        return real()

    yielder.busy = counting  # type: ignore[method-assign]
    try:
        wait_for(lambda: seen[0] >= polls, timeout=30, what="the paused indexer to poll")
    finally:
        yielder.busy = real  # type: ignore[method-assign]


def test_indexing_pauses_while_an_answer_is_generated(kb: KnowledgeBase, docs: Path,
                                                      paths: Paths) -> None:
    _write(docs, 60)
    folder = kb.add_folder(docs)
    yielder = kb.indexer.yielder
    assert yielder is not None and yielder.paths == paths
    answer = contextlib.ExitStack()
    started = threading.Event()

    def progress(event: ev.ProgressEvent) -> None:
        # An answer starts as soon as the first passages are embedded.
        if isinstance(event, ev.Embedding) and not started.is_set():
            started.set()
            answer.enter_context(answering(paths))

    done: list[ev.Stats] = []
    worker = threading.Thread(target=lambda: done.append(kb.reconcile([folder], progress)))
    worker.start()
    try:
        wait_for(yielder.pausing.is_set, timeout=240, what="the indexer to pause")
        before = _passages(kb)
        _polls_while_paused(kb, 5)
        assert _passages(kb) == before, "the indexer went on while an answer was generated"
        assert worker.is_alive()
        assert before < 60 * 2
        answer.close()  # the answer is done: indexing goes on
        worker.join(600)
    finally:
        answer.close()
        kb.indexer.cancel.set()
        worker.join(600)
    assert not worker.is_alive()
    assert done[0].indexed == 60
    assert _passages(kb) > before
    assert yielder.waited_s > 0
    assert consistent(kb)


def test_cancel_ends_the_pause_and_the_index_closes_cleanly(paths: Paths, settings: Settings,
                                                            docs: Path) -> None:
    _write(docs, 40)
    with KnowledgeBase(paths, settings, writer=True) as kb:
        folder = kb.add_folder(docs)
        yielder = kb.indexer.yielder
        assert yielder is not None
        worker = threading.Thread(target=lambda: kb.reconcile([folder]))
        with answering(paths):
            worker.start()
            wait_for(yielder.pausing.is_set, timeout=60, what="the indexer to pause")
            kb.indexer.cancel.set()
            worker.join(60)
            assert not worker.is_alive(), "cancel did not end the pause"
    with KnowledgeBase(paths, settings, writer=True) as again:
        check_stopped_cleanly(again, docs, 40)


def test_the_watchers_updates_pause_too(kb: KnowledgeBase, docs: Path, paths: Paths) -> None:
    _write(docs, 2)
    kb.add_folder(docs)
    watcher = Watcher(kb, debounce_s=0.05)
    watcher.start()
    try:
        wait_for(watcher.ready.is_set, timeout=120, what="the start-up scan")
        yielder = kb.indexer.yielder
        assert yielder is not None
        with answering(paths):
            (docs / "new.md").write_text("# New\n\nThe lighthouse lamp was replaced in May.")
            wait_for(yielder.pausing.is_set, timeout=60, what="the watcher's update to pause")
            _polls_while_paused(kb, 3)
            assert kb.manifest.file(str(docs / "new.md")) is None
        wait_for(lambda: (rec := kb.manifest.file(str(docs / "new.md"))) is not None
                 and rec.status == "indexed", timeout=60, what="the new file indexed")
    finally:
        watcher.stop()
    assert consistent(kb)
