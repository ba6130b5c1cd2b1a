"""The window's indexer. While Hearth runs it is the one process that writes
the index: it opens the knowledge base as the writer, follows the folders
with the core's watcher, and carries out what the folders dialog asks (add,
remove, pause, change patterns, re-index) on one background thread.

Nothing here runs on the GUI thread but the signal handlers: progress,
results and errors reach widgets through signals only. When another Hearth
process (`hearth index watch`) already writes, this one reads, records
folder changes for that process to pick up, and takes over when it ends."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.core.errors import HearthError
from app.core.knowledge import progress as ev
from app.paths import Paths
from app.settings import Settings

log = logging.getLogger(__name__)

# How often a busy index (another process writes) is tried again.
RETRY_MS = 30_000
# Progress reaches the window at most this often (the last state always does).
PROGRESS_EVERY_S = 0.1


@dataclass(frozen=True)
class Activity:
    """What the indexer is doing, for the status bar."""

    done: int  # files finished in this run
    total: int  # files this run knows it has to read
    current: str  # the file being read ("" between files)
    failed: int  # files that could not be read in this run
    scanning: str = ""  # the folder being compared with the index, if any

    @property
    def busy(self) -> bool:
        return bool(self.scanning or self.current) or self.done < self.total


class _Tracker:
    """Turns the core's progress events (on the indexing threads) into
    throttled `Activity` snapshots and end-of-run summaries."""

    def __init__(self, emit: Callable[[Activity], None], finished: Callable[[ev.Stats], None],
                 problem: Callable[[str], None]) -> None:
        self._emit = emit
        self._finished = finished
        self._problem = problem
        self._lock = threading.Lock()
        self._done = self._total = self._failed = 0
        self._current = ""
        self._scanning = ""
        self._last = 0.0

    def __call__(self, event: ev.ProgressEvent) -> None:
        force = False
        with self._lock:
            if isinstance(event, ev.Scanning):
                self._scanning = event.folder
            elif isinstance(event, ev.Scanned):
                self._scanning = ""
                self._total += event.changed
            elif isinstance(event, ev.FileStarted):
                self._current = event.path
                if self._done >= self._total:  # a live change, not part of a scan
                    self._total = self._done + 1
            elif isinstance(event, ev.FileDone):
                self._done += 1
                self._current = ""
            elif isinstance(event, ev.FileFailed):
                self._done += 1
                self._failed += 1
                self._current = ""
            elif isinstance(event, ev.Finished):
                force = True
                self._current = self._scanning = ""
            snapshot = Activity(min(self._done, self._total), self._total, self._current,
                                self._failed, self._scanning)
            if isinstance(event, ev.Finished):
                self._done = self._total = self._failed = 0
            now = time.monotonic()
            send = force or now - self._last >= PROGRESS_EVERY_S
            if send:
                self._last = now
        if send:
            self._emit(snapshot)
        if isinstance(event, ev.FolderUnavailable):
            self._problem(f"{event.folder}: {event.reason}")
        elif isinstance(event, ev.Finished):
            self._finished(event.stats)


class IndexService(QObject):
    """Starts with `start()`, ends with `stop()` (waits for the work to stop).

    States: "none" (no folders yet), "opening", "idle", "indexing", "paused"
    (indexing paused by the user), "busy" (another process writes), "error".
    """

    state_changed = Signal(str, str)  # state, a sentence for the status bar
    activity = Signal(object)  # Activity
    finished = Signal(object)  # ev.Stats of a scan that changed something
    folders_changed = Signal(object)  # KnowledgeBase.status(errors=True)
    problem = Signal(str)  # a folder became unavailable, a watch fell back to polling
    failed = Signal(str, str)  # an operation failed: message, details
    done = Signal(str)  # an operation finished: a sentence saying what happened
    _retry_wanted = Signal()  # from the worker: try to become the writer later
    _state_wanted = Signal(str, str)  # from any thread; applied on the GUI thread

    def __init__(self, settings: Settings, paths: Paths, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.paths = paths
        self.state = "none"
        self.paused = False
        self._kb: Any = None  # KnowledgeBase, opened on the worker thread
        self._watcher: Any = None
        self._stopped = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-index")
        self._tracker = _Tracker(self.activity.emit, self._on_finished, self.problem.emit)
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.setInterval(RETRY_MS)
        self._retry.timeout.connect(self.start)
        self._retry_wanted.connect(self._schedule_retry)
        self._state_wanted.connect(self._apply_state)
        self.activity.connect(self._on_activity)
        self._settle = QTimer(self)  # back to "idle" once live changes stop coming
        self._settle.setSingleShot(True)
        self._settle.setInterval(1500)
        self._settle.timeout.connect(self._back_to_idle)

    # -- life -----------------------------------------------------------------------

    def start(self) -> None:
        """Open the index and follow the folders, in the background. Cheap when
        no folder was ever added: nothing is opened until one is."""
        self._submit(self._open, report=False)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop indexing (a batch in progress ends first) and close the index."""
        if self._stopped:
            return
        self._stopped = True
        self._retry.stop()
        self._settle.stop()
        kb = self._kb
        if kb is not None and kb.writer:
            kb.indexer.cancel.set()  # the worker may be mid-reindex: stop at the next file
        # Queued operations see `_stopped` and do nothing; then the index closes.
        self._pool.submit(self._close)
        self._pool.shutdown(wait=True)

    def _close(self) -> None:
        self._stop_watcher()
        if self._kb is not None:
            self._kb.close()
            self._kb = None

    # -- what the window asks for ---------------------------------------------------------

    def add_folder(self, path: str, include: Sequence[str] = (), exclude: Sequence[str] = (),
                   local_only: bool = False) -> Future[Any]:
        def add() -> str:
            kb = self._need_kb()
            folder = kb.add_folder(path, include, exclude, local_only)
            if kb.writer and self._watcher is None and not self.paused:
                self._start_watcher()
            if not kb.writer:
                return (f"Added {folder.path}; the other Hearth process that updates the index "
                        "will index it.")
            if self.paused:
                return f"Added {folder.path}; it is indexed when indexing is resumed."
            return f"Added {folder.path}; indexing it now."

        return self._submit(add)

    def update_folder(self, path: str, include: Sequence[str], exclude: Sequence[str],
                      local_only: bool) -> Future[Any]:
        def update() -> str:
            kb = self._need_kb()
            kb.find_folder(path)
            folder = kb.add_folder(path, include, exclude, local_only)
            return f"Saved the settings of {folder.path}."

        return self._submit(update)

    def remove_folder(self, path: str) -> Future[Any]:
        def remove() -> str:
            kb = self._need_kb(writer=True)
            # The watcher may be indexing this very folder: stop it first, so no
            # file of a removed folder is written back.
            running = self._watcher is not None
            self._stop_watcher()
            try:
                chunks = kb.remove_folder(path)
            finally:
                if running:
                    self._start_watcher()
            return f"Removed {path} and its {chunks:,} passages from the index."

        return self._submit(remove)

    def set_folder_paused(self, path: str, paused: bool) -> Future[Any]:
        def pause() -> str:
            folder = self._need_kb().set_paused(path, paused)
            return f"{'Paused' if paused else 'Resumed'} {folder.path}."

        return self._submit(pause)

    def reindex(self, path: str) -> Future[Any]:
        def reindex() -> str:
            kb = self._need_kb(writer=True)
            if self.paused:
                raise HearthError("Indexing is paused; resume it to re-index.")
            stats = kb.reindex_folder(path, self._tracker)
            return f"Re-read {stats.files_seen:,} files of {path}."

        return self._submit(reindex)

    def refresh(self) -> Future[Any]:
        """Send `folders_changed` with the current state of every folder."""
        return self._submit(lambda: None)

    def set_paused(self, paused: bool) -> None:
        """Pause or resume all indexing (the folders stay in the index)."""
        if paused == self.paused:
            return
        self.paused = paused

        def apply() -> None:
            if paused:
                self._stop_watcher()
                self._set_state("paused", "Indexing paused")
            elif self._kb is not None and self._kb.writer:
                self._start_watcher()
            else:
                self._open()

        if paused and self._kb is not None and self._kb.writer:
            self._kb.indexer.cancel.set()  # stop a long scan at its next file
        self._submit(apply, report=False)

    # -- on the worker thread ---------------------------------------------------------

    def _submit(self, fn: Callable[[], Any], report: bool = True) -> Future[Any]:
        if self._stopped:
            future: Future[Any] = Future()
            future.set_exception(HearthError("Hearth is shutting down."))
            return future

        def run() -> Any:
            if self._stopped:
                return None
            try:
                result = fn()
            except HearthError as exc:
                self.failed.emit(str(exc), traceback.format_exc())
                raise
            except Exception as exc:
                log.exception("index operation failed")
                self.failed.emit(f"The index could not be updated: {exc}.",
                                 traceback.format_exc())
                raise
            if report and isinstance(result, str):
                self.done.emit(result)
            self._emit_folders()
            return result

        return self._pool.submit(run)

    def _need_kb(self, writer: bool = False) -> Any:
        if self._kb is None:
            self._open(force=True)
        if self._kb is None:
            raise HearthError("The index could not be opened.")
        if writer and not self._kb.writer:
            raise HearthError("Another Hearth process is updating the index; stop it "
                              "(`hearth index watch`) to do this here.")
        return self._kb

    def _open(self, force: bool = False) -> None:
        from app.core.knowledge.base import KnowledgeBase, _writer_pid, has_folders
        from app.core.knowledge.store import IndexBusyError

        if self._kb is not None and self._kb.writer:
            return
        if not force and not has_folders(self.paths):
            self._set_state("none", "")
            return
        self._set_state("opening", "Index: opening…")
        try:
            kb = KnowledgeBase(self.paths, self.settings, writer=True)
        except IndexBusyError:
            if self._kb is None:
                self._kb = KnowledgeBase(self.paths, self.settings, writer=False)
            pid = _writer_pid(self._kb.dir)
            who = f" (pid {pid})" if pid else ""
            self._set_state("busy", f"Index: kept up to date by another Hearth process{who}")
            self._retry_wanted.emit()
            return
        except Exception as exc:
            log.exception("opening the index failed")
            self._set_state("error", f"Index: could not be opened ({exc})")
            raise
        if self._kb is not None:
            self._kb.close()  # the reader used while another process wrote
        self._kb = kb
        if self.paused:
            self._set_state("paused", "Indexing paused")
        elif kb.folders():
            self._start_watcher()
        else:
            self._set_state("idle", "Index: no folders yet")
        self._emit_folders()

    def _schedule_retry(self) -> None:
        if not self._stopped:
            self._retry.start()

    def _start_watcher(self) -> None:
        from app.core.knowledge.watcher import Watcher, WatchWarning

        def warn(w: WatchWarning) -> None:
            self.problem.emit(f"{w.folder}: {w.message}")

        self._kb.indexer.cancel.clear()
        self._watcher = Watcher(self._kb, self._tracker, on_warning=warn)
        self._set_state("indexing", "Index: checking folders…")
        self._watcher.start()

    def _stop_watcher(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    def _emit_folders(self) -> None:
        if self._kb is not None:
            try:
                self.folders_changed.emit(self._kb.status(errors=True))
            except Exception:
                log.exception("reading the index status failed")

    def _on_finished(self, stats: ev.Stats) -> None:
        self._emit_folders()
        if stats.indexed or stats.failed or stats.skipped or stats.removed:
            self.finished.emit(stats)

    def _set_state(self, state: str, text: str) -> None:
        self._state_wanted.emit(state, text)

    def _apply_state(self, state: str, text: str) -> None:
        # On the GUI thread, so `state` and what the widgets show always agree.
        self.state = state
        self.state_changed.emit(state, text)

    # -- on the GUI thread -------------------------------------------------------------

    def _on_activity(self, activity: Activity) -> None:
        if self.paused or self.state in ("paused", "busy", "error") or self._stopped:
            return
        if activity.busy:
            if activity.total:
                text = f"Indexing {activity.done:,}/{activity.total:,}"
                if activity.current:
                    text += f" · {Path(activity.current).name}"
            else:
                text = f"Index: checking {Path(activity.scanning).name or activity.scanning}…"
            self._set_state("indexing", text)
            self._settle.start()
        else:
            self._back_to_idle()

    def _back_to_idle(self) -> None:
        if self.state == "indexing" and not self._stopped:
            self._set_state("idle", "Index: up to date")
            self.refresh()  # live changes end without a summary: show the new counts
