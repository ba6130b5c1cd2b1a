"""The window's side of its index process: starts the child, sends it
requests (each returns a future) and passes its events to a callback on a
reader thread. Nothing here imports Qt."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

from app.core.errors import HearthError
from app.core.knowledge import protocol as p
from app.core.knowledge.index_server import received, send_on, serve
from app.paths import Paths
from app.settings import Settings, Value

if TYPE_CHECKING:
    from app.core.knowledge.retriever import Result

log = logging.getLogger(__name__)

# How long a search may take before the question goes on without passages.
SEARCH_TIMEOUT_S = 60.0
CRASHED = "The indexer stopped unexpectedly"


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


def version_mismatch(theirs: object) -> str:
    return (f"The indexer belongs to another version of Hearth (protocol {theirs}, this window "
            f"speaks {p.PROTOCOL_VERSION}); restart Hearth.")


class IndexProcess:
    """Starts the index process on the first call and talks to it.

    `on_event(event)` runs on a reader thread for each event of the index
    process, and with `Exited` when the process ends without being asked to
    (or cannot be started, or speaks another protocol version). Calls then
    fail with one sentence; the next call starts a new process (the index
    repairs itself on opening), unless the versions differ. A process is
    given the settings as they are when it starts, and `apply_settings`
    sends it the ones that change later."""

    def __init__(self, paths: Paths, settings: Settings,
                 on_event: Callable[[p.Event], None]) -> None:
        self.paths = paths
        self.settings = settings
        self.on_event = on_event
        self.paused = False  # given to each new process
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[object]] = {}
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._reader: threading.Thread | None = None
        self._stopping = False
        self._refused = ""  # the sentence of a version mismatch: no new process is started

    @property
    def running(self) -> bool:
        """Started (or starting) and not ended."""
        return self._process is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def call(self, request: p.Request) -> Future[object]:
        """Send a request, starting the process if needed; never waits for it."""
        future: Future[object] = Future()
        with self._lock:
            if self._stopping:
                future.set_exception(IndexCallError(p.SHUTTING_DOWN))
                return future
            if self._refused:
                future.set_exception(IndexCallError(self._refused))
                return future
            try:
                conn = self._start()
            except Exception as exc:  # whatever spawning raises, the sentence says it
                log.exception("the index process could not be started")
                future.set_exception(HearthError(f"The indexer could not be started: {exc}."))
                return future
            call_id = next(self._ids)
            self._pending[call_id] = future
            if not send_on(conn, p.Call(call_id, request)):
                self._pending.pop(call_id, None)
                future.set_exception(IndexProcessDied(f"{CRASHED}; try again."))
        return future

    def apply_settings(self, values: Mapping[str, Value]) -> Future[object] | None:
        """Send changed settings to a running process (a process started later
        reads them anyway); None where none runs."""
        values = {k: v for k, v in values.items() if k in p.INDEX_SETTINGS}
        if not values or not self.running:
            return None
        return self.call(p.ApplySettings.of(values))

    def search(self, question: str, k: int | None = None, *,
               folders: Sequence[str] | None = None, path_glob: str | None = None,
               mmr: bool | None = None, per_file: int = 1) -> list[Result]:
        """The knowledge base's search, answered by the index process (the
        assistant calls this on its worker thread)."""
        from app.core.knowledge.location import has_folders

        if not has_folders(self.paths):
            return []
        future = self.call(p.Search(question, k,
                                    tuple(folders) if folders is not None else None,
                                    path_glob, mmr, per_file))
        try:
            value = future.result(timeout=SEARCH_TIMEOUT_S)
        except TimeoutError:
            raise HearthError("The index did not answer in time.") from None
        return list(value) if isinstance(value, list) else []

    def embed_question(self, question: str) -> list[float]:
        """A question's vector for the answer cache, made by the index process."""
        future = self.call(p.EmbedQuestion(question))
        try:
            value = future.result(timeout=SEARCH_TIMEOUT_S)
        except TimeoutError:
            raise HearthError("The index did not answer in time.") from None
        return list(value) if isinstance(value, list) else []

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the process to finish its batch and close the index; wait for it
        (and end it if it does not end in `timeout_s`)."""
        with self._lock:
            self._stopping = True
            process, conn, reader = self._process, self._conn, self._reader
            if conn is not None:
                send_on(conn, p.Stop())
        if reader is not None:
            reader.join(timeout_s)  # it ends once the process has
            if reader.is_alive() and process is not None and process.pid is not None:
                log.warning("the index process did not stop in %.0f s; ending it", timeout_s)
                process.kill()
                reader.join(10)

    # -- inside ---------------------------------------------------------------------

    def _start(self) -> Connection:
        # Holds self._lock. The process itself starts on the reader thread
        # (fork and exec take ~20 ms, too long for the GUI thread); calls sent
        # meanwhile wait in the pipe.
        if self._conn is not None:
            return self._conn
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
        return parent_end

    def _run(self, process: BaseProcess, conn: Connection, child_end: Connection) -> None:
        try:
            process.start()
        except Exception as exc:  # whatever spawning raises, the sentence says it
            log.exception("the index process could not be started")
            child_end.close()
            self._ended(process, conn, f"The indexer could not be started: {exc}.")
            return
        child_end.close()  # so that recv() sees the end when the child exits
        messages = received(conn)
        hello = next(messages, None)  # None: the child ended before it said anything
        if hello is not None and not (isinstance(hello, p.Hello)
                                      and hello.version == p.PROTOCOL_VERSION):
            theirs = hello.version if isinstance(hello, p.Hello) else "unknown"
            self._refuse(process, conn, version_mismatch(theirs))
            return
        for message in messages:
            self._take(message)
        process.join(10)
        code = process.exitcode
        how = (f"killed by signal {-code}" if code is not None and code < 0
               else f"exit status {code}")
        self._ended(process, conn, f"{CRASHED}; try again.",
                    f"The index process (pid {process.pid}) ended: {how}. "
                    f"Its log: {self.paths.log_dir / 'index.log'}")

    def _take(self, message: object) -> None:
        if isinstance(message, p.CallDone | p.CallFailed):
            with self._lock:
                future = self._pending.pop(message.call_id, None)
            if future is None:
                return
            if isinstance(message, p.CallDone):
                future.set_result(message.value)
            else:
                future.set_exception(IndexCallError(message.message, message.details))
        elif isinstance(message, p.Rejected):
            log.error("the index process refused a message: %s", message.message)
        elif isinstance(message, p.Event):
            try:
                self.on_event(message)
            except Exception:  # a broken handler must not end the reader
                log.exception("handling the index event %s failed", type(message).__name__)
        else:
            log.error("the index process sent %r, which is not an event", message)

    def _refuse(self, process: BaseProcess, conn: Connection, sentence: str) -> None:
        """The child speaks another protocol: stop it and start no other."""
        log.error(sentence)
        with self._lock:
            self._refused = sentence
        send_on(conn, p.Stop())
        process.join(30)
        if process.is_alive():
            process.kill()
            process.join(10)
        self._ended(process, conn, sentence, sentence)

    def _ended(self, process: BaseProcess, conn: Connection, sentence: str,
               details: str = "") -> None:
        conn.close()
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
            stopping = self._stopping
            if self._process is process:
                self._process = self._conn = None
                self._reader = None
            refused = self._refused
        for future in pending:
            future.set_exception(IndexCallError(p.SHUTTING_DOWN) if stopping
                                 else IndexCallError(refused) if refused
                                 else IndexProcessDied(sentence, details))
        if not stopping:
            log.error("the index process ended unexpectedly: %s", details or sentence)
            self.on_event(p.Exited(sentence, details or sentence))
