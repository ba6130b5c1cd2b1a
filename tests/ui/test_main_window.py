"""The main window on the real model (pytest-qt, offscreen)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from app.core.assistant import MAX_QUESTION_CHARS, Assistant
from app.core.events import Delta, Finished
from app.paths import Paths
from app.settings import Settings
from app.ui.main_window import MainWindow

pytestmark = pytest.mark.slow


def ask(qtbot: QtBot, window: MainWindow, question: str) -> Finished:
    window.input.setPlainText(question)
    with qtbot.waitSignal(window.answer_finished, timeout=60_000) as done:
        window.send_button.click()
    qtbot.waitUntil(lambda: window.send_button.isEnabled(), timeout=5_000)
    finished = done.args[0]
    assert isinstance(finished, Finished)
    return finished


def test_answer_streams_into_the_view_and_gets_a_badge(qtbot: QtBot, window: MainWindow) -> None:
    window.input.setPlainText("Say hello.")
    deltas: list[str] = []
    with qtbot.waitSignal(window.answer_finished, timeout=60_000) as done:
        window.send_button.click()
        assert window.busy and window._worker is not None
        window._worker.item.connect(
            lambda e: deltas.append(e.text) if isinstance(e, Delta) else None)
    finished = done.args[0]
    assert finished.answer.strip()
    assert len(deltas) > 1, "the answer arrived in one piece instead of streaming"
    assert "".join(deltas) == finished.answer
    text = window.chat.transcript()
    assert "Say hello." in text
    assert finished.answer.strip()[:12] in text
    answer = window.chat.last("assistant")
    assert answer is not None and answer.badge.isVisible()
    assert answer.badge.text().startswith(f"Local · {finished.model}")
    assert "tok/s" in answer.badge.text()
    assert window.conversation_id == finished.conversation_id
    assert window.conversations.ids() == [finished.conversation_id]
    qtbot.waitUntil(lambda: window.send_button.isEnabled(), timeout=5_000)
    assert window.input.toPlainText() == ""
    # the badge opens the answer's details
    answer.badge.click()
    assert window._details is not None and window._details.isVisible()
    details = window._details.view.toPlainText()
    assert "Time to first token" in details and "Tokens" in details
    assert "answered" in details  # the route attempt
    window._details.close()


def test_stop_ends_generation_within_a_second(qtbot: QtBot, window: MainWindow,
                                             settings: Settings) -> None:
    settings.override("generation.max_tokens", 2000)
    settings.override("generation.temperature", 1.0)
    window.input.setPlainText("Write a very long story about a lighthouse.")
    window.send_button.click()
    qtbot.waitUntil(lambda: len(window.chat.last("assistant").text) > 80,  # type: ignore[union-attr]
                    timeout=60_000)
    assert window.stop_button.isEnabled()
    with qtbot.waitSignal(window.answer_finished, timeout=1_000) as done:
        qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert done.args[0].finish_reason == "cancelled"
    qtbot.waitUntil(lambda: not window.busy, timeout=1_000)
    assert "stopped" in window.chat.last("assistant").badge.text()  # type: ignore[union-attr]


def test_enter_sends_and_shift_enter_adds_a_line(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.keyClicks(window.input, "line one")
    qtbot.keyClick(window.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(window.input, "line two")
    assert window.input.toPlainText() == "line one\nline two"
    with qtbot.waitSignal(window.answer_finished, timeout=60_000):
        qtbot.keyClick(window.input, Qt.Key.Key_Return)
    assert "line one\nline two" in window.chat.transcript()


def test_regenerate_replaces_the_last_answer(qtbot: QtBot, window: MainWindow) -> None:
    first = ask(qtbot, window, "Name a colour.")
    answer = window.chat.last("assistant")
    assert answer is not None and answer.regenerate_button.isVisible()
    with qtbot.waitSignal(window.answer_finished, timeout=60_000) as done:
        answer.regenerate_button.click()
    qtbot.waitUntil(lambda: window.send_button.isEnabled(), timeout=5_000)
    assert done.args[0].conversation_id == first.conversation_id
    roles = [m.role for m in window.chat.messages]
    assert roles == ["user", "assistant"]
    stored = window.assistant.store.messages(first.conversation_id)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "Name a colour."), ("assistant", done.args[0].answer)]


def test_edit_and_resend_the_last_question(qtbot: QtBot, window: MainWindow) -> None:
    first = ask(qtbot, window, "What is two plus two?")
    user = window.chat.last("user")
    assert user is not None and user.edit_button.isVisible()
    user.edit_button.click()
    assert window.input.toPlainText() == "What is two plus two?"
    assert window.input_notice.isVisible()
    window.input.setPlainText("What is three plus three?")
    with qtbot.waitSignal(window.answer_finished, timeout=60_000):
        window.send_button.click()
    qtbot.waitUntil(lambda: window.send_button.isEnabled(), timeout=5_000)
    stored = window.assistant.store.messages(first.conversation_id)
    assert [m.content for m in stored if m.role == "user"] == ["What is three plus three?"]
    assert "two plus two" not in window.chat.transcript()
    assert not window.input_notice.isVisible()


def test_copy_message_puts_the_answer_on_the_clipboard(qtbot: QtBot, window: MainWindow) -> None:
    finished = ask(qtbot, window, "Say yes.")
    window.chat.last("assistant").copy_button.click()  # type: ignore[union-attr]
    assert QGuiApplication.clipboard().text() == finished.answer


def test_a_huge_paste_is_refused_in_words_and_kept(qtbot: QtBot, window: MainWindow) -> None:
    huge = "word " * (MAX_QUESTION_CHARS // 4)
    window.input.setPlainText(huge)
    with qtbot.waitSignal(window.answer_failed, timeout=2_000) as failed:
        window.send_button.click()
    assert "characters long" in failed.args[0]
    assert window.input_notice.isVisible()
    assert not window.busy and window.chat.messages == []
    assert window.input.toPlainText() == huge  # nothing lost


def test_no_model_the_window_opens_and_says_what_to_do(qtbot: QtBot, settings: Settings,
                                                     paths: Paths, tmp_path: Path) -> None:
    settings.override("model.path", str(tmp_path / "missing.gguf"))
    w = MainWindow(Assistant(settings, paths))
    qtbot.addWidget(w)
    w.show()
    w.preload_model()
    qtbot.waitUntil(lambda: w.model_state == "error", timeout=10_000)
    assert "does not exist" in w.model_status.text()
    assert "Settings" in w.model_status.text()
    w.shutdown()


def test_a_model_that_fails_to_load_shows_the_error_with_details(
        qtbot: QtBot, settings: Settings, paths: Paths, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all")
    settings.override("model.path", str(bad))
    w = MainWindow(Assistant(settings, paths))
    qtbot.addWidget(w)
    w.show()
    w.preload_model()
    qtbot.waitUntil(lambda: w.model_state == "error", timeout=10_000)
    assert "not a GGUF model file" in w.model_status.text()
    # the worker's error reaches the user with a Details button
    assert w.model_details.isVisible()
    w.model_details.click()
    box = next(b for b in QApplication.topLevelWidgets()
               if isinstance(b, QMessageBox) and b.isVisible())
    assert "not a GGUF model file" in box.text()
    assert "Traceback" in box.detailedText()
    box.close()
    # asking also says so, inline in the conversation
    w.input.setPlainText("hello?")
    with qtbot.waitSignal(w.answer_failed, timeout=10_000) as failed:
        w.send()
    assert "not a GGUF model file" in failed.args[0]
    assert "not a GGUF model file" in w.chat.transcript()
    w.shutdown()


def test_closing_the_window_mid_answer_stops_cleanly(qtbot: QtBot, settings: Settings,
                                                    paths: Paths) -> None:
    settings.override("generation.max_tokens", 2000)
    settings.override("generation.temperature", 1.0)
    w = MainWindow(Assistant(settings, paths))
    qtbot.addWidget(w)
    w.show()
    w.input.setPlainText("Write a very long story about a lighthouse.")
    w.send()
    qtbot.waitUntil(lambda: bool(w.chat.last("assistant").text), timeout=60_000)  # type: ignore[union-attr]
    conversation = w.conversation_id
    assert conversation is not None
    w.close()  # not kept in a tray: closing ends the work
    assert w._worker is not None and w._worker.finished
    store = Assistant(settings, paths).store
    stored = store.messages(conversation)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].status == "cancelled" and stored[1].content
    store.close()


def test_shortcuts_and_remembered_geometry(qtbot: QtBot, window: MainWindow,
                                           settings: Settings, paths: Paths) -> None:
    window.focus_search()
    qtbot.waitUntil(lambda: window.conversations.search.hasFocus(), timeout=2_000)
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.input.hasFocus(), timeout=2_000)
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.conversations.search.hasFocus(), timeout=2_000)
    window.input.setPlainText("draft")
    window.chat.add_user("old question")
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert window.chat.messages == [] and window.conversation_id is None
    window.resize(700, 520)
    window.close()
    again = MainWindow(Assistant(settings, paths))
    qtbot.addWidget(again)
    assert again.size() == QSize(700, 520)
    assert (paths.config_dir / "window.ini").is_file()
    again.shutdown()


def test_the_model_shows_as_loaded_after_it_answered_without_a_preload(
        qtbot: QtBot, window: MainWindow) -> None:
    assert window.model_state == "idle"
    assert window.model_status.text() == "Model: not loaded yet"
    finished = ask(qtbot, window, "Say hello.")
    assert finished.provider == "local"
    assert window.model_state == "ready"
    assert window.model_status.text().startswith(f"Model: {finished.model} · ready")
