"""Who has the CPU: while any process of a data folder generates an answer,
background work of every other process (the indexer) steps aside.

An answer leaves one small mark file in the data folder for as long as it is
generated; `Yielder.wait_for_turn` pauses the indexer while a live mark exists.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from app.paths import Paths

log = logging.getLogger(__name__)

# The niceness of the index process (Unix; 0 normal, 19 lowest).
BACKGROUND_NICE = 19
# How often a paused indexer looks whether the answer has finished.
POLL_S = 0.05
# The longest one pause lasts: a mark that never goes (a hung window) slows
# indexing down but never stops it.
MAX_PAUSE_S = 120.0
# A mark older than this is ignored even if its process lives (a hung answer,
# or a pid reused by an unrelated process on a system without start times).
MAX_MARK_AGE_S = 900.0

_seq = itertools.count(1)


def marks_dir(paths: Paths) -> Path:
    return paths.data_dir / "run" / "answering"


@contextlib.contextmanager
def answering(paths: Paths) -> Iterator[None]:
    """Mark, for every process using this data folder, that an answer is
    being generated now. Nested and concurrent uses each hold a mark of their
    own; a mark left by a crash is recognised as stale and ignored."""
    where = marks_dir(paths)
    # Names are unique within the machine, so a nested or parallel answer
    # never removes another's mark.
    mark = where / f"{os.getpid()}-{threading.get_native_id()}-{next(_seq)}.mark"
    try:
        _write_mark(mark)
    except OSError:
        # Without a mark the answer is merely slower while indexing runs.
        log.warning("could not mark an answer in progress in %s", where, exc_info=True)
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            mark.unlink()


def _write_mark(mark: Path) -> None:
    try:
        fd = os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileNotFoundError:
        mark.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
    finally:
        os.close(fd)


def live_marks(paths: Paths) -> list[str]:
    """The names of the marks of answers being generated now; stale marks
    (dead process, pid reused, too old) are removed on the way."""
    try:
        entries = list(os.scandir(marks_dir(paths)))
    except FileNotFoundError:
        return []
    out: list[str] = []
    now = time.time()
    for entry in entries:
        if not entry.name.endswith(".mark"):
            continue
        try:
            made = entry.stat().st_mtime
        except FileNotFoundError:
            continue  # the answer just ended
        if _alive(entry.name, made, now):
            out.append(entry.name)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
    return out


def _pid_of(name: str) -> int:
    try:
        return int(name.split("-", 1)[0])
    except ValueError:
        return -1


def _pid_alive(pid: int) -> bool:
    import psutil

    return pid > 0 and psutil.pid_exists(pid)


def _alive(name: str, made: float, now: float) -> bool:
    if now - made > MAX_MARK_AGE_S:
        return False
    pid = _pid_of(name)
    if not _pid_alive(pid):
        return False
    import psutil

    try:
        # A process started after the mark was written is not the one that
        # wrote it: the pid was reused after a crash.
        started: float = psutil.Process(pid).create_time()
        return started <= made + 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


class Yielder:
    """The indexer's side: `wait_for_turn` between pieces of work pauses
    while an answer is being generated."""

    def __init__(self, paths: Paths, max_pause_s: float = MAX_PAUSE_S,
                 poll_s: float = POLL_S) -> None:
        self.paths = paths
        self.max_pause_s = max_pause_s
        self.poll_s = poll_s
        self.waited_s = 0.0  # all pauses together, for the logs and benchmarks
        self.pausing = threading.Event()  # set while a pause lasts
        self._given_up: set[str] = set()  # marks that already held us back for max_pause_s

    def busy(self) -> bool:
        return any(m not in self._given_up for m in live_marks(self.paths))

    def wait_for_turn(self, cancel: threading.Event | None = None) -> float:
        """Return at once when no answer is being generated; otherwise pause
        until none is, `cancel` is set, or `max_pause_s` has passed. Returns
        the seconds paused."""
        if not self.busy():
            return 0.0
        started = time.monotonic()
        stop = cancel or threading.Event()
        self.pausing.set()
        try:
            self._pause(started, stop)
        finally:
            self.pausing.clear()
        waited = time.monotonic() - started
        self.waited_s += waited
        log.debug("indexing paused %.2f s for an answer", waited)
        return waited

    def _pause(self, started: float, stop: threading.Event) -> None:
        while True:
            waited = time.monotonic() - started
            if waited >= self.max_pause_s:
                # Those marks held indexing back long enough; later answers
                # (new marks) are still waited for.
                stuck = set(live_marks(self.paths))
                self._given_up |= stuck
                log.warning("an answer has been in progress for %.0f s; indexing goes on "
                            "beside it", waited)
                return
            if stop.wait(min(self.poll_s, self.max_pause_s - waited)) or not self.busy():
                return


def lower_priority() -> None:
    """Make this whole process background work for the OS scheduler: while
    it competes with an answer for the cores, the answer gets nearly all of
    them, also in the moments before the indexer notices the mark."""
    try:
        import psutil

        me = psutil.Process()
        if sys.platform == "win32":
            me.nice(psutil.BELOW_NORMAL_PRIORITY_CLASS)
        elif me.nice() < BACKGROUND_NICE:
            me.nice(BACKGROUND_NICE)
    except Exception:  # a sandbox may refuse; indexing then merely competes
        log.warning("could not lower the indexer's priority", exc_info=True)
