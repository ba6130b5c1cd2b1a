"""Background work for the window: a core iterator runs on a QThread and each
item it yields reaches widgets through a signal. Errors always arrive as a
signal too, never vanish."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.core.errors import HearthError
from app.core.llm.provider import CancelToken

log = logging.getLogger(__name__)


class GeneratorWorker(QObject):
    """Runs `work(cancel)` (an iterator) off the GUI thread.

    `item` fires for each yielded value, `failed(message, details)` if it
    raises, and `done` always, last. `stop()` asks it to stop: the cancel
    token is set, and the core stops at its next check.
    """

    item = Signal(object)
    failed = Signal(str, str)
    done = Signal()

    def __init__(self, work: Callable[[CancelToken], Iterator[Any]]) -> None:
        super().__init__()
        self._work = work
        self.cancel = CancelToken()
        self._thread = QThread()
        self._thread.setObjectName("hearth-worker")
        self.moveToThread(self._thread)
        self._thread.started.connect(self._run)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.cancel.cancel()

    def wait(self, ms: int = 10_000) -> bool:
        return self._thread.wait(ms)

    @property
    def running(self) -> bool:
        return self._thread.isRunning()

    @Slot()
    def _run(self) -> None:
        try:
            for value in self._work(self.cancel):
                self.item.emit(value)
        except HearthError as exc:
            self.failed.emit(str(exc), traceback.format_exc())
        except Exception as exc:
            log.exception("background work failed")
            self.failed.emit(f"Something went wrong: {exc}", traceback.format_exc())
        finally:
            self.done.emit()
            self._thread.quit()


def call_in_background(fn: Callable[[], Any]) -> GeneratorWorker:
    """A worker for a single blocking call; its result arrives as one `item`."""

    def once(_cancel: CancelToken) -> Iterator[Any]:
        yield fn()

    return GeneratorWorker(once)
