"""The leftover-thread check counts threads by who started them, not by name."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from tests import thread_leaks


def test_a_leaked_thread_pool_is_reported_whatever_its_name() -> None:
    pool = ThreadPoolExecutor(max_workers=1)  # named "ThreadPoolExecutor-N_0"
    try:
        with thread_leaks.Recorder() as recorder:
            pool.submit(lambda: None).result()
        leftover = recorder.leftover(grace_s=0.2)
        assert [r.thread.name for r in leftover] == [t.name for t in pool._threads]
        assert leftover[0].thread.name.startswith("ThreadPoolExecutor")
        # It says where the thread came from: this test, through submit().
        assert leftover[0].starter == __name__
        assert "test_a_leaked_thread_pool_is_reported" in leftover[0].describe()
    finally:
        pool.shutdown(wait=True)
    assert not recorder.leftover(grace_s=1.0)


def test_a_thread_that_ends_in_time_is_not_a_leak() -> None:
    release = threading.Event()
    with thread_leaks.Recorder() as recorder:
        t = threading.Thread(target=release.wait, name="asyncio_0")
        t.start()
    threading.Timer(0.1, release.set).start()
    assert not recorder.leftover(grace_s=5.0)
    t.join()


def test_threads_started_before_recording_are_not_counted() -> None:
    stop = threading.Event()
    before = threading.Thread(target=stop.wait, name="hearth-before")
    before.start()
    try:
        with thread_leaks.Recorder() as recorder:
            pass
        assert recorder.leftover(grace_s=0) == []
    finally:
        stop.set()
        before.join()


def test_an_allowed_starter_may_leave_its_thread(monkeypatch) -> None:
    monkeypatch.setitem(thread_leaks.ALLOWED_STARTERS, __name__, "this test says so")
    stop = threading.Event()
    with thread_leaks.Recorder() as recorder:
        t = threading.Thread(target=stop.wait)
        t.start()
    try:
        assert recorder.leftover(grace_s=0) == []
        assert thread_leaks.allowed(recorder.started[0]) == "this test says so"
    finally:
        stop.set()
        t.join()
