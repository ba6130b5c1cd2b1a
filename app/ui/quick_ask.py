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

from app.core.assistant import MAX_QUESTION_CHARS, Assistant
from app.core.events import Delta, Error, Fallback, Finished, Route, Source, Sources, Started
from app.ui.answer_info import AnswerInfo, badge_text, fallback_note
from app.ui.chat_view import RENDER_INTERVAL_MS, palette_colors
from app.ui.details_dialog import location
from app.ui.markdown import render_markdown
from app.ui.theme import app_icon
from app.ui.workers import GeneratorWorker, WorkerSet


class QuickAsk(QWidget):
    continue_requested = Signal(str)  # conversation id
    answer_finished = Signal(object)  # Finished
    answer_failed = Signal(str)

    def __init__(self, assistant: Assistant) -> None:
        super().__init__(None, Qt.WindowType.Tool | Qt.WindowType.FramelessWindowHint
                         | Qt.WindowType.WindowStaysOnTopHint)
        self.assistant = assistant
        self.setWindowTitle("Hearth — Quick Ask")
        self.setWindowIcon(app_icon())
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.conversation_id: str | None = None
        self.answer = ""
        self._route: Route | None = None
        self._sources: tuple[Source, ...] = ()
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
        self.note.hide()
        self.badge = QLabel()
        self.badge.setObjectName("placeholder")
        self.badge.setWordWrap(True)
        self.continue_button = QPushButton("Continue in Hearth")
        self.continue_button.setToolTip("Open this exchange as a conversation in the main window")
        self.continue_button.setEnabled(False)
        self.continue_button.clicked.connect(self._continue)
        row = QHBoxLayout()
        row.addWidget(self.badge, 1)
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
        self.resize(560, 120)

    # -- showing -------------------------------------------------------------------

    def popup(self, near: QPoint | None = None) -> None:
        """Show near `near` (default: the mouse cursor), inside the screen."""
        self.reset()
        pos = near or QCursor.pos()
        screen = QGuiApplication.screenAt(pos) or QGuiApplication.primaryScreen()
        area = screen.availableGeometry() if screen else QRect(0, 0, 1280, 800)
        width, height = 560, 380
        x = min(max(area.left(), pos.x() - width // 2), area.right() - width)
        y = min(max(area.top(), pos.y() + 16), area.bottom() - height)
        self.resize(width, 120)
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

    def ask(self) -> None:
        question = self.input.text().strip()
        if not question or self.busy:
            return
        if len(question) > MAX_QUESTION_CHARS:
            self.badge.setText(f"The question is too long ({len(question):,} characters); "
                               f"Hearth accepts up to {MAX_QUESTION_CHARS:,}.")
            return
        self.answer = ""
        self._route = None
        self._sources = ()
        self.note.clear()
        self.note.hide()
        self.view.setHtml(f"<p style='color:{palette_colors(self).muted}'>Thinking…</p>")
        self.view.show()
        self.sources_label.hide()
        self.badge.setText("")
        self.resize(self.width(), 380)
        conversation = self.conversation_id
        assistant = self.assistant
        self._worker = GeneratorWorker(
            lambda cancel: assistant.ask(question, conversation, cancel=cancel), self)
        self._worker.item.connect(self._on_event)
        self._worker.failed.connect(self._on_failed)
        self._worker.done.connect(self._on_done)
        self._workers.start(self._worker)

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()

    def _on_event(self, event: object) -> None:
        if isinstance(event, Started):
            self.conversation_id = event.conversation_id
            self.continue_button.setEnabled(True)
        elif isinstance(event, Sources):
            self._sources = tuple(event.sources)
            self.sources_label.setText("Sources: " + "  ".join(
                html.escape(f"[{s.number}] {s.path.rsplit('/', 1)[-1]} {location(s)}".strip())
                for s in self._sources))
            self.sources_label.setVisible(bool(self._sources))
        elif isinstance(event, Delta):
            self.answer += event.text
            if not self._timer.isActive():
                self._timer.start()
        elif isinstance(event, Fallback):
            # The abandoned text goes; the new provider's answer streams in its place.
            self._timer.stop()
            self.answer = ""
            self.view.setHtml(f"<p style='color:{palette_colors(self).muted}'>Thinking…</p>")
            self.note.setText(fallback_note(event.detail, event.provider, event.model))
            self.note.show()
        elif isinstance(event, Route):
            self._route = event
        elif isinstance(event, Finished):
            self._timer.stop()
            self._render()
            self.badge.setText(badge_text(
                AnswerInfo.from_finished(event, self._route, self._sources)))
            self.answer_finished.emit(event)
        elif isinstance(event, Error):
            self._timer.stop()
            self._render()
            self.badge.setText(event.message)
            self.answer_failed.emit(event.message)

    def _on_failed(self, message: str, _details: str) -> None:
        self.badge.setText(message)
        self.answer_failed.emit(message)

    def _render(self) -> None:
        if self.answer:
            self.view.setHtml(render_markdown(self.answer, palette_colors(self)).html)
            bar = self.view.verticalScrollBar()
            bar.setValue(bar.maximum())

    def _on_done(self) -> None:
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
