"""The window's indexer. While Hearth runs it is the one process that writes
the index: the work happens in a child process (app.core.knowledge.index_server),
which opens the knowledge base as the writer, follows the folders with the
core's watcher, carries out what the folders dialog asks (add, remove,
pause, change patterns, re-index) and answers the assistant's searches.

Nothing here runs on the GUI thread but the signal handlers and the sending
of small messages: progress, results and errors reach widgets through
signals only. When another Hearth process (`hearth index watch`) already
writes, the child reads, records folder changes for that process to pick
up, and takes over when it ends. If the child dies, the window says so and
starts a new one (the index repairs itself on opening)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from app.core.knowledge import protocol as p
from app.core.knowledge.index_client import IndexProcess, IndexProcessDied
from app.paths import Paths
from app.settings import Settings, Value
from app.ui.workers import WorkerSet, run_op

log = logging.getLogger(__name__)

# How often a busy index (another process writes) is tried again.
RETRY_MS = 30_000
# After the index process died: wait this long, then start a new one ...
RESTART_MS = 2_000
# ... unless it died this often within the last RESTART_WINDOW_S.
RESTART_LIMIT = 3
RESTART_WINDOW_S = 600.0


class IndexService(QObject):
    """Starts with `start()`, ends with `stop()` (waits for the work to stop).

    States: see `IndexState`.

    `process.search()` is the knowledge base's search, for the window's
    assistant: it runs in the index process, where the vectors are current."""

    state_changed = Signal(object, str)  # IndexState, a sentence for the status bar
    activity = Signal(object)  # Activity
    finished = Signal(object)  # ev.Stats of a scan that changed something
    folders_changed = Signal(object)  # tuple[FolderStatus, ...]
    problem = Signal(str)  # a folder became unavailable, a watch fell back to polling
    failed = Signal(str, str)  # an operation failed: message, details
    done = Signal(str)  # an operation finished: a sentence saying what happened
    _retry_wanted = Signal()  # from the reader thread: try to become the writer later
    _state_wanted = Signal(object, str)  # from any thread; applied on the GUI thread
    _exited = Signal(str)  # the index process died: details

    def __init__(self, settings: Settings, paths: Paths, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.paths = paths
        self.state = p.IndexState.NONE
        self.paused = False
        self._stopped = False
        self._deaths: list[float] = []
        self.process = IndexProcess(paths, settings, self._on_event)
        self._workers = WorkerSet()
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.setInterval(RETRY_MS)
        self._retry.timeout.connect(self.start)
        self._retry_wanted.connect(self._schedule_retry)
        self._state_wanted.connect(self._apply_state)
        self._exited.connect(self._on_exited)
        self._restart = QTimer(self)
        self._restart.setSingleShot(True)
        self._restart.setInterval(RESTART_MS)
        self._restart.timeout.connect(self.start)
        self.activity.connect(self._on_activity)

    # -- life -----------------------------------------------------------------------

    def start(self) -> None:
        """Open the index and follow the folders, in the index process. Cheap
        when no folder was ever added: no process is started until one is."""
        from app.core.knowledge.location import has_folders

        if self._stopped:
            return
        if self.process.running:
            self._call(p.Open(), report=False)
            return
        paths = self.paths
        # The index's own file is looked at off the GUI thread.
        run_op(self._workers, lambda: has_folders(paths), self._open_if,
               lambda _m, _d: self._open_if(True), self)

    def _open_if(self, any_folder: bool) -> None:
        if self._stopped:
            return
        if not any_folder:
            self._set_state(p.IndexState.NONE, "")
            return
        self._call(p.Open(), report=False)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop indexing (a batch in progress ends first) and close the index."""
        if self._stopped:
            return
        self._stopped = True
        self._retry.stop()
        self._restart.stop()
        self._workers.stop_all()
        self.process.stop(timeout_s)

    # -- what the window asks for ---------------------------------------------------------

    def add_folder(self, path: str, include: Sequence[str] = (), exclude: Sequence[str] = (),
                   local_only: bool = False) -> Future[object]:
        return self._call(p.AddFolder(path, tuple(include), tuple(exclude), local_only))

    def update_folder(self, path: str, include: Sequence[str], exclude: Sequence[str],
                      local_only: bool) -> Future[object]:
        return self._call(p.UpdateFolder(path, tuple(include), tuple(exclude), local_only))

    def remove_folder(self, path: str) -> Future[object]:
        return self._call(p.RemoveFolder(path))

    def set_folder_paused(self, path: str, paused: bool) -> Future[object]:
        return self._call(p.SetFolderPaused(path, paused))

    def reindex(self, path: str) -> Future[object]:
        return self._call(p.Reindex(path))

    def refresh(self) -> Future[object]:
        """Send `folders_changed` with the current state of every folder."""
        return self._call(p.Refresh(), report=False)

    def apply_setting(self, key: str, value: Value) -> None:
        """A setting changed: the running index process uses the new value."""
        future = self.process.apply_settings({key: value})
        if future is not None:
            self._watch(future, report=False)

    def set_paused(self, paused: bool) -> None:
        """Pause or resume all indexing (the folders stay in the index)."""
        if paused == self.paused:
            return
        self.paused = self.process.paused = paused  # a new process starts paused
        if self.process.running:
            self._call(p.SetPaused(paused), report=False)
        elif paused:
            self._set_state(p.IndexState.PAUSED, "Indexing paused")
        else:
            self.start()

    # -- calls and events ---------------------------------------------------------------

    def _call(self, request: p.Request, report: bool = True) -> Future[object]:
        # After stop(): fails, shutting down.
        return self._watch(self.process.call(request), report)

    def _watch(self, future: Future[object], report: bool) -> Future[object]:
        def reached(f: Future[object]) -> None:
            # On the reader thread (or here, if it failed before it was sent).
            exc = f.exception()
            if exc is not None:
                if self._stopped and str(exc) == p.SHUTTING_DOWN:
                    return
                if isinstance(exc, IndexProcessDied) and not report:
                    return  # nothing the user asked for; the death itself is reported
                self.failed.emit(str(exc), getattr(exc, "details", ""))
            elif report and isinstance(f.result(), str):
                self.done.emit(f.result())

        future.add_done_callback(reached)
        return future

    def _on_event(self, event: p.Event) -> None:
        # On the reader thread: only signals from here.
        if isinstance(event, p.StateChanged):
            self._state_wanted.emit(event.state, event.text)
        elif isinstance(event, p.Activity):
            self.activity.emit(event)
        elif isinstance(event, p.FoldersChanged):
            self.folders_changed.emit(event.folders)
        elif isinstance(event, p.RunFinished):
            self.finished.emit(event.stats)
        elif isinstance(event, p.IndexWarning):
            self.problem.emit(event.text)
        elif isinstance(event, p.RetryLater):
            self._retry_wanted.emit()
        elif isinstance(event, p.Exited):
            self._exited.emit(event.details)

    def _schedule_retry(self) -> None:
        if not self._stopped:
            self._retry.start()

    def _set_state(self, state: p.IndexState, text: str) -> None:
        self._state_wanted.emit(state, text)

    def _apply_state(self, state: p.IndexState, text: str) -> None:
        # On the GUI thread, so `state` and what the widgets show always agree.
        self.state = state
        self.state_changed.emit(state, text)

    # -- on the GUI thread -------------------------------------------------------------

    def _on_exited(self, details: str) -> None:
        if self._stopped:
            return
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW_S] + [now]
        if len(self._deaths) > RESTART_LIMIT:
            self._apply_state(p.IndexState.ERROR,
                              "Index: the indexer keeps stopping; see the log")
            self.failed.emit("The indexer keeps stopping unexpectedly, so Hearth no longer "
                             "restarts it; restart Hearth to try again.", details)
            return
        # The status bar says so; it mends itself, so no message box or
        # notification unless it keeps happening.
        self._apply_state(p.IndexState.ERROR,
                          "Index: the indexer stopped unexpectedly; restarting it…")
        self._restart.start()

    def _on_activity(self, activity: p.Activity) -> None:
        if self.paused or self._stopped or self.state in (
                p.IndexState.PAUSED, p.IndexState.BUSY, p.IndexState.ERROR):
            return
        if activity.busy:
            if activity.total:
                text = f"Indexing {activity.done:,}/{activity.total:,}"
                if activity.current:
                    text += f" · {Path(activity.current).name}"
            else:
                text = f"Index: checking {Path(activity.scanning).name or activity.scanning}…"
            self._set_state(p.IndexState.INDEXING, text)
        else:
            self._back_to_idle()

    def _back_to_idle(self) -> None:
        if self.state == p.IndexState.INDEXING and not self._stopped:
            self._set_state(p.IndexState.IDLE, "Index: up to date")
            self.refresh()  # live changes end without a summary: show the new counts
