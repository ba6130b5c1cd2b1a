"""Where things go wrong the window still reads well: long warnings and
errors wrap to their full height, a long badge never pushes an answer's
buttons out of sight, and the Sources panel never scrolls sideways.
Checked offscreen as layout numbers (the PNGs were looked at when written)."""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import pytest
from keyring.backends import fail
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from app.core.events import Attempt, Route, Source
from app.ui.answer_info import AnswerInfo
from app.ui.chat_view import ChatView
from app.ui.settings_dialog import SettingsDialog
from app.ui.sources_panel import SourcesPanel
from tests.helpers import providers_page

MODEL = ("/home/someone/models/" + "a-very-long-folder-name-without-spaces/" * 3
         + "Qwen2.5-7B-Instruct-Q4_K_M.gguf")


def settle() -> None:
    for _ in range(5):
        QApplication.processEvents()


def right_edge_in(widget: QWidget, viewport: QWidget) -> int:
    return widget.mapTo(viewport, QPoint(widget.width() - 1, 0)).x()


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """No OS keyring runs here; keyring's own 'fail' backend is what a desktop
    without one gets."""
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


def test_the_keyring_warning_is_never_cut_off(qtbot: QtBot, no_keyring: None,
                                             dialog: SettingsDialog) -> None:
    # (no_keyring comes first: the dialog starts without a keyring)
    page = providers_page(dialog)
    note = page.keyring_note
    qtbot.waitUntil(lambda: not note.isHidden(), timeout=5_000)
    # The window is already on screen when the warning (twice as long here,
    # as a longer reason would be) appears.
    note.setText(note.text() + " " + note.text())
    qtbot.waitUntil(lambda: note.height() >= note.heightForWidth(note.width()), timeout=5_000)
    settle()
    assert note.heightForWidth(note.width()) > note.fontMetrics().lineSpacing() * 4
    assert note.height() >= note.heightForWidth(note.width())


def test_errors_wrap_and_an_answers_buttons_are_never_cut(qtbot: QtBot) -> None:
    view = ChatView()
    qtbot.addWidget(view)
    view.resize(380, 600)
    view.show()
    route = Route("auto", (
        Attempt("local", "local model", 0, None, 0.1, "failed", "no_model",
                f"no local model: the model file {MODEL} does not exist"),
        Attempt("openai", "gpt-4o-mini", 0.1, 0.5, 1.0, "answered")), "answered")
    view.add_user("What is in my notes?")
    fell_back = view.add_answer("Your notes talk about volcanoes.",
                                AnswerInfo("openai", "gpt-4o-mini", "complete", route=route))
    view.add_user("And again?")
    error = f"The model file {MODEL} does not exist."
    failed = view.add_answer("", AnswerInfo("local", "SmolLM2", "error", error=error))
    settle()
    viewport = view.viewport()
    assert view.widget().width() <= viewport.width()
    assert view.horizontalScrollBar().maximum() == 0
    for label in (fell_back.note_label, failed.error_label):
        assert label.isVisible()
        assert label.height() >= label.heightForWidth(label.width())
        assert label.heightForWidth(label.width()) >= 3 * label.fontMetrics().lineSpacing()
        assert right_edge_in(label, viewport) < viewport.width()
    assert failed.error_text == error and fell_back.note_text.endswith("gpt-4o-mini")
    assert error in view.transcript()  # as given, without the places to wrap
    buttons = [fell_back.copy_button, failed.copy_button, failed.regenerate_button]
    assert failed.regenerate_button.isVisible()
    for button in buttons:
        assert button.width() >= button.sizeHint().width(), button.text()
        assert right_edge_in(button, viewport) < viewport.width(), button.text()
    # The long badge gives way, cut short, and keeps its whole text.
    badge = fell_back.badge
    assert badge.width() < badge.sizeHint().width()
    assert badge.text().endswith("does not exist") and MODEL in badge.text()


def test_the_sources_panel_never_scrolls_sideways(qtbot: QtBot) -> None:
    panel = SourcesPanel()
    qtbot.addWidget(panel)
    panel.resize(260, 400)
    panel.show()
    long_name = "QuarterlyBudgetReportForTheLampCommittee_FinalVersion" * 2 + ".md"
    panel.set_sources((
        Source(1, "/home/x/" + long_name, 1, 5, None, "Volcanoes erupt " * 30, 0.9),
        Source(2, "/home/x/notes\nline.md", 2, 3, None, "short", 0.5)))
    settle()
    bar = panel.list.horizontalScrollBar()
    assert panel.list.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    assert bar.maximum() == 0
    assert panel.list.item(1).text().startswith("[2] notes\\nline.md · lines 2–3")
    assert panel.list.item(1).toolTip() == "/home/x/notes\\nline.md"
