"""The index process's side: the knowledge base it writes (or reads while
another process writes), the one dispatcher of the window's requests, and
the throttled progress it reports. Nothing here imports Qt.

Why a process: chromadb's Rust bindings hold the GIL for the whole of each
write (the HNSW insert and its SQLite commit take tens of milliseconds, even
for one chunk), so an indexer thread inside the window's process stalls its
event loop however the work is sliced. A child has a GIL of its own, and it
is also the one process that opens Chroma: an embedded Chroma in a second
process would not see the vectors written by the first until reopened."""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, cast

from app.core.errors import HearthError
from app.core.foreground import lower_priority
from app.core.knowledge import progress as ev
from app.core.knowledge import protocol as p
from app.logs import log_to_file
from app.paths import Paths
from app.settings import Key, Settings, SettingsError, Value

if TYPE_CHECKING:
    from app.core.knowledge.base import KnowledgeBase
    from app.core.knowledge.retriever import Result
    from app.core.knowledge.watcher import Watcher

log = logging.getLogger(__name__)

# Progress reaches the window at most this often (the last state always does).
PROGRESS_EVERY_S = 0.1
# Settings read only when the watcher starts, or when the index is opened.
WATCH_SETTINGS = frozenset({Key.KNOWLEDGE_DEBOUNCE_MS, Key.KNOWLEDGE_RECONCILE_MINUTES})
OPEN_SETTINGS = frozenset({Key.KNOWLEDGE_EMBED_THREADS, Key.KNOWLEDGE_CHROMA_MODE,
                           Key.KNOWLEDGE_CHROMA_URL})

Emit = Callable[[p.Event], None]


class Tracker:
    """Turns the core's progress events (on the indexing threads) into
    throttled `Activity` snapshots and end-of-run summaries."""

    def __init__(self, emit: Callable[[p.Activity], None], finished: Callable[[ev.Stats], None],
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
            elif isinstance(event, ev.RunDone):
                force = True
                self._current = self._scanning = ""
            snapshot = p.Activity(min(self._done, self._total), self._total, self._current,
                                  self._failed, self._scanning)
            if isinstance(event, ev.RunDone):
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
        elif isinstance(event, ev.RunDone):
            self._finished(event.stats)


class IndexHost:
    """The knowledge base of the index process: one handle, the writer, or a
    reader while another process writes. Requests run one at a time on one
    thread (searches beside them while this process writes); events go out
    through `emit`."""

    def __init__(self, paths: Paths, settings: Settings, emit: Emit,
                 paused: bool = False) -> None:
        self.paths = paths
        self.settings = settings
        self.emit = emit
        self.paused = paused
        self.stopping = False
        self._kb: KnowledgeBase | None = None
        # Searches on the search thread use the handle while the calls
        # thread may close or switch it.
        self._kb_lock = threading.Lock()
        self._reader_version = -1  # the manifest's data_version when opened to read
        self._watcher: Watcher | None = None
        self.tracker = Tracker(lambda activity: self.emit(activity), self._on_finished,
                               lambda text: self.emit(p.IndexWarning(text)))
        self.handlers: dict[type[p.Request], Callable[..., object]] = {
            p.Open: self.open, p.AddFolder: self.add_folder, p.UpdateFolder: self.update_folder,
            p.RemoveFolder: self.remove_folder, p.SetFolderPaused: self.set_folder_paused,
            p.Reindex: self.reindex, p.Refresh: self.refresh, p.SetPaused: self.set_paused,
            p.Search: self.search, p.EmbedQuestion: self.embed_question,
            p.ApplySettings: self.apply_settings,
        }

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
        with self._kb_lock:
            kb, self._kb = self._kb, None
            if kb is not None:
                kb.close()

    def open(self, request: p.Open | None = None, force: bool = False) -> None:
        """Open the index as its writer and follow the folders; read only while
        another process writes. Cheap when no folder was ever added."""
        from app.core.knowledge.base import writer_pid
        from app.core.knowledge.location import has_folders, knowledge_dir
        from app.core.knowledge.store import IndexBusyError

        if self.writing:
            return
        if not force and not has_folders(self.paths):
            self._state(p.IndexState.NONE, "")
            return
        self._state(p.IndexState.OPENING, "Index: opening…")
        try:
            # The reader used while another process wrote is reopened: the
            # writer must start from the index as that process left it.
            kb = self._switch(writer=True)
        except IndexBusyError:
            self._switch(writer=False)
            pid = writer_pid(knowledge_dir(self.paths))
            who = f" (pid {pid})" if pid else ""
            self._state(p.IndexState.BUSY,
                        f"Index: kept up to date by another Hearth process{who}")
            self.emit(p.RetryLater())
            return
        except Exception as exc:
            log.exception("opening the index failed")
            self._state(p.IndexState.ERROR, f"Index: could not be opened ({exc})")
            raise
        if self.paused:
            self._state(p.IndexState.PAUSED, "Indexing paused")
        elif kb.folders():
            self._start_watcher()
        else:
            self._state(p.IndexState.IDLE, "Index: no folders yet")

    # -- requests -------------------------------------------------------------------

    def add_folder(self, r: p.AddFolder) -> str:
        kb = self._need_kb()
        folder = kb.add_folder(r.path, r.include, r.exclude, r.local_only)
        if kb.writer and self._watcher is None and not self.paused:
            self._start_watcher()
        if not kb.writer:
            return (f"Added {folder.path}; the other Hearth process that updates the index "
                    "will index it.")
        if self.paused:
            return f"Added {folder.path}; it is indexed when indexing is resumed."
        return f"Added {folder.path}; indexing it now."

    def update_folder(self, r: p.UpdateFolder) -> str:
        kb = self._need_kb()
        kb.find_folder(r.path)
        folder = kb.add_folder(r.path, r.include, r.exclude, r.local_only)
        return f"Saved the settings of {folder.path}."

    def remove_folder(self, r: p.RemoveFolder) -> str:
        kb = self._need_kb(writer=True)
        # The watcher may be indexing this very folder: stop it first, so no
        # file of a removed folder is written back.
        running = self._watcher is not None
        self._stop_watcher()
        try:
            chunks = kb.remove_folder(r.path)
        finally:
            if running:
                self._start_watcher()
        return f"Removed {r.path} and its {chunks:,} passages from the index."

    def set_folder_paused(self, r: p.SetFolderPaused) -> str:
        folder = self._need_kb().set_paused(r.path, r.paused)
        return f"{'Paused' if r.paused else 'Resumed'} {folder.path}."

    def reindex(self, r: p.Reindex) -> str:
        kb = self._need_kb(writer=True)
        if self.paused:
            raise HearthError("Indexing is paused; resume it to re-index.")
        stats = kb.reindex_folder(r.path, self.tracker)
        return f"Re-read {stats.files_seen:,} files of {r.path}."

    def refresh(self, r: p.Refresh) -> None:
        """Nothing to do: the folders' state is sent after every call."""

    def set_paused(self, r: p.SetPaused) -> None:
        self.paused = r.paused
        if r.paused:
            self._stop_watcher()
            self._state(p.IndexState.PAUSED, "Indexing paused")
        elif self.writing:
            if self._watcher is None:
                self._start_watcher()
        else:
            self.open()

    def embed_question(self, r: p.EmbedQuestion) -> list[float]:
        from app.core.answer_cache import embed_question
        from app.core.knowledge.base import shared_embedder

        return embed_question(shared_embedder(self.settings.snapshot().knowledge.embed_threads),
                              r.question)

    def search(self, r: p.Search) -> list[Result]:
        """On the search thread while this process writes (Chroma in this
        process sees every write at once, and a search waits for no batch);
        otherwise on the calls thread, with the reader reopened whenever
        another process has written."""
        if self._kb is None:
            self.open()  # on the calls thread: nothing is open, so this process does not write
        kb = self._kb
        if kb is not None and not kb.writer and (
                kb.manifest.data_version() != self._reader_version):
            self._switch(writer=False)
        with self._kb_lock:
            if self.stopping or self._kb is None:
                return []
            return list(self._kb.search(r.question, r.k, folders=r.folders,
                                        path_glob=r.path_glob, mmr=r.mmr,
                                        per_file=r.per_file))

    def take_settings(self, r: p.ApplySettings) -> set[str]:
        """On the receiving thread, so that the requests sent after it see the
        values; the keys whose value changed."""
        changed: set[str] = set()
        for key, value in r.values:
            if key not in p.INDEX_SETTINGS:
                raise SettingsError(f"{key} is not a setting of the index.")
            if self.settings.get(key) != value:
                self.settings.override(key, value)
                changed.add(key)
        return changed

    def apply_settings(self, r: p.ApplySettings) -> None:
        """What the values already taken change in what runs: the watcher reads
        its settings when it starts, the knowledge base when it opens."""
        changed = {key for key, _ in r.values}
        kb = self._kb
        if kb is None:
            return
        if changed & OPEN_SETTINGS:
            self._stop_watcher()
            with self._kb_lock:
                self._kb = None
                kb.close()
            self.open(force=True)
            return
        if Key.KNOWLEDGE_MAX_FILE_MB in changed and kb.writer:
            mb = self.settings.snapshot().knowledge.max_file_mb
            kb.indexer.max_file_bytes = mb * 1024 * 1024
        if changed & WATCH_SETTINGS and self._watcher is not None:
            self._stop_watcher()
            self._start_watcher()

    # -- inside ---------------------------------------------------------------------

    def folders(self) -> tuple[p.FolderStatus, ...] | None:
        kb = self._kb
        if kb is None:
            return None
        return tuple(p.FolderStatus.from_status(f) for f in kb.status(errors=True)["folders"])

    def emit_folders(self) -> None:
        try:
            folders = self.folders()
        except Exception:  # a status is not worth failing the call that came before it
            log.exception("reading the index status failed")
            return
        if folders is not None:
            self.emit(p.FoldersChanged(folders))

    def _state(self, state: p.IndexState, text: str) -> None:
        self.emit(p.StateChanged(state, text))

    def _switch(self, writer: bool) -> KnowledgeBase:
        """Open the one handle as the writer or a reader, reopening it if it is
        open: a fresh open loads what another process has written."""
        from app.core.knowledge.base import KnowledgeBase

        with self._kb_lock:
            kb, self._kb = self._kb, None
            if kb is None:
                kb = KnowledgeBase(self.paths, self.settings, writer=writer)
            else:
                kb.reopen(writer=writer)
            self._kb = kb
            if not writer:
                self._reader_version = kb.manifest.data_version()
            return kb

    def _need_kb(self, writer: bool = False) -> KnowledgeBase:
        if self._kb is None:
            self.open(force=True)
        kb = self._kb
        if kb is None:
            raise HearthError("The index could not be opened.")
        if writer and not kb.writer:
            raise HearthError("Another Hearth process is updating the index; stop it "
                              "(`hearth index watch`) to do this here.")
        return kb

    def _start_watcher(self) -> None:
        from app.core.knowledge.watcher import Watcher, WatchWarning

        def warn(w: WatchWarning) -> None:
            self.emit(p.IndexWarning(f"{w.folder}: {w.message}"))

        kb = self._kb
        assert kb is not None and kb.writer
        kb.indexer.cancel.clear()
        self._watcher = Watcher(kb, self.tracker, on_warning=warn)
        self._state(p.IndexState.INDEXING, "Index: checking folders…")
        self._watcher.start()

    def _stop_watcher(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    def _on_finished(self, stats: ev.Stats) -> None:
        self.emit_folders()
        if stats.indexed or stats.failed or stats.skipped or stats.removed:
            self.emit(p.RunFinished(stats))


# -- the dispatcher -----------------------------------------------------------------------


class Malformed:
    """A message that could not be unpickled (not sent on the pipe)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def received(conn: Connection) -> Iterator[object]:
    """Messages from a pipe until the other end has gone."""
    while True:
        try:
            yield conn.recv()
        except (EOFError, OSError):
            return
        except Exception as exc:  # noqa: BLE001  anything unpickling may raise: the pipe itself is fine
            yield Malformed(exc)


def send_on(conn: Connection, message: object) -> bool:
    """Send on a pipe; False where the other end has gone."""
    try:
        conn.send(message)
    except (OSError, ValueError):
        return False
    return True


class Sender:
    """Messages to the window, from any thread of the index process."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def __call__(self, message: p.Event | p.Reply | p.Hello) -> None:
        with self._lock:
            send_on(self._conn, message)  # False: the window has gone; the loop ends too


def dispatch(conn: Connection, host: IndexHost, send: Sender) -> None:
    """Carry out the requests from `conn` until `Stop` or until the window's
    end of the pipe closes (the window quit or died); then close the index."""
    send(p.Hello(p.PROTOCOL_VERSION, os.getpid()))
    calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-index")
    searches = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hearth-search")

    def run(call_id: int, handler: Callable[[p.Request], object], request: p.Request) -> None:
        if host.stopping:
            send(p.CallFailed(call_id, p.SHUTTING_DOWN))
            return
        try:
            value = handler(request)
        except HearthError as exc:
            send(p.CallFailed(call_id, str(exc), traceback.format_exc()))
        except Exception as exc:  # the sentence for the user; the process carries on
            log.exception("index request %s failed", type(request).__name__)
            what = "searched" if isinstance(request, p.Search) else "updated"
            send(p.CallFailed(call_id, f"The index could not be {what}: {exc}.",
                              traceback.format_exc()))
        else:
            send(p.CallDone(call_id, cast("str | list[Result] | None", value)))
            if not isinstance(request, p.Search | p.EmbedQuestion):
                host.emit_folders()

    try:
        for message in received(conn):
            if isinstance(message, p.Stop):
                break
            if isinstance(message, Malformed):
                log.error("an unreadable message reached the index process: %r", message.error)
                send(p.Rejected(f"The index process could not read a message "
                                f"({message.error})."))
                continue
            if not isinstance(message, p.Call):
                send(p.Rejected(f"The index process does not understand "
                                f"{type(message).__name__} messages."))
                continue
            request = message.request
            handler = host.handlers.get(type(request))
            if handler is None:
                send(p.CallFailed(message.call_id,
                                  f"Unknown index request {type(request).__name__!r}."))
                continue
            if isinstance(request, p.SetPaused) and request.paused:
                host.interrupt()  # at once, not after the scan it is meant to stop
            if isinstance(request, p.ApplySettings):
                try:
                    changed = host.take_settings(request)
                except (SettingsError, TypeError, ValueError) as exc:
                    send(p.CallFailed(message.call_id, str(exc)))
                    continue
                request = p.ApplySettings(tuple(kv for kv in request.values if kv[0] in changed))
            # Searches go beside the calls only while this process writes
            # (see IndexHost.search).
            pool = searches if isinstance(request, p.Search | p.EmbedQuestion) and host.writing \
                else calls
            pool.submit(run, message.call_id, handler, request)
    finally:
        host.stopping = True
        host.interrupt()  # a batch in progress ends first, then the index closes
        calls.submit(host.close)
        calls.shutdown(wait=True)
        searches.shutdown(wait=True)


def serve(conn: Connection, paths: Paths, values: dict[str, Value], paused: bool) -> None:
    """The index process's main."""
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
    send = Sender(conn)
    try:
        dispatch(conn, IndexHost(paths, settings, send, paused), send)
    finally:
        conn.close()
