"""The window's index in a process of its own: it writes the index, follows
the folders and answers searches, while the window only reads small messages
from a pipe.

Why a process: chromadb's Rust bindings hold the GIL for the whole of each
write (the HNSW insert and its SQLite commit take tens of milliseconds, even
for one chunk), so an indexer thread inside the window's process stalls its
event loop however the work is sliced. A child has a GIL of its own, and it
is also the one process that opens Chroma: an embedded Chroma in a second
process would not see the vectors written by the first until reopened.

`IndexProcess` is the window's side: it starts the child, sends it calls
(each returns a future) and passes its events to a callback on a reader
thread. `IndexHost` runs inside the child and does the work. Nothing here
imports Qt."""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.core.errors import HearthError
from app.core.foreground import lower_priority
from app.core.knowledge import progress as ev
from app.logs import log_to_file
from app.paths import Paths
from app.settings import Settings, Value

if TYPE_CHECKING:
    from app.core.knowledge.retriever import Result

log = logging.getLogger(__name__)

# Progress reaches the window at most this often (the last state always does).
PROGRESS_EVERY_S = 0.1
# How long a search may take before the question goes on without passages.
SEARCH_TIMEOUT_S = 60.0
# The calls the child carries out; anything else is refused.
OPS = frozenset({"open", "add_folder", "update_folder", "remove_folder", "set_folder_paused",
                 "reindex", "set_paused", "refresh", "search"})
CRASHED = "The indexer stopped unexpectedly"
SHUTTING_DOWN = "Hearth is shutting down."


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


class Tracker:
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
            # The end of the work always goes out: the window shows "up to
            # date" on it, and a dropped one would leave "Indexing…" standing.
            send = force or not snapshot.busy or now - self._last >= PROGRESS_EVERY_S
            if send:
                self._last = now
        if send:
            self._emit(snapshot)
        if isinstance(event, ev.FolderUnavailable):
            self._problem(f"{event.folder}: {event.reason}")
        elif isinstance(event, ev.Finished):
            self._finished(event.stats)


class IndexCallError(HearthError):
    """A call the index process did not carry out: the sentence, and the
    traceback from over there for the Details button."""

    reason = "index"

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class IndexProcessDied(IndexCallError):
    """The index process ended before it answered."""

    reason = "index_died"


Emit = Callable[..., None]  # emit(kind, *args): an event for the window


class IndexHost:
    """The knowledge base of the index process. Calls run one at a time on
    one thread (searches on another); events go out through `emit`:
    ("state", state, text), ("activity", Activity), ("finished", Stats),
    ("folders", status), ("problem", text), ("retry",) when another process
    writes and opening as the writer should be tried again later."""

    def __init__(self, paths: Paths, settings: Settings, emit: Emit,
                 paused: bool = False) -> None:
        self.paths = paths
        self.settings = settings
        self.emit = emit
        self.paused = paused
        self.stopping = False
        self._kb: Any = None  # KnowledgeBase: the writer, or a reader while another writes
        self._reader: Any = None  # KnowledgeBase for searches (never waits for a write)
        self._reader_lock = threading.Lock()
        self._reader_version = -1  # the manifest's data_version when `_kb` was opened to read
        self._watcher: Any = None
        self.tracker = Tracker(lambda a: self.emit("activity", a), self._on_finished,
                               lambda text: self.emit("problem", text))

    # -- life -----------------------------------------------------------------------

    @property
    def writing(self) -> bool:
        return self._kb is not None and self._kb.writer

    def interrupt(self) -> None:
        """From any thread: stop a long scan at its next file."""
        kb = self._kb
        if kb is not None and kb.writer:
            kb.indexer.cancel.set()

    def close(self) -> None:
        self.stopping = True
        self._stop_watcher()
        if self._kb is not None:
            self._kb.close()
            self._kb = None
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def open(self, force: bool = False) -> None:
        """Open the index as its writer and follow the folders; read only while
        another process writes. Cheap when no folder was ever added."""
        from app.core.knowledge.base import KnowledgeBase, _writer_pid
        from app.core.knowledge.location import has_folders, knowledge_dir
        from app.core.knowledge.store import IndexBusyError

        if self.writing:
            return
        if not force and not has_folders(self.paths):
            self.emit("state", "none", "")
            return
        self.emit("state", "opening", "Index: opening…")
        if self._kb is not None:
            # The reader used while another process wrote goes first: the
            # writer must start from the index as that process left it.
            self._kb.close()
            self._kb = None
        try:
            kb = KnowledgeBase(self.paths, self.settings, writer=True)
        except IndexBusyError:
            self._open_reader()
            pid = _writer_pid(knowledge_dir(self.paths))
            who = f" (pid {pid})" if pid else ""
            self.emit("state", "busy", f"Index: kept up to date by another Hearth "
                      f"process{who}")
            self.emit("retry")
            return
        except Exception as exc:
            log.exception("opening the index failed")
            self.emit("state", "error", f"Index: could not be opened ({exc})")
            raise
        self._kb = kb
        if self.paused:
            self.emit("state", "paused", "Indexing paused")
        elif kb.folders():
            self._start_watcher()
        else:
            self.emit("state", "idle", "Index: no folders yet")

    # -- calls ----------------------------------------------------------------------

    def add_folder(self, path: str, include: Sequence[str] = (), exclude: Sequence[str] = (),
                   local_only: bool = False) -> str:
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

    def update_folder(self, path: str, include: Sequence[str], exclude: Sequence[str],
                      local_only: bool) -> str:
        kb = self._need_kb()
        kb.find_folder(path)
        folder = kb.add_folder(path, include, exclude, local_only)
        return f"Saved the settings of {folder.path}."

    def remove_folder(self, path: str) -> str:
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

    def set_folder_paused(self, path: str, paused: bool) -> str:
        folder = self._need_kb().set_paused(path, paused)
        return f"{'Paused' if paused else 'Resumed'} {folder.path}."

    def reindex(self, path: str) -> str:
        kb = self._need_kb(writer=True)
        if self.paused:
            raise HearthError("Indexing is paused; resume it to re-index.")
        stats = kb.reindex_folder(path, self.tracker)
        return f"Re-read {stats.files_seen:,} files of {path}."

    def refresh(self) -> None:
        """Nothing to do: the folders' state is sent after every call."""

    def set_paused(self, paused: bool) -> None:
        """Pause or resume all indexing (the folders stay in the index)."""
        self.paused = paused
        if paused:
            self._stop_watcher()
            self.emit("state", "paused", "Indexing paused")
        elif self.writing:
            if self._watcher is None:
                self._start_watcher()
        else:
            self.open()

    def search(self, question: str, k: int, folders: Sequence[str] | None,
               path_glob: str | None, mmr: bool, per_file: int = 1) -> list[Result]:
        """On the search thread while this process writes (a reader of its
        own: Chroma in this process sees every write at once, and the search
        never waits for a batch); otherwise on the calls thread, with the
        reader that is reopened whenever another process has written."""
        from app.core.knowledge.base import KnowledgeBase

        if self._kb is None:
            self.open()  # on the calls thread: nothing is open, so this process does not write
        if not self.writing:
            if self._kb is None:
                return []
            if self._kb.manifest.data_version() != self._reader_version:
                self._open_reader()
            return list(self._kb.search(question, k, folders=folders, path_glob=path_glob,
                                        mmr=mmr, per_file=per_file))
        with self._reader_lock:
            if self.stopping:
                return []
            if self._reader is None:
                self._reader = KnowledgeBase(self.paths, self.settings, writer=False)
            return list(self._reader.search(question, k, folders=folders,
                                            path_glob=path_glob, mmr=mmr, per_file=per_file))

    # -- inside ---------------------------------------------------------------------

    def status(self) -> dict[str, Any] | None:
        return self._kb.status(errors=True) if self._kb is not None else None

    def emit_folders(self) -> None:
        try:
            status = self.status()
        except Exception:
            log.exception("reading the index status failed")
            return
        if status is not None:
            self.emit("folders", status)

    def _open_reader(self) -> None:
        """(Re)open the knowledge base for reading while another process
        writes: a fresh one loads what that process has written so far."""
        from app.core.knowledge.base import KnowledgeBase

        if self._kb is not None:
            self._kb.close()
            self._kb = None
        self._kb = KnowledgeBase(self.paths, self.settings, writer=False)
        self._reader_version = self._kb.manifest.data_version()

    def _need_kb(self, writer: bool = False) -> Any:
        if self._kb is None:
            self.open(force=True)
        if self._kb is None:
            raise HearthError("The index could not be opened.")
        if writer and not self._kb.writer:
            raise HearthError("Another Hearth process is updating the index; stop it "
                              "(`hearth index watch`) to do this here.")
        return self._kb

    def _start_watcher(self) -> None:
        from app.core.knowledge.watcher import Watcher, WatchWarning

        def warn(w: WatchWarning) -> None:
            self.emit("problem", f"{w.folder}: {w.message}")

        self._kb.indexer.cancel.clear()
        self._watcher = Watcher(self._kb, self.tracker, on_warning=warn)
        self.emit("state", "indexing", "Index: checking folders…")
        self._watcher.start()

    def _stop_watcher(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    def _on_finished(self, stats: ev.Stats) -> None:
        self.emit_folders()
        if stats.indexed or stats.failed or stats.skipped or stats.removed:
            self.emit("finished", stats)


# -- the child process ------------------------------------------------------------------


def serve(conn: Any, paths: Paths, values: dict[str, Value], paused: bool) -> None:
    """The index process's main: carry out calls from `conn` until "stop" or
    until the window's end of the pipe closes (the window quit or died)."""
    import signal

    # Ctrl+C in a terminal reaches the whole process group; the window decides
    # when the index stops, and tells this process so.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    log_to_file(paths, "index.log")
    # Indexing is background work: the window's answers come first, also in
    # the moment before the indexer sees their mark and pauses (searches,
    # which run here too, are not slowed while the cores are free).
    lower_priority()
    settings = Settings(paths.settings_file, values, [])
    send_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            _send(conn, message)  # False: the window has gone; the loop below ends too

    host = IndexHost(paths, settings, lambda kind, *args: send(("event", kind, args)), paused)
    calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-index")
    searches = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-search")

    def run(call_id: int, name: str, args: tuple[Any, ...]) -> None:
        if host.stopping:
            send(("reply", call_id, False, (SHUTTING_DOWN, "")))
            return
        try:
            value = getattr(host, name)(*args)
        except HearthError as exc:
            send(("reply", call_id, False, (str(exc), traceback.format_exc())))
        except Exception as exc:
            log.exception("index call %s failed", name)
            what = "searched" if name == "search" else "updated"
            send(("reply", call_id, False, (f"The index could not be {what}: {exc}.",
                                            traceback.format_exc())))
        else:
            send(("reply", call_id, True, value))
            if name != "search":
                host.emit_folders()

    try:
        for message in _received(conn):
            if message[0] == "stop":
                break
            _, call_id, name, args = message
            if name not in OPS:
                send(("reply", call_id, False, (f"Unknown index call {name!r}.", "")))
                continue
            if name == "set_paused" and args[0]:
                host.interrupt()  # at once, not after the scan it is meant to stop
            # Searches go beside the calls only while this process writes
            # (see IndexHost.search).
            pool = searches if name == "search" and host.writing else calls
            pool.submit(run, call_id, name, args)
    finally:
        host.stopping = True
        host.interrupt()  # a batch in progress ends first, then the index closes
        calls.submit(host.close)
        calls.shutdown(wait=True)
        searches.shutdown(wait=True)
        conn.close()


def _received(conn: Any) -> Iterator[tuple[Any, ...]]:
    """Messages from a pipe until the other end has gone."""
    while True:
        try:
            yield conn.recv()
        except (EOFError, OSError):
            return


def _send(conn: Any, message: tuple[Any, ...]) -> bool:
    """Send on a pipe; False where the other end has gone."""
    try:
        conn.send(message)
    except (OSError, ValueError):
        return False
    return True


# -- the window's side --------------------------------------------------------------------


class IndexProcess:
    """Starts the index process on the first call and talks to it.

    `on_event(kind, args)` runs on a reader thread for each event of
    `IndexHost`, and with ("exited", sentence, details) when the process ends
    without being asked to (or cannot be started). Calls then fail with one
    sentence; the next call starts a new process (the index repairs itself on
    opening). A process is given the settings as they are when it starts;
    the ones a search depends on (`knowledge.top_k`, `knowledge.mmr`) are
    read here for each search."""

    def __init__(self, paths: Paths, settings: Settings,
                 on_event: Callable[[str, tuple[Any, ...]], None]) -> None:
        self.paths = paths
        self.settings = settings
        self.on_event = on_event
        self.paused = False  # given to each new process
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[Any]] = {}
        self._process: Any = None
        self._conn: Any = None
        self._reader: threading.Thread | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        """Started (or starting) and not ended."""
        return self._process is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def call(self, name: str, *args: Any) -> Future[Any]:
        """Send a call, starting the process if needed; never waits for it."""
        future: Future[Any] = Future()
        with self._lock:
            if self._stopping:
                future.set_exception(IndexCallError(SHUTTING_DOWN))
                return future
            try:
                self._start()
            except Exception as exc:
                log.exception("the index process could not be started")
                future.set_exception(HearthError(f"The indexer could not be started: {exc}."))
                return future
            call_id = next(self._ids)
            self._pending[call_id] = future
            if not _send(self._conn, ("call", call_id, name, args)):
                self._pending.pop(call_id, None)
                future.set_exception(IndexProcessDied(f"{CRASHED}; try again."))
        return future

    def search(self, question: str, k: int | None = None, *,
               folders: Sequence[str] | None = None, path_glob: str | None = None,
               mmr: bool | None = None, per_file: int = 1) -> list[Result]:
        """The knowledge base's search, answered by the index process (the
        assistant calls this on its worker thread)."""
        from app.core.knowledge.location import has_folders

        if not has_folders(self.paths):
            return []
        s = self.settings
        future = self.call("search", question, k or s["knowledge.top_k"],
                           list(folders) if folders is not None else None, path_glob,
                           s["knowledge.mmr"] if mmr is None else mmr, per_file)
        try:
            return list(future.result(timeout=SEARCH_TIMEOUT_S))
        except TimeoutError:
            raise HearthError("The index did not answer in time.") from None

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the process to finish its batch and close the index; wait for it
        (and end it if it does not end in `timeout_s`)."""
        with self._lock:
            self._stopping = True
            process, conn, reader = self._process, self._conn, self._reader
            if conn is not None:
                _send(conn, ("stop",))
        if reader is not None:
            reader.join(timeout_s)  # it ends once the process has
            if reader.is_alive() and process is not None and process.pid is not None:
                log.warning("the index process did not stop in %.0f s; ending it", timeout_s)
                process.kill()
                reader.join(10)

    # -- inside ---------------------------------------------------------------------

    def _start(self) -> None:
        # Holds self._lock. The process itself starts on the reader thread
        # (fork and exec take ~20 ms, too long for the GUI thread); calls sent
        # meanwhile wait in the pipe.
        if self._process is not None:
            return
        import multiprocessing

        # "spawn": a fresh interpreter; forking a process with Qt and
        # llama.cpp threads in it is not safe.
        ctx = multiprocessing.get_context("spawn")
        parent_end, child_end = ctx.Pipe(duplex=True)
        values = {s.key: v for s, v in self.settings.items()}
        process = ctx.Process(target=serve, name="hearth-index",
                              args=(child_end, self.paths, values, self.paused), daemon=True)
        self._process, self._conn = process, parent_end
        self._reader = threading.Thread(target=self._run, args=(process, parent_end, child_end),
                                        name="hearth-index-reader", daemon=True)
        self._reader.start()

    def _run(self, process: Any, conn: Any, child_end: Any) -> None:
        try:
            process.start()
        except Exception as exc:
            log.exception("the index process could not be started")
            child_end.close()
            self._ended(process, conn, f"The indexer could not be started: {exc}.")
            return
        child_end.close()  # so that recv() sees the end when the child exits
        for message in _received(conn):
            if message[0] == "reply":
                _, call_id, ok, payload = message
                with self._lock:
                    future = self._pending.pop(call_id, None)
                if future is None:
                    continue
                if ok:
                    future.set_result(payload)
                else:
                    future.set_exception(IndexCallError(*payload))
            elif message[0] == "event":
                try:
                    self.on_event(message[1], message[2])
                except Exception:
                    log.exception("handling the index event %s failed", message[1])
        process.join(10)
        code = process.exitcode
        how = (f"killed by signal {-code}" if code is not None and code < 0
               else f"exit status {code}")
        self._ended(process, conn, f"{CRASHED}; try again.",
                    f"The index process (pid {process.pid}) ended: {how}. "
                    f"Its log: {self.paths.log_dir / 'index.log'}")

    def _ended(self, process: Any, conn: Any, sentence: str, details: str = "") -> None:
        conn.close()
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
            stopping = self._stopping
            if self._process is process:
                self._process = self._conn = None
                self._reader = None
        for future in pending:
            future.set_exception(IndexCallError(SHUTTING_DOWN) if stopping
                                 else IndexProcessDied(sentence, details))
        if not stopping:
            log.error("the index process ended unexpectedly: %s", details or sentence)
            self.on_event("exited", (sentence, details or sentence))
