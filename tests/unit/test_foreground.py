"""The answering mark: it appears and goes with the answer, survives (and is
ignored after) a crash, and the indexer's pause ends with the answer, on
cancel, or after the longest pause."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from app.core import foreground
from app.core.foreground import Yielder, answering, live_marks, marks_dir
from app.paths import Paths
from tests.helpers import REPO
from tests.kb_helpers import wait_for


def test_the_mark_lasts_as_long_as_the_answer(paths: Paths) -> None:
    yielder = Yielder(paths)
    assert not yielder.busy()
    with answering(paths):
        assert len(live_marks(paths)) == 1
        assert yielder.busy()
        with answering(paths):  # nested: each holds its own
            assert len(live_marks(paths)) == 2
        assert len(live_marks(paths)) == 1
        assert yielder.busy()
    assert live_marks(paths) == []
    assert not yielder.busy()
    assert list(marks_dir(paths).iterdir()) == []


def test_answers_on_two_threads_hold_two_marks(paths: Paths) -> None:
    inside = threading.Barrier(3)
    leave = threading.Event()

    def answer() -> None:
        with answering(paths):
            inside.wait(10)
            leave.wait(10)

    threads = [threading.Thread(target=answer) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait(10)
    assert len(live_marks(paths)) == 2
    leave.set()
    for t in threads:
        t.join(10)
    assert live_marks(paths) == []


def test_the_mark_of_a_crashed_answer_is_ignored(paths: Paths) -> None:
    # A real process enters an answer and is killed inside it.
    code = ("import os, signal\n"
            "from app.core.foreground import answering\n"
            "from app.paths import get_paths\n"
            "mark = answering(get_paths())\n"
            "mark.__enter__()\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    env = {**os.environ, "HEARTH_HOME": str(paths.data_dir.parent)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    left = list(marks_dir(paths).iterdir())
    assert len(left) == 1
    assert not psutil.pid_exists(_pid_of(left[0]))
    yielder = Yielder(paths, max_pause_s=600)
    assert not yielder.busy()
    assert yielder.wait_for_turn() == 0.0
    assert not left[0].exists()  # cleared on the way


def _pid_of(mark: Path) -> int:
    pid = int(mark.read_text().strip())
    assert mark.name.startswith(f"{pid}-")
    return pid


def test_a_mark_whose_pid_was_reused_or_that_is_too_old_is_ignored(paths: Paths) -> None:
    marks_dir(paths).mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        started = psutil.Process(child.pid).create_time()
        # A mark with the child's pid, written before the child existed.
        reused = marks_dir(paths) / f"{child.pid}-1-1.mark"
        reused.write_text(f"{child.pid}\n")
        os.utime(reused, (started - 60, started - 60))
        # Our own, live pid, but older than any answer lasts.
        old = marks_dir(paths) / f"{os.getpid()}-1-2.mark"
        old.write_text(f"{os.getpid()}\n")
        t = time.time() - foreground.MAX_MARK_AGE_S - 60
        os.utime(old, (t, t))
        assert live_marks(paths) == []
        assert not reused.exists() and not old.exists()
        # The same pid, with the mark written after the process started: live.
        fresh = marks_dir(paths) / f"{child.pid}-1-3.mark"
        fresh.write_text(f"{child.pid}\n")
        assert live_marks(paths) == [fresh.name]
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(30)


def test_the_pause_ends_when_the_answer_does(paths: Paths) -> None:
    yielder = Yielder(paths, max_pause_s=600)
    waited: list[float] = []
    with answering(paths):
        t = threading.Thread(target=lambda: waited.append(yielder.wait_for_turn()))
        t.start()
        wait_for(yielder.pausing.is_set, timeout=10, what="the pause")
    t.join(30)
    assert not t.is_alive()
    assert 0 < waited[0] < 600
    assert not yielder.pausing.is_set()


def test_cancel_ends_the_pause_at_once(paths: Paths) -> None:
    yielder = Yielder(paths, max_pause_s=600)
    cancel = threading.Event()
    waited: list[float] = []
    with answering(paths):
        t = threading.Thread(target=lambda: waited.append(yielder.wait_for_turn(cancel)))
        t.start()
        wait_for(yielder.pausing.is_set, timeout=10, what="the pause")
        cancel.set()
        t.join(30)
        assert not t.is_alive(), "cancel did not end the pause"
        assert yielder.busy()  # the answer is still going on
    assert waited[0] < 600


def test_the_longest_pause_holds(paths: Paths) -> None:
    yielder = Yielder(paths, max_pause_s=0.3)
    with answering(paths):
        waited = yielder.wait_for_turn()
        assert 0.3 <= waited < 60
        # That mark held indexing back long enough: it goes on beside it.
        assert not yielder.busy()
        assert yielder.wait_for_turn() == 0.0
        with answering(paths):  # a new answer is waited for again
            assert yielder.busy()
            assert yielder.wait_for_turn() >= 0.3
