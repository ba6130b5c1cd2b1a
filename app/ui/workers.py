"""Background work for the window: a core iterator runs on a QThread and each
item it yields reaches widgets through a signal. Errors always arrive as a
signal too, never vanish.

Who owns what: `run_op` is the one way to run a single call off the GUI
thread (a file, SQLite, the keyring, a model load) and `GeneratorWorker` the
way to run a stream (an answer). No part of the window starts threads of its
own. Each long-lived owner keeps one `WorkerSet` and stops it when it ends:
the main window (its parts share the window's set), the index service, the
model service, quick-ask, and each dialog for as long as it is open. Every
set is registered app-wide, and quitting stops whatever is left in any of
them (`stop_every_set`)."""

from __future__ import annotations

import logging
import traceback
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, overload

from PySide6.QtCore import QObject, QThread, Signal

from app.core.errors import HearthError
from app.core.llm.provider import CancelToken
from app.settings import SettingsError

log = logging.getLogger(__name__)


class _Runner(QThread):
    def __init__(self, body: Callable[[], None]) -> None:
        super().__init__()
        self._body = body
        self.setObjectName("hearth-worker")

    def run(self) -> None:
        self._body()


class GeneratorWorker(QObject):
    """Runs `work(cancel)` (an iterator) off the GUI thread.

    `item` fires for each yielded value, `failed(message, details)` if it
    raises, and `done` always, last. `stop()` asks it to stop: the cancel
    token is set, and the core stops at its next check.

    The worker object itself stays in the thread that created it (the GUI
    thread); only `_Runner.run` executes in the background. Signals emitted
    from there are therefore queued to the GUI thread for every receiver,
    lambdas included (a lambda connected to an object that lives in another
    thread would run in that thread).
    """

    item = Signal(object)
    failed = Signal(str, str)
    done = Signal()
    progress = Signal(object)  # what a `run_op` with `progress` reports on the way

    def __init__(self, work: Callable[[CancelToken], Iterator[Any]],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._work = work
        self.cancel = CancelToken()
        self._thread = _Runner(self._iterate)
        self._active = False

    def start(self) -> None:
        self._active = True
        self._thread.start()

    def stop(self) -> None:
        self.cancel.cancel()

    def wait(self, ms: int = 10_000) -> bool:
        return self._thread.wait(ms)

    @property
    def running(self) -> bool:
        """True from `start()` until the work has ended (`done` is on its way)."""
        return self._active

    @property
    def finished(self) -> bool:
        return self._thread.isFinished()

    def _iterate(self) -> None:
        try:
            try:
                for value in self._work(self.cancel):
                    self.item.emit(value)
            except (HearthError, SettingsError) as exc:  # a sentence for the user already
                self.failed.emit(str(exc), traceback.format_exc())
            except RuntimeError as exc:
                if _deleted(exc):
                    raise
                log.exception("background work failed")
                self.failed.emit(f"Something went wrong: {exc}.", traceback.format_exc())
            except Exception as exc:
                log.exception("background work failed")
                self.failed.emit(f"Something went wrong: {exc}.", traceback.format_exc())
            finally:
                self._active = False
                self.done.emit()
        except RuntimeError as exc:
            # The widget that owned this worker was deleted while it ran (a
            # dialog closed without done()): nobody is left to tell.
            if not _deleted(exc):
                raise
            log.debug("a worker ended after its owner was deleted")


def _deleted(exc: RuntimeError) -> bool:
    """PySide's error for a signal whose QObject is gone."""
    return "Signal source has been deleted" in str(exc)


def call_in_background(fn: Callable[[], Any], parent: QObject | None = None) -> GeneratorWorker:
    """A worker for a single blocking call; its result arrives as one `item`."""

    def once(_cancel: CancelToken) -> Iterator[Any]:
        yield fn()

    return GeneratorWorker(once, parent)


T = TypeVar("T")


Report = Callable[[object], None]


@overload
def run_op(workers: WorkerSet, op: Callable[[], T], success: Callable[[T], object],
           failure: Callable[[str, str], object], parent: QObject | None = None, *,
           progress: None = None) -> GeneratorWorker: ...


@overload
def run_op(workers: WorkerSet, op: Callable[[Report], T], success: Callable[[T], object],
           failure: Callable[[str, str], object], parent: QObject | None = None, *,
           progress: Callable[[Any], object]) -> GeneratorWorker: ...


def run_op(workers: WorkerSet, op: Callable[..., T], success: Callable[[T], object],
           failure: Callable[[str, str], object], parent: QObject | None = None, *,
           progress: Callable[[Any], object] | None = None) -> GeneratorWorker:
    """Background work in Anki's CollectionOp/QueryOp style: `op` runs off the
    GUI thread (it must not touch widgets); `success(result)` or
    `failure(message, details)` then runs on it. With `progress`, `op` is
    called with a `report(value)` function and each value reaches
    `progress(value)` on the GUI thread. `workers` owns the worker until it
    has ended."""
    if progress is None:
        worker = call_in_background(op, parent)
    else:
        def once(_cancel: CancelToken) -> Iterator[Any]:
            yield op(worker.progress.emit)

        worker = GeneratorWorker(once, parent)
        worker.progress.connect(progress)
    worker.item.connect(success)
    worker.failed.connect(failure)
    return workers.start(worker)


class WorkerSet:
    """Keeps workers alive until their thread has ended (a QThread destroyed
    while running aborts the process) and stops them all on shutdown.

    Every set is also known to the app-wide registry, so that quitting stops
    whatever an owner left running (`stop_every_set`)."""

    def __init__(self) -> None:
        self._workers: list[GeneratorWorker] = []
        _EVERY_SET.add(self)

    def start(self, worker: GeneratorWorker) -> GeneratorWorker:
        self._workers = [w for w in self._workers if not w.finished]
        self._workers.append(worker)
        worker.start()
        return worker

    def stop_all(self, timeout_ms: int = 15_000) -> bool:
        for worker in self._workers:
            worker.stop()
        ok = all(worker.wait(timeout_ms) for worker in self._workers)
        self._workers = [w for w in self._workers if not w.finished]
        return ok

    def __len__(self) -> int:
        return sum(1 for w in self._workers if not w.finished)


# Every WorkerSet alive (held weakly: a set goes with its owner).
_EVERY_SET: weakref.WeakSet[WorkerSet] = weakref.WeakSet()


def stop_every_set(timeout_ms: int = 15_000) -> bool:
    """At quit, after each owner has stopped its own work: stop what is left
    in any set (a window that was not closed, a part that forgot), so that no
    QThread is destroyed while it runs. True when every worker ended."""
    return all([workers.stop_all(timeout_ms) for workers in list(_EVERY_SET)])
