"""The question box under the chat: the text, Send and Stop, the choosers
beside them, and a notice line above (editing, a question too long, a
settings file with mistakes). It sends `submitted` and `stop_requested`; it
shows what the conversation view tells it through `set_busy` and `set_notice`."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget


class _EnterSends(QObject):
    """Enter sends the question; Shift+Enter starts a new line."""

    def __init__(self, send: Callable[[], None]) -> None:
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


class QuestionBox(QWidget):
    submitted = Signal()  # Enter or Send
    stop_requested = Signal()

    def __init__(self, side: list[QWidget]) -> None:
        super().__init__()
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setObjectName("inputNotice")
        self.notice.hide()
        self.input = QPlainTextEdit()
        self.input.setPlaceholderText("Ask Hearth…  (Enter sends, Shift+Enter for a new line)")
        self.input.setMaximumHeight(110)
        self.input.setToolTip("Enter sends, Shift+Enter starts a new line (Ctrl+L)")
        self._enter_filter = _EnterSends(self.submitted.emit)
        self.input.installEventFilter(self._enter_filter)
        self.send_button = QPushButton("Send")
        self.send_button.setToolTip("Send the question (Enter)")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.submitted.emit)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop_requested.emit)
        row = QHBoxLayout()
        row.setSpacing(8)
        row.addWidget(self.input, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        for widget in side:
            buttons.addWidget(widget)
        buttons.addStretch(1)
        row.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(self.notice)
        layout.addLayout(row)

    def text(self) -> str:
        return self.input.toPlainText().strip()

    def set_busy(self, busy: bool) -> None:
        """While an answer streams, Stop instead of Send."""
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)

    def set_notice(self, text: str) -> None:
        """A line above the question box, until the next question ("" hides it)."""
        self.notice.setText(text)
        self.notice.setVisible(bool(text))
