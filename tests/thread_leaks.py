"""Which threads a test started, and which of them outlive it.

`install()` wraps `threading.Thread.start` for the whole run; while a
`Recorder` is active, every thread started (from any thread) is noted with the
place that started it. Names do not matter: a thread started during a test and
still running after it is a leak, whatever it is called. Native threads that
call into Python (llama.cpp's, Qt's: `threading._DummyThread`, "Dummy-N") are
never started through `Thread.start`, so they are not ours to count.

A few third-party threads are started on first use and live for the process by
design; they are allowed by the module that starts them (ALLOWED_STARTERS),
each with its reason.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType

# Modules whose own code starts a thread that lives for the whole process, by
# design, the first time it is used; module name prefix -> why it may stay.
ALLOWED_STARTERS: dict[str, str] = {
}

# Frames of the machinery that starts threads, skipped to find who asked.
_MACHINERY = ("threading", "concurrent.futures", "tests.thread_leaks")


@dataclass(frozen=True)
class Started:
    thread: threading.Thread
    starter: str  # module of the first frame outside the thread machinery
    where: tuple[str, ...]  # "module:function:line", innermost first (a few frames)

    def describe(self) -> str:
        return f"{self.thread.name!r} started at " + " <- ".join(self.where)


_active: list[Recorder] = []
_original_start = threading.Thread.start


def _site(frame: FrameType | None) -> tuple[str, tuple[str, ...]]:
    starter = ""
    where: list[str] = []
    while frame is not None and len(where) < 6:
        module = frame.f_globals.get("__name__", "?")
        if not module.startswith(_MACHINERY):
            starter = starter or module
            where.append(f"{module}:{frame.f_code.co_name}:{frame.f_lineno}")
        frame = frame.f_back
    return starter, tuple(where)


def _recording_start(self: threading.Thread) -> None:
    if _active:
        starter, where = _site(sys._getframe(1))
        record = Started(self, starter, where)
        for recorder in list(_active):
            recorder.started.append(record)
    _original_start(self)


def install() -> None:
    """Wrap Thread.start (once, for the rest of the process)."""
    if threading.Thread.start is not _recording_start:
        threading.Thread.start = _recording_start  # type: ignore[method-assign]


def allowed(record: Started) -> str | None:
    """Why this thread may outlive the test that started it; None when it may not."""
    for prefix, reason in ALLOWED_STARTERS.items():
        if record.starter == prefix or record.starter.startswith(prefix + "."):
            return reason
    return None


class Recorder:
    """Notes the threads started while it is active (`with Recorder() as r:`)."""

    def __init__(self) -> None:
        self.started: list[Started] = []

    def __enter__(self) -> Recorder:
        install()
        _active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _active.remove(self)  # by identity: a Recorder has no __eq__

    def leftover(self, grace_s: float = 5.0) -> list[Started]:
        """Threads it saw start that are still running after up to `grace_s`
        (threads that are finishing get that long), less the allowed ones."""
        deadline = time.monotonic() + grace_s
        while True:
            alive = [r for r in self.started if r.thread.is_alive() and allowed(r) is None]
            if not alive or time.monotonic() >= deadline:
                return alive
            time.sleep(0.05)
