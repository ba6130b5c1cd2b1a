"""An answer from the answer cache says so in the window and in quick-ask
("From earlier answer · Ask again"), and Ask again answers anew."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from app.core.assistant import AskOptions, Assistant
from app.core.events import Event, Finished
from app.paths import Paths
from app.settings import Settings
from app.ui.answer_info import AnswerInfo, badge_text
from app.ui.chat_view import ASK_AGAIN_LINK
from app.ui.main_window import MainWindow
from app.ui.quick_ask import QuickAsk

pytestmark = pytest.mark.slow

OPTS = AskOptions(max_tokens=64, temperature=0.0, seed=1, use_files=False)


def test_a_cached_answer_is_marked_and_ask_again_answers_anew(
        qtbot: QtBot, window: MainWindow, settings: Settings, paths: Paths) -> None:
    settings.override("generation.system_prompt", "Answer in one short sentence.")
    settings.override("generation.max_tokens", 64)
    assistant = Assistant(settings, paths)
    try:
        first = list(assistant.ask("How much flour goes into the pancake batter?", None, OPTS))
        assert isinstance(first[-1], Finished) and first[-1].finish_reason == "stop"
        events: list[Event] = list(assistant.ask("How much flour is in the pancake batter?",
                                                 None, OPTS))
    finally:
        assistant.close()
    done = events[-1]
    assert isinstance(done, Finished) and done.trace is not None and done.trace.cache == "hit"
    quick = QuickAsk(window.assistant)
    qtbot.addWidget(quick)
    try:
        window.chat.add_user("How much flour is in the pancake batter?")
        window.chat.start_answer()
        for event in events:
            window._on_event(event)
            quick._on_event(event)
        answer = window.chat.last("assistant")
        assert answer is not None
        assert not answer.note_label.isHidden() and "Ask again" in answer.note_label.text()
        assert answer.note_text == "From earlier answer"
        assert "Ask again" in quick.note.text() and not quick.note.isHidden()
        badge = badge_text(AnswerInfo.from_state(window.session.state))
        assert "from earlier answer" in badge and answer.badge.text() == badge
        # The stored conversation, opened again, says the same.
        with qtbot.waitSignal(window.conversation_opened, timeout=10_000):
            window.open_conversation(done.conversation_id)
        reopened = window.chat.last("assistant")
        assert reopened is not None and reopened.note_text == "From earlier answer"
        with qtbot.wait_signal(window.answer_finished, timeout=120_000) as again:
            reopened.note_label.linkActivated.emit(ASK_AGAIN_LINK)
        fresh = again.args[0]
        assert fresh.trace is not None and fresh.trace.cache == "off"
        assert fresh.trace.attempts and fresh.trace.attempts[0].outcome == "answered"
        stored = window.assistant.store.messages(done.conversation_id)
        assert [m.role for m in stored] == ["user", "assistant"]
        assert stored[1].trace["cache"] == "off"
        qtbot.waitUntil(lambda: not window.busy, timeout=5_000)
    finally:
        quick.shutdown()
