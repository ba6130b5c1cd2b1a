"""Fallback in the views: the real local model times out (a tiny first-token
deadline against a long question) and the loopback fault server answers; a
remote that goes silent mid-answer is abandoned and its text leaves the view."""

from __future__ import annotations

from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from app.core.events import Fallback, Finished
from app.core.llm.registry import ProviderConfig, add_provider
from app.paths import Paths
from app.settings import Settings
from app.ui.main_window import MainWindow
from app.ui.quick_ask import QuickAsk
from tests.fault_server import ANSWER, FaultServer
from tests.helpers import LONG_QUESTION

pytestmark = pytest.mark.slow

DOOMED = ("Doomed", " draft", " words", " never", " finished")


def test_local_timeout_falls_back_in_the_main_window(
        qtbot: QtBot, remote: FaultServer, settings: Settings, paths: Paths) -> None:
    from app.core.assistant import Assistant

    settings.override("generation.max_tokens", 16)
    settings.override("routing.ttft_timeout_s", 0.05)
    settings.override("routing.reading_allowance", 0.0)
    window = MainWindow(Assistant(settings, paths))
    qtbot.addWidget(window)
    window.show()
    try:
        assert window.route_chooser.currentData() == "auto"
        fallbacks: list[Fallback] = []
        window.input.setPlainText(LONG_QUESTION)
        with qtbot.waitSignal(window.answer_finished, timeout=60_000) as done:
            window.send_button.click()
            assert window._worker is not None
            window._worker.item.connect(
                lambda e: fallbacks.append(e) if isinstance(e, Fallback) else None)
        finished = done.args[0]
        assert isinstance(finished, Finished) and finished.provider == "faulty"
        assert [f.reason for f in fallbacks] == ["ttft_timeout"]
        answer = window.chat.last("assistant")
        assert answer is not None
        assert answer.body.toPlainText().strip() == "".join(ANSWER)
        assert answer.note_label.isVisible()
        assert answer.note_text == (
            "Local model timed out after 0.05 s — answering with faulty/fault-model")
        assert "Keep waiting for the local model" in answer.note_label.text()
        assert answer.badge.text().startswith("Remote · fault-model")
        assert answer.badge.text().endswith(" — local model timed out after 0.05 s")
        # The request really went to the loopback server, once.
        assert len(remote.requests) == 1
        # Reopened from the store, the answer still says why it came from afar.
        window.open_conversation(finished.conversation_id)
        again = window.chat.last("assistant")
        assert again is not None and again.badge.text() == answer.badge.text()
        assert again.note_label.text().startswith("Local model timed out")
        qtbot.waitUntil(lambda: not window.busy, timeout=5_000)
    finally:
        window.shutdown()


def test_abandoned_text_leaves_the_view_and_the_next_answer_replaces_it(
        qtbot: QtBot, window: MainWindow, paths: Paths) -> None:
    # The first provider streams a few words, then goes silent past its own
    # timeout: the router abandons it and moves to the second.
    silent = FaultServer(answer=DOOMED)
    silent.queue("hang_mid")
    backup = FaultServer()
    try:
        add_provider(paths, ProviderConfig("silent", "openai", silent.openai_url, "fault-model",
                                           timeout_s=1.0))
        add_provider(paths, ProviderConfig("backup", "openai", backup.openai_url, "fault-model",
                                           timeout_s=5.0))
        with qtbot.waitSignal(window.routes_refreshed, timeout=10_000):
            window.refresh_routes()
        window.route_chooser.setCurrentIndex(window.route_chooser.findData("remote-first"))
        window.input.setPlainText("Hello?")
        with qtbot.waitSignal(window.answer_finished, timeout=30_000) as done:
            window.send_button.click()
            # The doomed words are drawn before the provider is given up on.
            qtbot.waitUntil(lambda: "Doomed draft" in window.chat.transcript(), timeout=10_000)
        assert done.args[0].provider == "backup"
        answer = window.chat.last("assistant")
        assert answer is not None
        assert answer.body.toPlainText().strip() == "".join(ANSWER)
        assert "Doomed" not in window.chat.transcript()
        assert answer.note_label.text().startswith("Silent stalled for 1 s")
        assert answer.note_label.text().endswith("— answering with backup/fault-model")
        assert answer.badge.text().startswith("Remote · fault-model")
        assert answer.badge.text().endswith("— silent stalled for 1 s mid-answer")
        qtbot.waitUntil(lambda: not window.busy, timeout=5_000)
    finally:
        window.shutdown()
        silent.close()
        backup.close()


def test_quick_ask_shows_the_fallback_and_the_remote_badge(
        qtbot: QtBot, remote: FaultServer, settings: Settings, paths: Paths) -> None:
    from app.core.assistant import Assistant

    settings.override("generation.max_tokens", 16)
    settings.override("routing.ttft_timeout_s", 0.05)
    settings.override("routing.reading_allowance", 0.0)
    assistant = Assistant(settings, paths)
    quick = QuickAsk(assistant)
    qtbot.addWidget(quick)
    try:
        quick.popup()
        quick.input.setText(LONG_QUESTION)
        with qtbot.waitSignal(quick.answer_finished, timeout=60_000):
            quick.ask()
        assert quick.view.toPlainText().strip() == "".join(ANSWER)
        assert quick.note.isVisible() and quick.note.text().startswith(
            "Local model timed out after 0.05 s")
        assert quick.badge.text().startswith("Remote · fault-model")
        assert quick.badge.text().endswith("— local model timed out after 0.05 s")
        qtbot.waitUntil(lambda: not quick.busy, timeout=5_000)
    finally:
        quick.shutdown()
        assistant.close()


def test_the_route_chooser_decides_who_answers(
        qtbot: QtBot, hearth: Any, remote: FaultServer) -> None:
    window = hearth.window
    with qtbot.waitSignal(window.routes_refreshed, timeout=10_000):
        window.refresh_routes()
    assert [window.route_chooser.itemData(i) for i in range(window.route_chooser.count())] == [
        "auto", "local-only", "remote-first", "faulty"]
    # The routing.policy setting moves the chooser with it.
    hearth.settings.set("routing.policy", "faulty")
    assert window.route_chooser.currentData() == "faulty"
    with qtbot.waitSignal(window.answer_finished, timeout=30_000) as done:
        window.ask("Hello?")
    assert done.args[0].provider == "faulty" and len(remote.requests) == 1
    qtbot.waitUntil(lambda: not window.busy, timeout=5_000)
    # Local only: however short the deadline, nothing can take over, so the
    # local model answers, and nothing is sent anywhere.
    hearth.settings.override("routing.ttft_timeout_s", 0.05)
    window.route_chooser.setCurrentIndex(window.route_chooser.findData("local-only"))
    with qtbot.waitSignal(window.answer_finished, timeout=120_000) as done:
        window.ask(LONG_QUESTION)
    assert done.args[0].provider == "local"
    assert len(remote.requests) == 1
    qtbot.waitUntil(lambda: not window.busy, timeout=5_000)
