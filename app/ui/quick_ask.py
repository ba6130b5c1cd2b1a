"""The quick-ask popup: a small frameless window near the cursor. Type, press
Enter, the answer streams in with its sources and badge; Esc closes;
"Continue in Hearth" opens the exchange as a conversation in the main window."""

from __future__ import annotations

import html

from PySide6.QtCore import QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QCursor, QGuiApplication, QKeyEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.core.answer import AnswerSession
from app.core.answer_cache import ASK_AGAIN, CACHE_NOTE
from app.core.assistant import MAX_QUESTION_CHARS, AskOptions, Assistant
from app.core.errors import HearthError
from app.core.events import Delta, Error, Fallback, Finished, Progress, Sources, Started
from app.ui.answer_info import AnswerInfo, badge_text, fallback_note
from app.ui.chat_view import ASK_AGAIN_LINK, RENDER_INTERVAL_MS, palette_colors
from app.ui.details_dialog import location
from app.ui.markdown import render_markdown
from app.ui.theme import app_icon
from app.ui.workers import GeneratorWorker, WorkerSet

WIDTH = 560
# The height once an answer is shown (the popup grows to it when asked).
ANSWER_HEIGHT = 380


class QuickAsk(QWidget):
    continue_requested = Signal(str)  # conversation id
    answer_finished = Signal(object)  # Finished
    answer_failed = Signal(str)

    def __init__(self, assistant: Assistant) -> None:
        super().__init__(None, Qt.WindowType.Tool | Qt.WindowType.FramelessWindowHint
                         | Qt.WindowType.WindowStaysOnTopHint)
        self.assistant = assistant
        # The platform adds the application's name: "Quick Ask — Hearth".
        self.setWindowTitle("Quick Ask")
        self.setWindowIcon(app_icon())
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.conversation_id: str | None = None
        self.answer = ""
        self.session = AnswerSession()
        self._worker: GeneratorWorker | None = None
        self._continue_after = False
        self._workers = WorkerSet()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RENDER_INTERVAL_MS)
        self._timer.timeout.connect(self._render)

        frame = QFrame()
        frame.setObjectName("quickAsk")
        self.input = QLineEdit()
        self.input.setPlaceholderText("Ask Hearth…  (Enter asks, Esc closes)")
        self.input.setMinimumHeight(34)
        self.input.returnPressed.connect(self.ask)
        self.view = QTextBrowser()
        self.view.setOpenExternalLinks(True)
        self.view.setFrameShape(QFrame.Shape.NoFrame)
        self.view.setMinimumHeight(200)
        self.view.hide()
        self.sources_label = QLabel()
        self.sources_label.setWordWrap(True)
        self.sources_label.setObjectName("placeholder")
        self.sources_label.hide()
        self.note = QLabel()
        self.note.setObjectName("fallbackNote")
        self.note.setWordWrap(True)
        self.note.linkActivated.connect(self._on_note_link)
        self.note.hide()
        self.badge = QLabel()
        self.badge.setObjectName("placeholder")
        self.badge.setWordWrap(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the answer")
        self.stop_button.hide()
        self.stop_button.clicked.connect(self.stop)
        self.continue_button = QPushButton("Continue in Hearth")
        self.continue_button.setToolTip("Open this exchange as a conversation in the main window")
        self.continue_button.setEnabled(False)
        self.continue_button.clicked.connect(self._continue)
        row = QHBoxLayout()
        row.addWidget(self.badge, 1)
        row.addWidget(self.stop_button)
        row.addWidget(self.continue_button)
        inner = QVBoxLayout(frame)
        inner.setContentsMargins(14, 12, 14, 12)
        inner.setSpacing(8)
        inner.addWidget(self.input)
        inner.addWidget(self.note)
        inner.addWidget(self.view, 1)
        inner.addWidget(self.sources_label)
        inner.addLayout(row)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(frame)
        self.setFixedWidth(WIDTH)

    # -- showing -------------------------------------------------------------------

    def popup(self, near: QPoint | None = None) -> None:
        """Show near `near` (default: the mouse cursor), inside the screen."""
        self.reset()
        pos = near or QCursor.pos()
        screen = QGuiApplication.screenAt(pos) or QGuiApplication.primaryScreen()
        area = screen.availableGeometry() if screen else QRect(0, 0, 1280, 800)
        width, height = WIDTH, ANSWER_HEIGHT
        x = min(max(area.left(), pos.x() - width // 2), area.right() - width)
        y = min(max(area.top(), pos.y() + 16), area.bottom() - height)
        self.adjustSize()  # its natural height: the input, and the badge once there is one
        self.move(x, y)
        self.show()
        self.raise_()
        self.activateWindow()
        self.input.setFocus()

    def reset(self) -> None:
        if self.busy:
            return
        self.conversation_id = None
        self.answer = ""
        self.input.clear()
        self.view.clear()
        self.view.hide()
        self.note.clear()
        self.note.hide()
        self.sources_label.hide()
        self.badge.clear()
        self.continue_button.setEnabled(False)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.close()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: object) -> None:
        self._continue_after = False
        self.stop()
        super().closeEvent(event)  # type: ignore[arg-type]

    # -- asking --------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._worker is not None and self._worker.running

    def ask(self, fresh: bool = False) -> None:
        """`fresh`: answer anew, not from the answer cache (Ask again)."""
        question = self.input.text().strip()
        if not question or self.busy:
            return
        if len(question) > MAX_QUESTION_CHARS:
            self.badge.setText(f"The question is too long ({len(question):,} characters); "
                               f"Hearth accepts up to {MAX_QUESTION_CHARS:,}.")
            return
        self.answer = ""
        self.session = AnswerSession()
        self.note.clear()
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.hide()
        self._waiting("Thinking…")
        self.view.show()
        self.sources_label.hide()
        self.badge.setText("")
        self.stop_button.show()
        self.resize(self.width(), max(self.sizeHint().height(), ANSWER_HEIGHT))
        conversation = self.conversation_id
        assistant = self.assistant
        self._worker = GeneratorWorker(
            lambda cancel: assistant.ask(question, conversation, AskOptions(fresh=fresh),
                                         cancel), self)
        self._worker.item.connect(self._on_event)
        self._worker.failed.connect(self._on_failed)
        self._worker.done.connect(self._on_done)
        self._workers.start(self._worker)

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()

    def _waiting(self, text: str) -> None:
        self.view.setHtml(f"<p style='color:{palette_colors(self).muted}'>"
                          f"{html.escape(text)}</p>")

    def _on_event(self, event: object) -> None:
        state = self.session.fold(event)
        if isinstance(event, Started):
            self.conversation_id = state.conversation_id
            self.continue_button.setEnabled(True)
            self.badge.setText(f"{'Local' if state.provider == 'local' else 'Remote'} · "
                               f"{state.model}")
        elif isinstance(event, Sources):
            self.sources_label.setText("Sources: " + "  ".join(
                html.escape(f"[{s.number}] {s.path.rsplit('/', 1)[-1]} {location(s)}".strip())
                for s in state.sources))
            self.sources_label.setVisible(bool(state.sources))
        elif isinstance(event, Progress):
            self._waiting(state.reading_text)
        elif isinstance(event, Delta):
            self.answer = state.text
            if not self._timer.isActive():
                self._timer.start()
        elif isinstance(event, Fallback):
            # The abandoned text goes; the new provider's answer streams in its place.
            self._timer.stop()
            self.answer = ""
            self._waiting("Thinking…")
            self.note.setText(fallback_note(event.detail, event.provider, event.model))
            self.note.show()
            self.badge.setText(f"Remote · {event.model}")
        elif isinstance(event, Finished):
            self._timer.stop()
            self.answer = state.text
            self._render()
            info = AnswerInfo.from_state(state)
            self.badge.setText(badge_text(info))
            if info.cached:
                self.note.setTextFormat(Qt.TextFormat.RichText)
                self.note.setText(f"{CACHE_NOTE} · <a href='{ASK_AGAIN_LINK}'>{ASK_AGAIN}</a>")
                self.note.show()
            self.answer_finished.emit(event)
        elif isinstance(event, Error):
            self._timer.stop()
            self.answer = state.text
            self._render()
            if not self.answer:
                self.view.hide()
            if state.discarded:
                self.conversation_id = None
                self.continue_button.setEnabled(False)
            self.badge.setText(event.message)
            self.answer_failed.emit(event.message)

    def _on_note_link(self, link: str) -> None:
        if link != ASK_AGAIN_LINK or self.busy:
            return
        # The cached answer and its question go; the question is asked anew
        # in their place, so the conversation holds one answer to it.
        question_id, conversation = self.session.state.question_id, self.conversation_id
        if conversation and question_id:
            try:
                self.assistant.store.delete_messages_from(conversation, question_id)
            except (HearthError, OSError) as exc:
                self.badge.setText(str(exc))
                return
        self.ask(fresh=True)

    def _on_failed(self, message: str, _details: str) -> None:
        self.badge.setText(message)
        self.answer_failed.emit(message)

    def _render(self) -> None:
        if self.answer:
            self.view.setHtml(render_markdown(self.answer, palette_colors(self)).html)
            bar = self.view.verticalScrollBar()
            bar.setValue(bar.maximum())

    def _on_done(self) -> None:
        self.stop_button.hide()
        if self._continue_after:
            self._continue_after = False
            if self.conversation_id:
                self.continue_requested.emit(self.conversation_id)

    def _continue(self) -> None:
        if not self.conversation_id:
            return
        self.hide()
        if self.busy:
            # The answer is stored when it ends; the main window opens it then.
            self._continue_after = True
        else:
            self.continue_requested.emit(self.conversation_id)

    def shutdown(self) -> None:
        self._timer.stop()
        self._workers.stop_all()
