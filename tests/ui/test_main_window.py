"""The window on the real model (pytest-qt, offscreen)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from app.core.assistant import Assistant
from app.core.events import Finished
from app.paths import Paths
from app.settings import Settings
from app.ui.main_window import MainWindow

pytestmark = pytest.mark.slow


@pytest.fixture
def window(qtbot: QtBot, settings: Settings, paths: Paths) -> Iterator[MainWindow]:
    settings.override("generation.max_tokens", 24)
    w = MainWindow(Assistant(settings, paths))
    qtbot.addWidget(w)
    w.show()
    yield w
    w.shutdown()


def test_answer_streams_into_the_view_and_gets_a_badge(qtbot: QtBot, window: MainWindow) -> None:
    window.input.setPlainText("Say hello.")
    deltas: list[object] = []
    with qtbot.waitSignal(window.answer_finished, timeout=60_000) as done:
        window.send_button.click()
        qtbot.waitUntil(lambda: window.busy, timeout=5_000)
        window._worker.item.connect(deltas.append)
    finished = done.args[0]
    assert isinstance(finished, Finished) and finished.answer
    text = window.transcript.toPlainText()
    assert "Say hello." in text
    assert finished.answer.strip()[:20] in text
    assert f"Local · {finished.model}" in text
    assert window.conversation_id == finished.conversation_id
    qtbot.waitUntil(lambda: window.send_button.isEnabled(), timeout=5_000)
    assert window.input.toPlainText() == ""


def test_stop_ends_generation_within_a_second(qtbot: QtBot, window: MainWindow,
                                             settings: Settings) -> None:
    settings.override("generation.max_tokens", 2000)
    settings.override("generation.temperature", 1.0)
    window.input.setPlainText("Write a very long story about a lighthouse.")
    window.send_button.click()
    qtbot.waitUntil(lambda: len(window.transcript.toPlainText()) > 120, timeout=60_000)
    assert window.stop_button.isEnabled()
    with qtbot.waitSignal(window.answer_finished, timeout=1_000) as done:
        qtbot.keyClick(window, "\x1b")  # Esc
    assert done.args[0].finish_reason == "cancelled"
    qtbot.waitUntil(lambda: not window.busy, timeout=1_000)
    assert "stopped" in window.transcript.toPlainText()


def test_enter_sends_and_shift_enter_adds_a_line(qtbot: QtBot, window: MainWindow) -> None:
    from PySide6.QtCore import Qt

    qtbot.keyClicks(window.input, "line one")
    qtbot.keyClick(window.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(window.input, "line two")
    assert window.input.toPlainText() == "line one\nline two"
    with qtbot.waitSignal(window.answer_finished, timeout=60_000):
        qtbot.keyClick(window.input, Qt.Key.Key_Return)
    assert "line one" in window.transcript.toPlainText()


def test_a_model_that_fails_to_load_is_shown(qtbot: QtBot, settings: Settings, paths: Paths,
                                            tmp_path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all")
    settings.override("model.path", str(bad))
    w = MainWindow(Assistant(settings, paths))
    qtbot.addWidget(w)
    w.preload_model()
    qtbot.waitUntil(lambda: "not a GGUF model file" in w.model_status.text(), timeout=10_000)
    w.input.setPlainText("hello?")
    with qtbot.waitSignal(w.answer_failed, timeout=10_000) as failed:
        w.send()
    assert "not a GGUF model file" in failed.args[0]
    assert "not a GGUF model file" in w.transcript.toPlainText()
    w.shutdown()
