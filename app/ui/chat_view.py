"""The conversation view: one block per message, answers rendered as
Markdown while they stream, with Copy / Regenerate / Edit and the badge."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QDesktopServices,
    QGuiApplication,
    QPaintEvent,
    QPalette,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QStyleOptionButton,
    QStylePainter,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.answer_cache import ASK_AGAIN, CACHE_NOTE
from app.core.conversations import Message
from app.ui.answer_info import (
    AnswerInfo,
    badge_text,
    badge_tooltip,
    fallback_note,
    fallback_reason,
)
from app.ui.labels import WrappedLabel, breakable
from app.ui.markdown import COPY_SCHEME, Colors, plain_html, render_markdown

# Deltas are gathered and drawn at most this often, so a fast model cannot
# flood the event loop with layout work.
RENDER_INTERVAL_MS = 40
# Questions longer than this are shown cut short (the full text is stored).
MAX_SHOWN_QUESTION = 20_000


def palette_colors(widget: QWidget) -> Colors:
    pal = widget.palette()
    dark = pal.color(QPalette.ColorRole.Window).lightness() < 128
    return Colors(
        code_bg="#2b2d31" if dark else "#f3f4f6",
        code_border="#3c3f45" if dark else "#dcdfe4",
        muted="#9aa0a6" if dark else "#6b7280",
        link=pal.color(QPalette.ColorRole.Link).name(),
    )


class MessageBody(QTextBrowser):
    """A text browser as tall as its content (the scroll area scrolls)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setOpenLinks(False)
        self.viewport().setAutoFillBackground(False)
        self.setStyleSheet("QTextBrowser { background: transparent; }")
        self.document().setDocumentMargin(2)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self, *_args: Any) -> None:
        doc = self.document()
        doc.setTextWidth(self.viewport().width())
        height = int(doc.size().height()) + 2
        if height != self.height():
            self.setFixedHeight(height)

    def sizeHint(self) -> QSize:
        return QSize(400, self.height())


# The link of the "Keep waiting" choice on a fallback notice.
KEEP_WAITING = "hearth:keep-waiting"
# The link of "Ask again" on an answer given from the answer cache.
ASK_AGAIN_LINK = "hearth:ask-again"


class BadgeButton(QPushButton):
    """The answer's badge: its whole text where there is room, cut short with
    "…" where there is not, so that it never pushes the message's buttons
    out of the window. `text()` stays the whole text (the tooltip says it too)."""

    def __init__(self) -> None:
        super().__init__()
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def minimumSizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance("Remote …") + 16,
                     super().minimumSizeHint().height())

    def paintEvent(self, _event: QPaintEvent) -> None:
        option = QStyleOptionButton()
        self.initStyleOption(option)
        room = self.style().subElementRect(QStyle.SubElement.SE_PushButtonContents, option,
                                           self).width()
        option.text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight,
                                                    max(0, room - 4))
        QStylePainter(self).drawControl(QStyle.ControlElement.CE_PushButton, option)


class MessageWidget(QFrame):
    """One message: who, the text, and its actions."""

    def __init__(self, view: ChatView, role: str, message_id: str | None = None) -> None:
        super().__init__()
        self.view = view
        self.role = role
        self.message_id = message_id
        self.text = ""
        self.info: AnswerInfo | None = None
        self.code_blocks: list[str] = []
        self.setObjectName("userMessage" if role == "user" else "answerMessage")

        self.header = QLabel("You" if role == "user" else "Hearth")
        self.header.setObjectName("messageHeader")
        font = self.header.font()
        font.setBold(True)
        self.header.setFont(font)
        self.body = MessageBody()
        self.body.anchorClicked.connect(self._on_anchor)
        # Says why the router moved the answer to another provider.
        self.note_label = WrappedLabel()
        self.note_label.setObjectName("fallbackNote")
        self.note_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.LinksAccessibleByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
        self.note_label.linkActivated.connect(self._on_note_link)
        self.note_label.hide()
        self.error_label = WrappedLabel()
        self.error_label.setObjectName("errorText")
        self.error_label.hide()
        self.details_button = QPushButton("Details…")
        self.details_button.setFlat(True)
        self.details_button.setToolTip("Show the technical details of this error")
        self.details_button.hide()
        self.details_button.clicked.connect(self._show_error_details)
        self.details_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self._error_details = ""
        # The messages as given; the labels show them with places to wrap.
        self.note_text = ""
        self.error_text = ""

        self.badge = BadgeButton()
        self.badge.setObjectName("badge")
        self.badge.setFlat(True)
        self.badge.setCursor(Qt.CursorShape.PointingHandCursor)
        self.badge.setToolTip("Which model answered, and how; click for the details")
        self.badge.clicked.connect(lambda: self.view.details_requested.emit(self.info))
        self.badge.hide()
        self.copy_button = self._tool("Copy", "Copy this message")
        self.copy_button.clicked.connect(self.copy)
        self.regenerate_button = self._tool("Regenerate", "Answer the last question again")
        self.regenerate_button.clicked.connect(self.view.regenerate_requested.emit)
        self.edit_button = self._tool("Edit", "Edit the last question and send it again")
        self.edit_button.clicked.connect(lambda: self.view.edit_requested.emit(self.text))
        self.regenerate_button.hide()
        self.edit_button.hide()

        footer = QHBoxLayout()
        footer.setContentsMargins(0, 0, 0, 0)
        footer.setSpacing(4)
        footer.addWidget(self.badge)
        footer.addStretch(1)
        footer.addWidget(self.copy_button)
        footer.addWidget(self.regenerate_button)
        footer.addWidget(self.edit_button)
        error_row = QHBoxLayout()
        error_row.addWidget(self.error_label, 1)
        error_row.addWidget(self.details_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 6)
        layout.setSpacing(2)
        layout.addWidget(self.header)
        layout.addWidget(self.note_label)
        layout.addWidget(self.body)
        layout.addLayout(error_row)
        layout.addLayout(footer)

    def _tool(self, text: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        # Never narrower than its text: a long badge beside it is cut instead.
        button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        return button

    def set_text(self, text: str) -> None:
        self.text = text
        if self.role == "user":
            shown = text if len(text) <= MAX_SHOWN_QUESTION else (
                text[:MAX_SHOWN_QUESTION] + f"\n… ({len(text) - MAX_SHOWN_QUESTION:,} more "
                "characters not shown)")
            self.body.setHtml(plain_html(shown))
            return
        rendered = render_markdown(text, palette_colors(self))
        self.code_blocks = rendered.code_blocks
        self.body.setHtml(rendered.html)

    def set_info(self, info: AnswerInfo) -> None:
        self.info = info
        self.badge.setText(badge_text(info))
        self.badge.setToolTip(badge_tooltip(info))
        self.badge.show()

    def set_note(self, note: str, can_wait: bool = False, ask_again: bool = False) -> None:
        """Why the answer moved to another provider; with `can_wait`, a "Keep
        waiting" link asks the local model again without a deadline; with
        `ask_again`, an "Ask again" link answers anew instead of from the cache."""
        self.note_text = note
        if ask_again:
            self.note_label.setTextFormat(Qt.TextFormat.RichText)
            self.note_label.setText(f"{html.escape(breakable(note))} · <a href='{ASK_AGAIN_LINK}'>"
                                    f"{ASK_AGAIN}</a>")
        elif can_wait:
            self.note_label.setTextFormat(Qt.TextFormat.RichText)
            self.note_label.setText(f"{html.escape(breakable(note))} · <a href='{KEEP_WAITING}'>"
                                    "Keep waiting for the local model</a>")
        else:
            self.note_label.setTextFormat(Qt.TextFormat.PlainText)
            self.note_label.setText(breakable(note))
        self.note_label.setVisible(bool(note))

    def _on_note_link(self, link: str) -> None:
        if link == KEEP_WAITING:
            self.view.keep_waiting_requested.emit()
        elif link == ASK_AGAIN_LINK:
            if self.view.messages and self.view.messages[-1] is self:
                self.view.regenerate_requested.emit()
            else:
                self.view.status_message.emit("Only the last answer can be asked again.")

    def set_error(self, message: str, details: str = "") -> None:
        self.error_text = message
        self.error_label.setText(breakable(message))
        self.error_label.show()
        self._error_details = details
        self.details_button.setVisible(bool(details))

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.text)
        self.view.status_message.emit("Copied to the clipboard.")

    def _show_error_details(self) -> None:
        from app.ui.errors import show_error

        show_error(self, self.error_text, self._error_details)

    def _on_anchor(self, url: QUrl) -> None:
        if url.scheme() == COPY_SCHEME:
            try:
                code = self.code_blocks[int(url.path())]
            except (ValueError, IndexError):
                return
            QGuiApplication.clipboard().setText(code)
            self.view.status_message.emit("Code copied to the clipboard.")
        elif url.scheme() in ("http", "https", "mailto", "file"):
            QDesktopServices.openUrl(url)


PLACEHOLDER = "Ask anything. Answers come from the model on this computer."


class ChatView(QScrollArea):
    """The messages of one conversation, newest at the bottom."""

    regenerate_requested = Signal()
    # "Keep waiting" on a fallback notice: ask the local model again, without a deadline.
    keep_waiting_requested = Signal()
    edit_requested = Signal(str)
    details_requested = Signal(object)  # AnswerInfo
    status_message = Signal(str)
    hint_link_activated = Signal(str)  # a link in the empty chat's hint

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._inner = QWidget()
        self._inner.setObjectName("chatInner")
        self._layout = QVBoxLayout(self._inner)
        self._layout.setContentsMargins(8, 8, 8, 8)
        self._layout.setSpacing(6)
        self._placeholder = QLabel(PLACEHOLDER)
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setObjectName("placeholder")
        self._placeholder.setWordWrap(True)
        self._placeholder.setTextInteractionFlags(
            Qt.TextInteractionFlag.LinksAccessibleByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
        self._placeholder.linkActivated.connect(self.hint_link_activated)
        self._layout.addWidget(self._placeholder, 1)
        self._layout.addStretch(0)
        self.setWidget(self._inner)
        self.messages: list[MessageWidget] = []
        self._pending = ""
        self._streaming: MessageWidget | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RENDER_INTERVAL_MS)
        self._timer.timeout.connect(self._flush)
        self._follow = True
        self._busy = False
        self.verticalScrollBar().rangeChanged.connect(self._on_range_changed)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)

    # -- content ---------------------------------------------------------------

    def set_hint(self, html: str) -> None:
        """What the empty chat says (rich text with links); "" for the default."""
        self._placeholder.setTextFormat(
            Qt.TextFormat.RichText if html else Qt.TextFormat.PlainText)
        self._placeholder.setText(html or PLACEHOLDER)

    @property
    def hint(self) -> str:
        return self._placeholder.text()

    def clear(self) -> None:
        self._timer.stop()
        self._streaming = None
        self._pending = ""
        for widget in self.messages:
            self._layout.removeWidget(widget)
            widget.deleteLater()
        self.messages = []
        self._placeholder.show()

    def _add(self, widget: MessageWidget) -> MessageWidget:
        self._placeholder.hide()
        self._layout.insertWidget(self._layout.count() - 1, widget)
        self.messages.append(widget)
        self._follow = True
        self._update_actions()
        return widget

    def add_user(self, text: str, message_id: str | None = None) -> MessageWidget:
        widget = MessageWidget(self, "user", message_id)
        widget.set_text(text)
        return self._add(widget)

    def add_answer(self, text: str = "", info: AnswerInfo | None = None) -> MessageWidget:
        widget = MessageWidget(self, "assistant")
        widget.set_text(text)
        if info is not None:
            widget.set_info(info)
            reason = fallback_reason(info.route)
            if reason and info.status != "error":
                widget.set_note(fallback_note(reason, info.provider, info.model))
            if info.cached:
                widget.set_note(CACHE_NOTE, ask_again=True)
            if info.status == "error" and info.error:
                widget.set_error(info.error)
        return self._add(widget)

    def load(self, messages: list[Message]) -> None:
        self.clear()
        for msg in messages:
            if msg.role == "user":
                self.add_user(msg.content, msg.id)
            elif msg.role == "assistant":
                self.add_answer(msg.content, AnswerInfo.from_message(msg))
        self._update_actions()

    def remove_from(self, widget: MessageWidget) -> None:
        """Drop `widget` and everything after it (regenerate, edit)."""
        index = self.messages.index(widget)
        for w in self.messages[index:]:
            self._layout.removeWidget(w)
            w.deleteLater()
        del self.messages[index:]
        if not self.messages:
            self._placeholder.show()
        self._update_actions()

    # -- streaming -------------------------------------------------------------

    def start_answer(self) -> MessageWidget:
        self._streaming = self.add_answer()
        self.set_waiting_text("Thinking…")
        self._pending = ""
        return self._streaming

    def set_waiting_text(self, text: str) -> None:
        """What the answer says before its first word ("Reading your question
        and files… 40 %")."""
        widget = self._streaming
        if widget is not None and not widget.text and not self._pending:
            widget.body.setHtml(
                f"<p style='color:{palette_colors(self).muted}'>{html.escape(text)}</p>")

    def append_delta(self, text: str) -> None:
        self._pending += text
        if not self._timer.isActive():
            self._timer.start()

    def _flush(self) -> None:
        if self._streaming is not None and self._pending:
            self._streaming.set_text(self._streaming.text + self._pending)
            self._pending = ""

    def restart_answer(self, note: str, can_wait: bool = False) -> None:
        """The router moved to another provider: drop the abandoned text
        (drawn or still pending) and say why; the new answer streams in its place."""
        self._timer.stop()
        self._pending = ""
        widget = self._streaming
        if widget is None:
            return
        widget.text = ""
        widget.code_blocks = []
        self.set_waiting_text("Thinking…")
        widget.set_note(note, can_wait)

    def finish_answer(self, info: AnswerInfo | None, error: str | None = None,
                      details: str = "") -> None:
        self._timer.stop()
        self._flush()
        widget = self._streaming
        self._streaming = None
        if widget is None:
            return
        if not widget.text:
            widget.body.setHtml("")
        if info is not None:
            widget.set_info(info)
            if info.cached:
                widget.set_note(CACHE_NOTE, ask_again=True)
        if error:
            widget.set_error(error, details)
        self._update_actions()

    @property
    def streaming(self) -> bool:
        return self._streaming is not None

    # -- actions -----------------------------------------------------------------

    def last(self, role: str) -> MessageWidget | None:
        for widget in reversed(self.messages):
            if widget.role == role:
                return widget
        return None

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._update_actions()

    def _update_actions(self) -> None:
        busy = self._busy
        last_user, last_answer = self.last("user"), self.last("assistant")
        for widget in self.messages:
            widget.regenerate_button.setVisible(
                widget is last_answer and not busy and last_user is not None)
            widget.edit_button.setVisible(widget is last_user and not busy)

    def transcript(self) -> str:
        """All message text, for tests and copying a whole conversation."""
        parts = []
        for w in self.messages:
            if w.note_text:
                parts.append(w.note_text)
            parts.append(w.body.toPlainText())
            if w.badge.isVisible() or w.info is not None:
                parts.append(w.badge.text())
            if w.error_text:
                parts.append(w.error_text)
        return "\n".join(parts)

    # -- scrolling -----------------------------------------------------------------

    def _on_scrolled(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 24

    def _on_range_changed(self, _low: int, high: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(high)
