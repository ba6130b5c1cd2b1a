"""run_op, the one way the window runs a single call off the GUI thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import shiboken6
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from app.core.errors import HearthError
from app.ui.workers import WorkerSet, run_op


def test_run_op_reports_progress_then_the_result_on_the_gui_thread(qtbot: QtBot) -> None:
    workers = WorkerSet()
    seen: list[tuple[object, bool]] = []
    results: list[str] = []
    gui = threading.current_thread()

    def op(report: Callable[[object], None]) -> str:
        assert threading.current_thread() is not gui
        for done in (1, 2, 3):
            report(done)
        return "copied 3 files"

    worker = run_op(workers, op, results.append, lambda m, d: results.append(m),
                    progress=lambda v: seen.append((v, threading.current_thread() is gui)))
    qtbot.waitUntil(lambda: bool(results), timeout=5_000)
    assert seen == [(1, True), (2, True), (3, True)] and results == ["copied 3 files"]
    assert workers.stop_all() and worker.finished


def test_a_failed_op_is_one_sentence(qtbot: QtBot) -> None:
    workers = WorkerSet()
    failures: list[str] = []

    def op() -> None:
        raise HearthError("The disk is full.")

    run_op(workers, op, lambda _r: None, lambda m, _d: failures.append(m))
    qtbot.waitUntil(lambda: bool(failures), timeout=5_000)
    assert failures == ["The disk is full."]
    workers.stop_all()


def test_an_op_whose_owner_was_deleted_ends_quietly(qtbot: QtBot) -> None:
    workers = WorkerSet()
    owner = QWidget()
    started = threading.Event()

    def op() -> str:
        started.set()
        time.sleep(0.2)
        return "late"

    results: list[str] = []
    worker = run_op(workers, op, results.append, lambda m, _d: results.append(m), owner)
    assert started.wait(5)
    shiboken6.delete(owner)  # the worker, its child, goes with it while the op runs
    assert workers.stop_all()
    qtbot.wait(50)
    assert results == [] and not worker.running


def test_quitting_stops_work_any_owner_left_running(qtbot: QtBot) -> None:
    """The app-wide registry: sets whose owners never stopped them (a window
    left open at quit) are stopped by stop_every_set, so no QThread is
    destroyed while it runs."""
    from app.ui.workers import stop_every_set

    release = threading.Event()
    started = threading.Semaphore(0)

    def op() -> str:
        started.release()
        release.wait(10)
        return "done"

    owners = [WorkerSet(), WorkerSet()]
    workers = [run_op(s, op, lambda _r: None, lambda m, d: None) for s in owners]
    for _ in workers:
        assert started.acquire(timeout=5)
    assert all(len(s) == 1 for s in owners)
    threading.Timer(0.2, release.set).start()  # the op ends when asked to stop, like a real one
    assert stop_every_set(timeout_ms=5_000)
    assert all(w.finished for w in workers) and all(len(s) == 0 for s in owners)
