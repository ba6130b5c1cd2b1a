"""The conversation in the middle of the window: the chat, the question box
with Send and Stop, and the life of one answer.

An answer streams through a `GeneratorWorker` (`Assistant.ask`); each event
is folded into the `LiveAnswer` state (`app.ui.state`), and `_render` draws
the chat from the `AnswerState` it announces, comparing it with the state
drawn before: the first words, more words, a switch to another provider,
the end. Removing earlier messages (regenerate, edit) runs through `run_op`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.core.answer import AnswerState
from app.core.assistant import MAX_QUESTION_CHARS, AskOptions, Assistant
from app.core.conversations import Conversation, Message
from app.core.models.library import ModelRow
from app.ui.answer_info import AnswerInfo, fallback_note
from app.ui.chat_view import ChatView, MessageWidget
from app.ui.errors import show_error
from app.ui.question_box import QuestionBox
from app.ui.state import LiveAnswer
from app.ui.workers import GeneratorWorker, WorkerSet, run_op


def first_run_hint(bundled_demo: bool, suggestion: ModelRow | None) -> str:
    """What the empty chat says while the bundled demo model is in use ("" otherwise)."""
    if not bundled_demo:
        return ""
    parts = ["<p><b>You are using SmolLM2-135M, a small demo model bundled with Hearth.</b>"
             "<br>It answers at once but is too small for good answers, and cannot "
             "answer from your files.</p>"]
    if suggestion is not None and suggestion.entry is not None:
        parts.append(
            f"<p>For better answers, download <b>{suggestion.name}</b> "
            f"({suggestion.size_bytes / 1024**3:.1f} GB; {suggestion.fit.verdict} this "
            f"computer): <a href='hearth:download:{suggestion.id}'>Download it</a>"
            " · <a href='hearth:models'>See all models</a></p>")
    else:
        parts.append("<p><a href='hearth:models'>Choose a better model</a></p>")
    parts.append("<p>To answer from your notes and documents, "
                 "<a href='hearth:folders'>Add a folder</a>.</p>")
    return "".join(parts)


class ConversationView(QWidget):
    """`started(conversation id, new)` once the question is stored;
    `finished(Finished)` / `failed(message)` when the answer ends;
    `discarded()` when a first question left no conversation;
    `sources_changed(sources)`; `status_message(text, ms)`; `opened(Conversation)`
    once a stored conversation is shown; the empty chat's links ask for
    `models_requested`, `folders_requested` or `download_requested(model id)`."""

    started = Signal(str, bool)
    finished = Signal(object)
    failed = Signal(str)
    discarded = Signal()
    sources_changed = Signal(object)
    status_message = Signal(str, int)
    opened = Signal(object)
    models_requested = Signal()
    folders_requested = Signal()
    download_requested = Signal(str)

    def __init__(self, assistant: Assistant, workers: WorkerSet,
                 options: Callable[[], AskOptions], side: list[QWidget]) -> None:
        super().__init__()
        self.assistant = assistant
        self.workers = workers
        self._options = options
        self.conversation_id: str | None = None
        self.closed = False
        self.answer = LiveAnswer(self)
        self.answer.changed.connect(self._render)
        self._shown = self.answer.state
        self._worker: GeneratorWorker | None = None
        self._after_answer: Callable[[], None] | None = None
        self._dropping = False
        self._editing: MessageWidget | None = None

        self.chat = ChatView()
        self.chat.regenerate_requested.connect(self.regenerate)
        self.chat.keep_waiting_requested.connect(self.keep_waiting)
        self.chat.edit_requested.connect(self.edit_last)
        self.chat.hint_link_activated.connect(self._on_hint_link)
        self.box = QuestionBox(side)
        self.box.submitted.connect(self.send)
        self.box.stop_requested.connect(self.stop)
        self.input, self.notice = self.box.input, self.box.notice
        self.send_button, self.stop_button = self.box.send_button, self.box.stop_button
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)
        layout.addWidget(self.chat, 1)
        layout.addWidget(self.box)

    # -- asking --------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._worker is not None and self._worker.running

    @property
    def worker(self) -> GeneratorWorker | None:
        """The stream of the answer being asked for (or the last one)."""
        return self._worker

    def send(self) -> None:
        question = self.box.text()
        if not question or self.busy:
            return
        if len(question) > MAX_QUESTION_CHARS:
            # Refused here so a huge paste is never drawn into the view; the
            # text stays in the input so nothing is lost.
            self.set_notice(f"The question is {len(question):,} characters long; Hearth "
                            f"accepts up to {MAX_QUESTION_CHARS:,}. Shorten it and send again.")
            self.failed.emit(self.notice.text())
            return
        if self._editing is not None:
            editing = self._editing
            self.cancel_edit()
            self.input.clear()
            # The question asked again replaces the old one and what followed.
            self._drop_from(editing, lambda: self.ask(question))
            return
        self.input.clear()
        self.ask(question)

    def ask(self, question: str, patient: bool = False, fresh: bool = False) -> None:
        """Stream the answer to `question`; `patient`: wait for the local model
        without a deadline; `fresh`: not from the answer cache."""
        if self.busy or self.closed:
            return
        self.set_notice("")
        self.chat.add_user(question)
        self.chat.start_answer()
        self.chat.set_busy(True)
        self.answer.restart()
        conversation = self.conversation_id
        assistant = self.assistant
        options = replace(self._options(), patient=patient, fresh=fresh)
        self._worker = GeneratorWorker(
            lambda cancel: assistant.ask(question, conversation, options, cancel), self)
        self._worker.item.connect(self.answer.fold)
        self._worker.failed.connect(self._on_failed)
        self._worker.done.connect(self._on_done)
        self.box.set_busy(True)
        self.workers.start(self._worker)

    def stop(self, wait_ms: int = 0) -> None:
        if self._worker is not None:
            self._worker.stop()
            if wait_ms:
                self._worker.wait(wait_ms)

    def escape(self) -> None:
        if self.busy:
            self.stop()
        elif self._editing is not None:
            self.cancel_edit()
            self.input.clear()

    def regenerate(self, patient: bool = False) -> None:
        last_user = self.chat.last("user")
        if last_user is None or self.busy:
            return
        if not self._dropping:
            self._drop_from(last_user, lambda: self.ask(last_user.text, patient=patient,
                                                        fresh=True))

    def keep_waiting(self) -> None:
        """The user would rather wait for the local model than take the
        fallback's answer: stop that answer and ask the local model again,
        with no deadline (what it had read of the prompt is still cached)."""
        if self.busy:
            self._after_answer = lambda: self.regenerate(patient=True)
            self.stop()
        else:
            self.regenerate(patient=True)

    def edit_last(self, text: str) -> None:
        if self.busy:
            return
        self._editing = self.chat.last("user")
        self.input.setPlainText(text)
        self.set_notice("Editing your last question: Enter sends it again in its place, "
                        "Esc cancels.")
        self.focus_input()

    def cancel_edit(self) -> None:
        if self._editing is not None:
            self._editing = None
            self.set_notice("")

    def _drop_from(self, widget: MessageWidget, then: Callable[[], None]) -> None:
        """Remove a question and what followed, from the store (off the GUI
        thread) and the view; then call `then`. On a failure nothing is
        removed and the user is told."""
        conversation, message = self.conversation_id, widget.message_id

        def dropped(_result: object) -> None:
            self._dropping = False
            self.chat.remove_from(widget)
            then()

        def failed(message_: str, details: str) -> None:
            self._dropping = False
            show_error(self.window(), message_, details)

        if not (conversation and message):
            dropped(None)
            return
        self._dropping = True
        assistant = self.assistant
        run_op(self.workers, lambda: assistant.store.delete_messages_from(conversation, message),
               dropped, failed, self)

    # -- drawing the answer from its state -------------------------------------------

    def _render(self, state: AnswerState, event: object) -> None:
        before, self._shown = self._shown, state
        if event is None:  # a new answer: no sources yet
            self.sources_changed.emit(())
            return
        if state.question_id is not None and state.question_id != before.question_id:
            new = self.conversation_id != state.conversation_id
            self.conversation_id = state.conversation_id
            user = self.chat.last("user")
            if user is not None:
                user.message_id = state.question_id
            if state.conversation_id is not None:
                self.started.emit(state.conversation_id, new)
        if state.sources != before.sources:
            self.sources_changed.emit(state.sources)
        if state.fallback is not None and state.fallback is not before.fallback:
            fallback = state.fallback
            note = fallback_note(fallback.detail, fallback.provider, fallback.model)
            self.chat.restart_answer(note, fallback.can_wait)
            self.status_message.emit(note, 10_000)
        if state.phase == "reading" and state.progress != before.progress:
            self.chat.set_waiting_text(state.reading_text)
        if state.phase == "streaming" and state.text != before.text:
            self.chat.append_delta(state.text[len(before.text):])
        if state.ended and not before.ended:
            self._ended(state, event)

    def _ended(self, state: AnswerState, event: object) -> None:
        if state.error is None:  # Finished
            self.chat.finish_answer(AnswerInfo.from_state(state))
            self.finished.emit(event)
            return
        info = AnswerInfo.from_state(state) if state.route and state.route.attempts else None
        self.chat.finish_answer(info, state.error, state.error_detail)
        if state.discarded:
            # The first question got no answer and left no conversation: the
            # next one starts a new conversation, and the question goes back
            # to the input to be sent again.
            self.conversation_id = None
            self.discarded.emit()
            user = self.chat.last("user")
            if user is not None and not self.input.toPlainText().strip():
                self.input.setPlainText(user.text)
        self.status_message.emit(state.error, 10_000)
        self.failed.emit(state.error)

    def _on_failed(self, message: str, details: str) -> None:
        self.chat.finish_answer(None, message, details)
        show_error(self.window(), message, details)
        self.failed.emit(message)

    def _on_done(self) -> None:
        if self.chat.streaming:  # ended without Finished or Error: still say so
            self.chat.finish_answer(None, "The answer ended unexpectedly.")
        self.chat.set_busy(False)
        self.box.set_busy(False)
        after, self._after_answer = self._after_answer, None
        if after is not None:
            after()

    # -- the question box -------------------------------------------------------------

    def set_notice(self, text: str) -> None:
        self.box.set_notice(text)

    def focus_input(self) -> None:
        self.activateWindow()
        self.input.setFocus()

    def set_first_run_hint(self, bundled_demo: bool, suggestion: ModelRow | None) -> None:
        """The empty chat explains the bundled demo model and what to do next."""
        self.chat.set_hint(first_run_hint(bundled_demo, suggestion))

    def _on_hint_link(self, link: str) -> None:
        if link.startswith("hearth:download:"):
            self.download_requested.emit(link.removeprefix("hearth:download:"))
        elif link == "hearth:models":
            self.models_requested.emit()
        elif link == "hearth:folders":
            self.folders_requested.emit()

    def clear(self) -> None:
        self.conversation_id = None
        self.cancel_edit()
        self.chat.clear()

    def open(self, conversation_id: str) -> None:
        """Show a stored conversation (read off the GUI thread); `opened` follows."""
        if self.busy:
            self.stop(wait_ms=5_000)
        assistant = self.assistant

        def load() -> tuple[Conversation, list[Message]]:
            conv = assistant.store.get(conversation_id)
            return conv, assistant.store.messages(conv.id)

        run_op(self.workers, load, self._show,
               lambda m, d: show_error(self.window(), m, d), self)

    def _show(self, loaded: tuple[Conversation, list[Message]]) -> None:
        conv, messages = loaded
        self.cancel_edit()
        self.conversation_id = conv.id
        self.chat.load(messages)
        last = self.chat.last("assistant")
        self.sources_changed.emit(last.info.sources if last and last.info else ())
        self.opened.emit(conv)
