"""Hidden checks of the window, for installs and bundles (packaging/check_bundle.sh):

`hearth --self-test-window FOLDER` opens the main window, adds FOLDER through
the window's index process, waits until the process has indexed it, searches
it there, prints one line and quits with 0; on a failure or after the time
limit it prints one sentence on stderr and quits with 1.

`hearth --startup-time` prints the seconds from the start of the process to
the main window's first paint, then quits.

Both keep their own single-instance socket, so that a Hearth already running
for the same user is neither asked nor disturbed. Not listed in `--help`."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer

from app.core.knowledge.protocol import FolderStatus, IndexState
from app.exit_codes import EXIT_FAIL, EXIT_NO_DISPLAY, EXIT_OK, EXIT_USAGE
from app.ui.app import HearthApp
from app.ui.workers import WorkerSet, run_op

# Text files a search can be made from (what the first one starts with).
TEXT_SUFFIXES = (".txt", ".md", ".rst")


def process_started_at() -> float:
    """When this process started (seconds since the epoch, to the kernel's clock tick)."""
    import psutil

    return float(psutil.Process(os.getpid()).create_time())


class FirstPaint(QObject):
    """Seconds from the start of the process to the window's first paint."""

    def __init__(self, hearth: HearthApp, started_at: float, then: Any) -> None:
        super().__init__(hearth)
        self.started_at = started_at
        self.seconds: float | None = None
        self._then = then
        hearth.window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and self.seconds is None:
            self.seconds = time.time() - self.started_at
            watched.removeEventFilter(self)
            QTimer.singleShot(0, self, self._then)
        return False


class WindowSelfTest(QObject):
    """Drives one self-test run; `code` is its exit status once the window quit."""

    def __init__(self, hearth: HearthApp, folder: Path, timeout_s: float,
                 started_at: float) -> None:
        super().__init__(hearth)
        self.hearth = hearth
        self.folder = folder
        self.code = EXIT_FAIL
        self.paint = FirstPaint(hearth, started_at, self._add_folder)
        self._added_at = 0.0
        self._searching = False
        self._done = False
        self._workers = WorkerSet()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(lambda: self._fail(
            f"the window did not finish indexing {folder} within {timeout_s:g} s."))
        self._timer.start(int(timeout_s * 1000))
        index = hearth.index
        index.failed.connect(lambda message, _details: self._fail(message))
        index.finished.connect(lambda _stats: index.refresh())
        index.state_changed.connect(self._on_state)
        index.folders_changed.connect(self._on_folders)
        hearth.quitting.connect(self._stop)

    def _add_folder(self) -> None:
        if self._done:
            return
        self._added_at = time.monotonic()
        self.hearth.index.add_folder(str(self.folder))

    def _on_state(self, state: IndexState, text: str) -> None:
        if state == IndexState.ERROR:
            self._fail(f"the index process reported an error: {text or 'no details'}.")
        elif state == IndexState.IDLE and self._added_at:
            self.hearth.index.refresh()

    def _on_folders(self, folders: tuple[FolderStatus, ...]) -> None:
        mine = next((f for f in folders if Path(f.path) == self.folder), None)
        if self._done or self._searching or mine is None:
            return
        if mine.error:
            self._fail(f"the index cannot read {self.folder}: {mine.error}")
        elif mine.indexed and not mine.pending:
            self._searching = True
            process = self.hearth.index.process
            folder = self.folder
            run_op(self._workers, lambda: _search_own_file(process, folder),
                   self._on_found, lambda message, _details: self._fail(message), self)

    def _on_found(self, found: tuple[str, str | None, str]) -> None:
        query, hit, child = found
        if hit is None:
            self._fail(f"the index process indexed {self.folder} but a search for "
                       f"{query!r} found none of its files.")
            return
        shown = self.paint.seconds or 0.0
        print(f"self-test: window shown in {shown:.2f} s; the index process ({child}) indexed "
              f"{self.folder} in {time.monotonic() - self._added_at:.1f} s; "
              f"searching {query!r} found {hit}", flush=True)
        self._finish(EXIT_OK)

    def _fail(self, sentence: str) -> None:
        if self._done:
            return
        print(f"hearth self-test failed: {sentence}", file=sys.stderr, flush=True)
        self._finish(EXIT_FAIL)

    def _finish(self, code: int) -> None:
        self._done = True
        self.code = code
        self._timer.stop()
        QTimer.singleShot(0, self.hearth, self.hearth.quit)

    def _stop(self) -> None:
        self._timer.stop()
        self._workers.stop_all()


def _search_own_file(process: Any, folder: Path) -> tuple[str, str | None, str]:
    """Off the GUI thread: search for the first words of the folder's first text
    file; the path of the first result inside the folder, if any, and which
    program the index process runs (pid and executable)."""
    import psutil

    pid = process.pid
    try:
        child = f"pid {pid}, {psutil.Process(pid).exe()}" if pid else "not running"
    except psutil.Error:
        child = f"pid {pid}"
    texts = sorted(p for p in folder.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES
                   and p.is_file())
    if not texts:
        raise ValueError(f"{folder} has no text file (.txt, .md, .rst) to search for.")
    words = texts[0].read_text(encoding="utf-8", errors="replace").split()
    query = " ".join(words[:8]) or texts[0].stem
    for result in process.search(query, 5):
        path = str(getattr(result, "path", ""))
        if Path(path).is_relative_to(folder):
            return query, path, child
    return query, None, child


def _can_show() -> bool:
    from app.ui.launch import NO_DISPLAY_MESSAGE, has_display

    if has_display():
        return True
    print(NO_DISPLAY_MESSAGE, file=sys.stderr)
    return False


def _own_server_name() -> str:
    from app.ui.single_instance import server_name

    return f"{server_name()}-check-{os.getpid()}"


def self_test_window(folder: str, timeout_s: float) -> int:
    started_at = process_started_at()
    path = Path(folder).expanduser().absolute().resolve()
    if not path.is_dir():
        print(f"hearth: --self-test-window needs a folder; {path} is not one.", file=sys.stderr)
        return EXIT_USAGE
    if not _can_show():
        return EXIT_NO_DISPLAY
    from app.ui.app import run

    tests: list[WindowSelfTest] = []
    code = run(setup=lambda hearth: tests.append(
        WindowSelfTest(hearth, path, timeout_s, started_at)), server_name=_own_server_name())
    return max(code, tests[0].code if tests else EXIT_FAIL)


def startup_time() -> int:
    started_at = process_started_at()
    if not _can_show():
        return EXIT_NO_DISPLAY
    from app.ui.app import run

    paints: list[FirstPaint] = []

    def setup(hearth: HearthApp) -> None:
        paints.append(FirstPaint(hearth, started_at, hearth.quit))

    code = run(setup=setup, server_name=_own_server_name())
    seconds = paints[0].seconds if paints else None
    if seconds is None:
        print("hearth: the window quit before it was shown.", file=sys.stderr)
        return EXIT_FAIL
    print(f"startup: first window in {seconds:.3f} s", flush=True)
    return code
