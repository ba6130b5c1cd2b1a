"""GUI benchmarks: how long the event loop is blocked while an answer
streams (lateness of a 10 ms timer), the same while a folder of real files is
indexed at the same time, and cold start to the first window.
Run with: python -m pytest tests/bench/test_ui_responsiveness.py -s"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import QElapsedTimer, QTimer
from pytestqt.qtbot import QtBot

from app.core.assistant import Assistant
from app.paths import Paths
from app.settings import Settings
from app.ui.main_window import MainWindow
from tests.bench.figures import Record
from tests.helpers import REPO

pytestmark = pytest.mark.bench

TICK_MS = 10
LATENESS_TARGET_MS = 30
COLD_START_TARGET_S = 1.0


def test_event_loop_lateness_while_an_answer_streams(qtbot: QtBot, settings: Settings,
                                                     paths: Paths, record: Record) -> None:
    settings.override("generation.max_tokens", 300)
    # Greedy: the same long answer every run (sampled, it sometimes ended
    # after 30 tokens, too soon to overlap the indexing).
    settings.override("generation.temperature", 0.0)
    window = MainWindow(Assistant(settings, paths))
    qtbot.addWidget(window)
    window.show()
    window.preload_model()
    qtbot.waitUntil(lambda: window.model_state == "ready", timeout=30_000)

    clock, lateness, timer = _lateness_probe()
    window.input.setPlainText("Write a long essay about lighthouses, with a heading, a list "
                              "and a short code example.")
    clock.start()
    timer.start()
    with qtbot.waitSignal(window.answer_finished, timeout=120_000) as done:
        window.send()
    timer.stop()
    window.shutdown()
    finished = done.args[0]
    streamed_s = clock.elapsed() / 1000
    lateness.sort()
    p99 = lateness[int(len(lateness) * 0.99) - 1]
    print(f"\nevent loop while streaming {finished.usage.completion_tokens} tokens "
          f"over {streamed_s:.1f} s ({len(lateness)} ticks): max lateness {lateness[-1]:.0f} ms, "
          f"p99 {p99:.0f} ms, median {statistics.median(lateness):.0f} ms "
          f"(target max <= {LATENESS_TARGET_MS} ms)")
    record("event-loop max stall while an answer streams", lateness[-1], "ms",
           at_most=LATENESS_TARGET_MS * 2, note=f"goal {LATENESS_TARGET_MS} ms, "
           "asserted at twice that")
    assert finished.usage.completion_tokens > 50
    assert lateness[-1] <= LATENESS_TARGET_MS * 2, "the GUI thread was blocked"


def _lateness_probe() -> tuple[QElapsedTimer, list[float], QTimer]:
    clock = QElapsedTimer()
    lateness: list[float] = []
    last = [0]

    def tick() -> None:
        now = clock.elapsed()
        lateness.append(max(0, now - last[0] - TICK_MS))
        last[0] = now

    timer = QTimer()
    timer.setTimerType(timer.timerType().PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    return clock, lateness, timer


def test_event_loop_lateness_while_streaming_and_indexing(
        qtbot: QtBot, settings: Settings, paths: Paths, tmp_path: Path,
        record: Record) -> None:
    """The whole app: its indexer reads 600 real files (chunking, embedding,
    Chroma, SQLite, in the index process) while an answer streams. Chroma's
    writes hold the GIL for 30-45 ms each on a loaded 2-core machine, which is
    why they happen in a process of their own."""
    from app.ui.app import HearthApp
    from tests.bench.corpus import copy_corpus

    folder = tmp_path / "corpus"
    copy_corpus(folder, 600)
    settings.override("generation.max_tokens", 300)
    # Greedy: the same long answer every run (sampled, it sometimes ended
    # after 30 tokens, too soon to overlap the indexing).
    settings.override("generation.temperature", 0.0)
    settings.override("ui.quick_ask_shortcut", "")
    hearth = HearthApp(settings, paths)
    window = hearth.window
    try:
        hearth.start()
        qtbot.waitUntil(lambda: window.model_state == "ready", timeout=30_000)
        window.files_button.setChecked(False)  # the question is not about the files
        clock, lateness, timer = _lateness_probe()
        overlap: list[float] = []  # lateness while both ran
        indexing = [False]
        hearth.index.state_changed.connect(
            lambda state, _t: indexing.__setitem__(0, state == "indexing"))
        window.input.setPlainText("Write a long essay about lighthouses, with a heading, "
                                  "a list and a short code example.")
        clock.start()
        timer.start()
        hearth.index.add_folder(str(folder))
        qtbot.waitUntil(lambda: indexing[0], timeout=30_000)
        mark = len(lateness)
        with qtbot.waitSignal(window.answer_finished, timeout=180_000) as done:
            window.send()
        overlap = lateness[mark:]
        still_indexing = indexing[0]
        with qtbot.waitSignal(hearth.index.finished, timeout=600_000):
            pass
        timer.stop()
        total_s = clock.elapsed() / 1000
        pid = hearth.index.process.pid
        assert pid is not None and pid != os.getpid()
        window_mb = psutil.Process().memory_info().rss / 2**20
        index_mb = psutil.Process(pid).memory_info().rss / 2**20
    finally:
        hearth.quit()
        window.close()
        window.deleteLater()
        hearth.quick.deleteLater()
    finished = done.args[0]
    ordered = sorted(lateness)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(f"\nevent loop while indexing 600 real files ({total_s:.1f} s) and, meanwhile, "
          f"streaming {finished.usage.completion_tokens} tokens: max lateness "
          f"{max(overlap):.0f} ms while both ran, {ordered[-1]:.0f} ms over the whole scan; "
          f"p99 {p99:.0f} ms, median {statistics.median(ordered):.0f} ms "
          f"(target max <= {LATENESS_TARGET_MS} ms; indexing still running when the answer "
          f"ended: {still_indexing}); memory: window process {window_mb:.0f} MB (model "
          f"loaded), index process {index_mb:.0f} MB")
    goal = f"goal {LATENESS_TARGET_MS} ms, asserted at twice that"
    record("event-loop max stall while an answer streams and the index runs", max(overlap),
           "ms", at_most=LATENESS_TARGET_MS * 2, note=goal)
    record("event-loop max stall over the whole index of 600 files", ordered[-1], "ms",
           at_most=LATENESS_TARGET_MS * 2, note=goal)
    assert finished.usage.completion_tokens > 50
    assert max(overlap) <= LATENESS_TARGET_MS * 2, "the GUI thread was blocked"
    assert ordered[-1] <= LATENESS_TARGET_MS * 2, "the GUI thread was blocked"


CHILD = """
import sys
from PySide6.QtCore import QTimer
import app.ui.app as ui

start = ui.HearthApp.start

def instrumented(self):
    start(self)
    QTimer.singleShot(0, lambda: (print("shown", flush=True), self.quit()))

ui.HearthApp.start = instrumented
sys.exit(ui.run())
"""


def test_cold_start_to_first_window(record: Record) -> None:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CHILD], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        runs.append(time.perf_counter() - started)
        proc.communicate(timeout=60)
        assert line.strip() == "shown" and proc.returncode == 0
    record("cold start to first window, best of 3", min(runs), "s",
           at_most=COLD_START_TARGET_S * 2, note=f"median {statistics.median(runs):.2f} s; "
           f"goal {COLD_START_TARGET_S} s, asserted at twice that")
    print(f"\ncold start to first window shown (process start included): "
          f"best {min(runs):.2f} s, median {statistics.median(runs):.2f} s "
          f"(target <= {COLD_START_TARGET_S} s)")
    assert min(runs) <= COLD_START_TARGET_S * 2
