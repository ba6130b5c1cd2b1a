"""The main window: a conversation with streamed answers and a badge saying
which model answered. Everything slow runs in workers."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent, QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.core.assistant import Assistant
from app.core.events import Delta, Error, Finished, Started
from app.ui.workers import GeneratorWorker, call_in_background


class _EnterSends(QObject):
    """Enter sends the question; Shift+Enter starts a new line."""

    def __init__(self, send: Any) -> None:
        super().__init__()
        self._send = send

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
            and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self._send()
            return True
        return False


class MainWindow(QMainWindow):
    answer_finished = Signal(object)  # Finished
    answer_failed = Signal(str)

    def __init__(self, assistant: Assistant) -> None:
        super().__init__()
        self.assistant = assistant
        self.conversation_id: str | None = None
        self._worker: GeneratorWorker | None = None
        self._loader: GeneratorWorker | None = None
        self.setWindowTitle("Hearth")
        self.resize(820, 640)

        self.transcript = QTextBrowser()
        self.transcript.setOpenExternalLinks(True)
        self.transcript.setPlaceholderText(
            "Ask anything. Answers come from the model on this computer.")
        self.input = QPlainTextEdit()
        self.input.setPlaceholderText("Ask Hearth…  (Enter sends, Shift+Enter for a new line)")
        self.input.setMaximumHeight(96)
        self._enter_filter = _EnterSends(self.send)
        self.input.installEventFilter(self._enter_filter)
        self.send_button = QPushButton("Send")
        self.send_button.setToolTip("Send the question (Enter)")
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self).activated.connect(self.stop)
        QShortcut(QKeySequence("Ctrl+L"), self).activated.connect(self.input.setFocus)

        row = QHBoxLayout()
        row.addWidget(self.input, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        row.addLayout(buttons)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(8)
        layout.addWidget(self.transcript, 1)
        layout.addLayout(row)
        self.setCentralWidget(body)

        self.model_status = QLabel("Model: not loaded yet")
        self.statusBar().addWidget(self.model_status, 1)
        self.input.setFocus()

    # -- model ---------------------------------------------------------------

    def preload_model(self) -> None:
        """Load the local model in the background so the first answer is quick."""
        self.model_status.setText("Model: loading…")
        self._loader = call_in_background(lambda: self.assistant.local_provider().load())
        self._loader.item.connect(
            lambda loaded: self.model_status.setText(
                f"Model: {loaded.name} · ready · context {loaded.n_ctx}"))
        self._loader.failed.connect(
            lambda message, _details: self.model_status.setText(f"Model: {message}"))
        self._loader.start()

    # -- asking --------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._worker is not None and self._worker.running

    def send(self) -> None:
        question = self.input.toPlainText().strip()
        if not question or self.busy:
            return
        self.input.clear()
        self._append_html(
            f"<p style='margin-top:12px'><b>You</b><br>{_para(question)}</p>"
            "<p style='margin-top:8px'><b>Hearth</b><br>"
        )
        conversation = self.conversation_id
        self._worker = GeneratorWorker(
            lambda cancel: self.assistant.ask(question, conversation, cancel=cancel))
        self._worker.item.connect(self._on_event)
        self._worker.failed.connect(lambda message, _d: self._show_error(message))
        self._worker.done.connect(self._on_done)
        self.send_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self._worker.start()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()

    def _on_event(self, event: object) -> None:
        if isinstance(event, Started):
            self.conversation_id = event.conversation_id
        elif isinstance(event, Delta):
            cursor = self.transcript.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertText(event.text)
            self.transcript.setTextCursor(cursor)
            self.transcript.ensureCursorVisible()
        elif isinstance(event, Finished):
            self._append_html(f"<br><span style='color:#888;font-size:small'>"
                              f"{html.escape(badge_text(event))}</span></p>")
            self.answer_finished.emit(event)
        elif isinstance(event, Error):
            self._show_error(event.message)

    def _show_error(self, message: str) -> None:
        self._append_html(f"<br><span style='color:#c0392b'>{html.escape(message)}</span></p>")
        self.statusBar().showMessage(message, 10_000)
        self.answer_failed.emit(message)

    def _on_done(self) -> None:
        self.send_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def _append_html(self, fragment: str) -> None:
        cursor = self.transcript.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertHtml(fragment)
        self.transcript.setTextCursor(cursor)

    # -- shutting down -------------------------------------------------------

    def shutdown(self) -> None:
        """Stop background work and wait for it, then free the model."""
        for worker in (self._worker, self._loader):
            if worker is not None:
                worker.stop()
                worker.wait(15_000)
        self.assistant.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)


def badge_text(event: Finished) -> str:
    where = "Local" if event.provider == "local" else "Remote"
    parts = [f"{where} · {event.model}"]
    if event.timings.tokens_per_s:
        parts.append(f"{event.timings.tokens_per_s:.0f} tok/s")
    if event.finish_reason == "cancelled":
        parts.append("stopped")
    parts.extend(event.notes)
    return " · ".join(parts)


def _para(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")
