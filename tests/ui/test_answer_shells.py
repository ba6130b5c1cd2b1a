"""The window and quick-ask show an answer through the same answer session
the CLI uses: the same events fold into the same state in each; the window
shows the local model reading a long prompt, and "Keep waiting" on a fallback
notice asks the local model again without a deadline."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from app.core.answer import AnswerSession
from app.core.assistant import AskOptions, Assistant
from app.core.events import Fallback, Finished, Progress
from app.paths import Paths
from app.settings import Settings
from app.ui.answer_info import AnswerInfo, badge_text
from app.ui.chat_view import KEEP_WAITING
from app.ui.main_window import MainWindow
from app.ui.quick_ask import QuickAsk
from tests.fault_server import ANSWER, FaultServer
from tests.helpers import LONG_QUESTION

pytestmark = pytest.mark.slow



def test_the_same_events_make_the_same_answer_in_every_shell(
        qtbot: QtBot, window: MainWindow, settings: Settings, paths: Paths) -> None:
    assistant = Assistant(settings, paths)
    try:
        events = list(assistant.ask("Say hello.", None, AskOptions(max_tokens=8)))
    finally:
        assistant.close()
    assert isinstance(events[-1], Finished)
    reference = AnswerSession()
    for event in events:
        reference.fold(event)
    quick = QuickAsk(window.assistant)
    qtbot.addWidget(quick)
    try:
        window.chat.add_user("Say hello.")
        window.chat.start_answer()
        for event in events:
            window._on_event(event)
            quick._on_event(event)
        assert window.session.state == quick.session.state == reference.state
        assert reference.state.phase == "answered" and reference.state.text
        shown = window.chat.last("assistant")
        assert shown is not None
        badge = badge_text(AnswerInfo.from_state(reference.state))
        assert shown.badge.text() == quick.badge.text() == badge
    finally:
        quick.shutdown()


def test_the_window_shows_the_prompt_being_read_then_the_answer(
        qtbot: QtBot, window: MainWindow) -> None:
    seen: list[str] = []

    def look(event: object) -> None:
        if isinstance(event, Progress):
            answer = window.chat.last("assistant")
            assert answer is not None
            seen.append(answer.body.toPlainText().strip())

    with qtbot.waitSignal(window.answer_finished, timeout=180_000):
        window.ask(LONG_QUESTION)
        assert window._worker is not None and window.stop_button.isEnabled()
        # Connected after the window's own slot, so it sees what was drawn.
        window._worker.item.connect(look)
    assert seen and all(s.startswith("Reading your question and files… ") and s.endswith(" %")
                        for s in seen)
    assert seen[-1] != seen[0]
    qtbot.waitUntil(lambda: not window.busy, timeout=5_000)


def test_keep_waiting_asks_the_local_model_again_without_a_deadline(
        qtbot: QtBot, remote: FaultServer, settings: Settings, paths: Paths) -> None:
    settings.override("generation.max_tokens", 8)
    settings.override("routing.ttft_timeout_s", 0.05)
    settings.override("routing.reading_allowance", 0.0)
    window = MainWindow(Assistant(settings, paths))
    qtbot.addWidget(window)
    window.show()
    try:
        fallbacks: list[Fallback] = []
        with qtbot.waitSignal(window.answer_finished, timeout=60_000) as first:
            window.ask(LONG_QUESTION)
            assert window._worker is not None
            window._worker.item.connect(
                lambda e: fallbacks.append(e) if isinstance(e, Fallback) else None)
        assert first.args[0].provider == "faulty" and fallbacks[0].can_wait
        answer = window.chat.last("assistant")
        assert answer is not None and "Keep waiting for the local model" in \
            answer.note_label.text()
        qtbot.waitUntil(lambda: not window.busy, timeout=5_000)
        with qtbot.waitSignal(window.answer_finished, timeout=180_000) as second:
            answer.note_label.linkActivated.emit(KEEP_WAITING)
        assert second.args[0].provider == "local"
        # The fallback's answer made way for the local one, in the view and the store.
        answers = [m for m in window.chat.messages if m.role == "assistant"]
        assert len(answers) == 1 and "".join(ANSWER) not in window.chat.transcript()
        stored = window.assistant.store.messages(second.args[0].conversation_id)
        assert [(m.role, m.provider) for m in stored] == [("user", None), ("assistant", "local")]
        assert len(remote.requests) == 1
        qtbot.waitUntil(lambda: not window.busy, timeout=5_000)
    finally:
        window.shutdown()


def test_a_first_question_stopped_before_its_answer_leaves_no_conversation(
        qtbot: QtBot, window: MainWindow) -> None:
    def stop_while_reading(event: object) -> None:
        if isinstance(event, Progress):
            window.stop()

    with qtbot.waitSignal(window.answer_failed, timeout=60_000) as failed:
        window.ask(LONG_QUESTION)
        assert window._worker is not None
        window._worker.item.connect(stop_while_reading)
    assert failed.args[0] == "The answer was stopped before it began."
    qtbot.waitUntil(lambda: not window.busy, timeout=5_000)
    assert window.conversation_id is None
    qtbot.waitUntil(lambda: window.conversations.ids() == [], timeout=10_000)
    assert window.assistant.store.search() == []
    # Nothing is lost: the question is back in the input, ready to send again.
    assert window.input.toPlainText() == LONG_QUESTION


def test_quick_ask_opens_at_its_natural_size_and_has_stop_and_the_model_badge(
        qtbot: QtBot, window: MainWindow) -> None:
    quick = QuickAsk(window.assistant)
    qtbot.addWidget(quick)
    try:
        quick.popup()
        assert quick.sizeHint().height() <= quick.height() < 160  # no empty answer area
        # The platform adds the application's name once: "Quick Ask — Hearth".
        assert quick.windowTitle() == "Quick Ask"
        assert not quick.stop_button.isVisible()
        badges: list[str] = []
        quick.input.setText("Write a long story about a lighthouse.")
        with qtbot.waitSignal(quick.answer_finished, timeout=60_000):
            quick.ask()
            assert quick.stop_button.isVisible() and quick.height() >= 380
            assert quick._worker is not None
            quick._worker.item.connect(lambda _e: badges.append(quick.badge.text()))
        assert badges[0].startswith("Local · ")  # the model is named from the start
        assert "tok/s" in quick.badge.text()
        qtbot.waitUntil(lambda: not quick.busy and not quick.stop_button.isVisible(),
                        timeout=5_000)
    finally:
        quick.shutdown()
