"""The main window: conversations on the left, the chat in the middle, the
answer's sources on the right, model and network state in the status bar.
Everything slow runs in workers; results arrive through signals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.answer import AnswerSession
from app.core.assistant import MAX_QUESTION_CHARS, AskOptions, Assistant
from app.core.conversations import Conversation, ConversationStore, Message
from app.core.events import (
    Delta,
    Error,
    Fallback,
    Finished,
    Progress,
    Source,
    Sources,
    Started,
)
from app.core.knowledge.protocol import Activity, IndexState
from app.core.llm.registry import load_providers
from app.core.models.library import ModelRow
from app.ui.about import add_help_menu
from app.ui.answer_info import AnswerInfo, fallback_note
from app.ui.chat_view import ChatView, MessageWidget
from app.ui.conversation_list import ConversationList
from app.ui.details_dialog import AnswerDetailsDialog
from app.ui.errors import show_error
from app.ui.sources_panel import SourcesPanel
from app.ui.theme import app_icon
from app.ui.workers import GeneratorWorker, WorkerSet, call_in_background, run_op

LOAD_HINT = "Choose another model in Models (Ctrl+M) or a GGUF file in Settings (Ctrl+,)."


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


def _action(parent: QObject, text: str, shortcut: str, slot: Callable[[], object]) -> QAction:
    action = QAction(text, parent)
    action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(slot)
    return action


def window_state(config_dir: Path) -> QSettings:
    """Window geometry and small UI facts, in Hearth's own config folder."""
    return QSettings(str(config_dir / "window.ini"), QSettings.Format.IniFormat)


class MainWindow(QMainWindow):
    answer_finished = Signal(object)  # Finished
    answer_failed = Signal(str)
    conversation_opened = Signal(str)  # conversation id, once it is shown
    routes_refreshed = Signal()
    model_state_changed = Signal(str)  # loading, ready, error
    settings_requested = Signal()
    folders_requested = Signal()
    models_requested = Signal()
    download_requested = Signal(str)  # catalog model id (from the first-run hint)
    model_switched = Signal(object)  # LoadedModel
    index_pause_toggled = Signal(bool)
    quit_requested = Signal()
    hidden_to_tray = Signal()
    closed = Signal()

    def __init__(self, assistant: Assistant, state: QSettings | None = None) -> None:
        super().__init__()
        self.assistant = assistant
        self.state = state or window_state(assistant.paths.config_dir)
        self.conversation_id: str | None = None
        self.model_state = "idle"
        self._closed = False
        self.hide_on_close: Callable[[], bool] = lambda: False
        self._workers = WorkerSet()
        self._worker: GeneratorWorker | None = None
        self._loader: GeneratorWorker | None = None
        # The answer being streamed (or the last one), folded from its events.
        self.session = AnswerSession()
        self._after_answer: Callable[[], None] | None = None
        self._dropping = False
        self._routes_generation = 0
        self._sources: tuple[Source, ...] = ()
        self._editing: MessageWidget | None = None
        self._load_details = ""
        self._details: AnswerDetailsDialog | None = None
        self._model_rows: list[ModelRow] = []
        self._switching: str | None = None
        self.setWindowTitle("Hearth")
        self.setWindowIcon(app_icon())
        self.resize(1100, 720)

        # conversations
        self.conversations = ConversationList(lambda: self.assistant.store)
        self.conversations.selected.connect(self.open_conversation)
        self.conversations.new_requested.connect(self.new_conversation)
        self.conversations.deleted.connect(self._on_deleted)
        self.conversations.failed.connect(lambda m, d: show_error(self, m, d))

        # chat
        self.chat = ChatView()
        self.chat.regenerate_requested.connect(self.regenerate)
        self.chat.keep_waiting_requested.connect(self.keep_waiting)
        self.chat.edit_requested.connect(self.edit_last)
        self.chat.details_requested.connect(self.show_details)
        self.chat.status_message.connect(lambda m: self.statusBar().showMessage(m, 3000))
        self.chat.hint_link_activated.connect(self._on_hint_link)
        self.input_notice = QLabel()
        self.input_notice.setWordWrap(True)
        self.input_notice.setObjectName("inputNotice")
        self.input_notice.hide()
        self.input = QPlainTextEdit()
        self.input.setPlaceholderText("Ask Hearth…  (Enter sends, Shift+Enter for a new line)")
        self.input.setMaximumHeight(110)
        self.input.setToolTip("Enter sends, Shift+Enter starts a new line (Ctrl+L)")
        self._enter_filter = _EnterSends(self.send)
        self.input.installEventFilter(self._enter_filter)
        self.send_button = QPushButton("Send")
        self.send_button.setToolTip("Send the question (Enter)")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.route_chooser = QComboBox()
        self.route_chooser.setObjectName("routeChooser")
        self.route_chooser.setToolTip(
            "Who answers the next question: Auto (the local model, then the remote "
            "providers in order), only the local model, or one remote provider")
        self.refresh_routes()
        self._build_files_chooser()

        row = QHBoxLayout()
        row.setSpacing(8)
        row.addWidget(self.input, 1)
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.route_chooser)
        buttons.addWidget(self.files_button)
        buttons.addStretch(1)
        row.addLayout(buttons)
        center = QWidget()
        layout = QVBoxLayout(center)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)
        layout.addWidget(self.chat, 1)
        layout.addWidget(self.input_notice)
        layout.addLayout(row)

        # sources
        self.sources_panel = SourcesPanel()
        self.sources_panel.open_failed.connect(lambda m, d: show_error(self, m, d))
        self.sources_panel.hide()

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.conversations)
        self.splitter.addWidget(center)
        self.splitter.addWidget(self.sources_panel)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([240, 640, 260])
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)

        self._build_status_bar()
        self._build_menus()
        self._restore_geometry()
        self.conversations.refresh()
        self.set_offline(self.assistant.settings.snapshot().network.offline)
        self.input.setFocus()

    def _build_status_bar(self) -> None:
        self.model_status = QToolButton()
        self.model_status.setObjectName("modelStatus")
        self.model_status.setText("Model: not loaded yet")
        self.model_status.setAutoRaise(True)
        self.model_status.setToolTip("The local model: click to choose another")
        self.model_status.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.model_menu = QMenu(self.model_status)
        self.model_status.setMenu(self.model_menu)
        self.set_model_rows([])
        self.model_progress = QProgressBar()
        self.model_progress.setRange(0, 0)  # llama.cpp gives no load progress: a busy bar
        self.model_progress.setMaximumWidth(120)
        self.model_progress.setMaximumHeight(14)
        self.model_progress.setTextVisible(False)
        self.model_progress.hide()
        self.model_details = QToolButton()
        self.model_details.setText("Details")
        self.model_details.setAutoRaise(True)
        self.model_details.setToolTip("Why the model could not be loaded")
        self.model_details.clicked.connect(
            lambda: show_error(self, self.model_status.text(), self._load_details))
        self.model_details.hide()
        self.offline_label = QLabel("Offline")
        self.offline_label.setObjectName("offline")
        self.offline_label.setToolTip("Offline mode: nothing is sent over the network")
        self.index_progress = QProgressBar()
        self.index_progress.setMaximumWidth(100)
        self.index_progress.setMaximumHeight(14)
        self.index_progress.setTextVisible(False)
        self.index_progress.hide()
        self.index_status = QToolButton()
        self.index_status.setObjectName("indexStatus")
        self.index_status.setAutoRaise(True)
        self.index_status.setToolTip("Your indexed folders: click to open Folders")
        self.index_status.clicked.connect(self.folders_requested.emit)
        self.index_status.hide()
        self.index_pause = QToolButton()
        self.index_pause.setText("Pause")
        self.index_pause.setAutoRaise(True)
        self.index_pause.setCheckable(True)
        self.index_pause.setToolTip("Pause indexing (the index stays; changes are picked up "
                                    "on resume)")
        self.index_pause.toggled.connect(self._on_pause_toggled)
        self.index_pause.hide()
        bar = self.statusBar()
        bar.addWidget(self.model_progress)
        bar.addWidget(self.model_status, 1)
        bar.addWidget(self.model_details)
        bar.addPermanentWidget(self.index_progress)
        bar.addPermanentWidget(self.index_status)
        bar.addPermanentWidget(self.index_pause)
        bar.addPermanentWidget(self.offline_label)

    def _build_menus(self) -> None:
        menu = self.menuBar().addMenu("&Hearth")
        self.new_action = _action(self, "&New conversation", "Ctrl+N", self.new_conversation)
        self.settings_action = _action(self, "&Settings…", "Ctrl+,",
                                       self.settings_requested.emit)
        self.folders_action = _action(self, "&Folders…", "Ctrl+Shift+O",
                                      self.folders_requested.emit)
        self.folders_action.setToolTip("The folders Hearth indexes and answers from")
        self.models_action = _action(self, "&Models…", "Ctrl+M", self.models_requested.emit)
        self.models_action.setToolTip("Download, import and choose models")
        self.quit_action = _action(self, "&Quit", "Ctrl+Q", self.quit_requested.emit)
        menu.addAction(self.new_action)
        menu.addSeparator()
        menu.addAction(self.folders_action)
        menu.addAction(self.models_action)
        menu.addAction(self.settings_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)
        view = self.menuBar().addMenu("&View")
        self.sources_action = QAction("&Sources panel", self)
        self.sources_action.setCheckable(True)
        self.sources_action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.sources_action.toggled.connect(self.sources_panel.setVisible)
        view.addAction(self.sources_action)
        self.stats_action = _action(self, "S&tatistics…", "", self.show_stats)
        view.addAction(self.stats_action)
        add_help_menu(self, self.assistant.paths,
                      lambda: self.assistant.settings.snapshot().ui.quick_ask_shortcut)
        for key, slot in ((Qt.Key.Key_Escape, self.escape), ("Ctrl+L", self.focus_input),
                          ("Ctrl+F", self.focus_search)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.activated.connect(slot)

    # -- geometry ----------------------------------------------------------------

    def _restore_geometry(self) -> None:
        geometry = self.state.value("main/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        splitter = self.state.value("main/splitter")
        if isinstance(splitter, QByteArray):
            self.splitter.restoreState(splitter)

    def save_geometry(self) -> None:
        self.state.setValue("main/geometry", self.saveGeometry())
        self.state.setValue("main/splitter", self.splitter.saveState())
        self.state.sync()

    # -- model -------------------------------------------------------------------

    def preload_model(self) -> None:
        """Load the local model in the background so the first answer is quick."""
        if self._closed:
            return
        self._set_model_state("loading", "Model: loading…")
        assistant = self.assistant
        self._loader = call_in_background(lambda: assistant.local_provider().load(), self)
        self._loader.item.connect(self._on_model_loaded)
        self._loader.failed.connect(self._on_model_failed)
        self._workers.start(self._loader)

    def _on_model_loaded(self, loaded: object) -> None:
        name, n_ctx = getattr(loaded, "name", "?"), getattr(loaded, "n_ctx", 0)
        fallback = getattr(loaded, "fallback", None)
        where = " · on the CPU (GPU offload failed)" if fallback else ""
        self._set_model_state("ready", f"Model: {name} · ready · context {n_ctx}{where}")
        offload = getattr(loaded, "offload", "")
        if offload:
            self.model_status.setToolTip(f"{self.model_status.text()}\n{offload}\n"
                                         "Click to choose another model.")
        if fallback:
            self.statusBar().showMessage(f"{name}: {fallback}.", 15_000)

    # -- choosing a model ------------------------------------------------------------

    def set_model_rows(self, rows: list[ModelRow]) -> None:
        """The installed models changed: rebuild the picker in the status bar."""
        self._model_rows = list(rows)
        menu = self.model_menu
        menu.clear()
        for row in rows:
            if row.installed is None:
                continue
            action = menu.addAction(f"{row.name}  ·  {row.fit.verdict}")
            action.setCheckable(True)
            action.setChecked(row.current)
            action.setToolTip(row.fit.summary())
            action.setData(row.id)
            action.triggered.connect(lambda _c=False, r=row: self.choose_model(r))
        menu.addSeparator()
        menu.addAction("Models…", self.models_requested.emit)

    def choose_model(self, row: ModelRow, force: bool = False) -> None:
        """Use an installed model: it loads in the background; the current one
        keeps working if it fails."""
        if row.current or row.installed is None or self._closed:
            return
        if not row.fit.fits and not force:
            answer = QMessageBox.question(
                self, "Hearth", f"{row.name} will not fit: {row.fit.summary()}. Load it anyway?")
            if answer != QMessageBox.StandardButton.Yes:
                self.set_model_rows(self._model_rows)  # undo the check mark
                return
            force = True
        path = "" if row.installed.source == "bundled" else str(row.installed.path)
        self.switch_model(row.name, path, force)

    def switch_model(self, name: str, path: str, force: bool = False) -> None:
        if self.busy:
            self.stop()
        before = self.model_status.text()
        self._switching = name
        self._set_model_state("loading", f"Model: loading {name}…")
        assistant = self.assistant
        worker = call_in_background(lambda: assistant.switch_model(path, force), self)

        def loaded(result: object) -> None:
            self._switching = None
            self._load_details = ""
            self._on_model_loaded(result)
            self.model_switched.emit(result)

        def failed(message: str, details: str) -> None:
            self._switching = None
            self._load_details = details
            self._set_model_state("ready" if before.find("ready") >= 0 else "error", before)
            show_error(self, f"{name} could not be loaded, so Hearth keeps the model it had: "
                       f"{message}", details)
            self.model_switched.emit(None)
            self.preload_model()

        worker.item.connect(loaded)
        worker.failed.connect(failed)
        self._workers.start(worker)

    def set_first_run_hint(self, bundled_demo: bool, suggestion: ModelRow | None) -> None:
        """The empty chat explains the bundled demo model and what to do next."""
        if not bundled_demo:
            self.chat.set_hint("")
            return
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
        self.chat.set_hint("".join(parts))

    def _on_hint_link(self, link: str) -> None:
        if link.startswith("hearth:download:"):
            self.download_requested.emit(link.removeprefix("hearth:download:"))
        elif link == "hearth:models":
            self.models_requested.emit()
        elif link == "hearth:folders":
            self.folders_requested.emit()

    def _on_model_failed(self, message: str, details: str) -> None:
        self._load_details = details
        self._set_model_state("error", f"Model: {message} {LOAD_HINT}")

    def _set_model_state(self, state: str, text: str) -> None:
        self.model_state = state
        self.model_status.setText(text)
        self.model_status.setToolTip(f"{text}\nClick to choose another model.")
        self.model_progress.setVisible(state == "loading")
        self.model_details.setVisible(state == "error" and bool(self._load_details))
        self.model_state_changed.emit(state)

    def set_offline(self, offline: bool) -> None:
        self.offline_label.setVisible(offline)

    # -- indexed folders -------------------------------------------------------------

    def _build_files_chooser(self) -> None:
        """"Use my files" and which folders: a toggle with a menu of folders."""
        self.files_button = QToolButton()
        self.files_button.setObjectName("filesButton")
        self.files_button.setText("Use my files")
        self.files_button.setCheckable(True)
        self.files_button.setChecked(bool(self.state.value("ask/use_files", True, type=bool)))
        self.files_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.files_button.setToolTip("Answer from your indexed folders and cite them; "
                                     "the arrow picks which folders")
        self.files_button.toggled.connect(
            lambda on: self.state.setValue("ask/use_files", on))
        self.files_menu = QMenu(self.files_button)
        self.files_button.setMenu(self.files_menu)
        self._folder_group = QActionGroup(self)
        self._folder_paths: list[str] = []
        self._folder_group.triggered.connect(lambda _a: self._update_files_button())
        self.set_folders([])

    def set_folders(self, paths: list[str]) -> None:
        """The indexed folders changed: rebuild the chooser, keeping the choice."""
        chosen = self.chosen_folder()
        self._folder_paths = list(paths)
        menu = self.files_menu
        menu.clear()
        for action in self._folder_group.actions():
            self._folder_group.removeAction(action)
        everything = menu.addAction("All folders")
        everything.setCheckable(True)
        everything.setData(None)
        self._folder_group.addAction(everything)
        if paths:
            menu.addSeparator()
        for path in paths:
            action = menu.addAction(path)
            action.setCheckable(True)
            action.setData(path)
            self._folder_group.addAction(action)
            if path == chosen:
                action.setChecked(True)
        if self._folder_group.checkedAction() is None:
            everything.setChecked(True)
        menu.addSeparator()
        menu.addAction("Folders…", self.folders_requested.emit)
        self._update_files_button()

    def chosen_folder(self) -> str | None:
        action = self._folder_group.checkedAction()
        data = action.data() if action is not None else None
        return str(data) if data else None

    def _update_files_button(self) -> None:
        folder = self.chosen_folder()
        if not self._folder_paths:
            self.files_button.setToolTip("No folders are indexed yet: add some in Folders "
                                         "(Ctrl+Shift+O) and answers cite them")
        elif folder:
            self.files_button.setToolTip(f"Answers come from {folder} only")
        else:
            self.files_button.setToolTip(f"Answers come from your {len(self._folder_paths)} "
                                         "indexed folder(s); the arrow picks one")
        self.files_button.setText("Use my files" if folder is None
                                  else f"Use {Path(folder).name or folder}")

    def ask_options(self) -> AskOptions:
        folder = self.chosen_folder()
        return AskOptions(route=self.route(), use_files=self.files_button.isChecked(),
                          folders=(folder,) if folder else None)

    def set_index_state(self, state: IndexState, text: str) -> None:
        """The indexer's state for the status bar."""
        self.index_status.setVisible(state != IndexState.NONE and bool(text))
        self.index_status.setText(text)
        self.index_pause.setVisible(
            state in (IndexState.IDLE, IndexState.INDEXING, IndexState.PAUSED))
        self.index_pause.blockSignals(True)
        self.index_pause.setChecked(state == IndexState.PAUSED)
        self.index_pause.setText("Resume" if state == IndexState.PAUSED else "Pause")
        self.index_pause.blockSignals(False)
        if state != IndexState.INDEXING:
            self.index_progress.hide()

    def set_index_activity(self, activity: Activity) -> None:
        total = activity.total
        self.index_progress.setVisible(activity.busy and total > 0)
        if total:
            self.index_progress.setRange(0, total)
            self.index_progress.setValue(activity.done)
        if activity.current:
            self.index_status.setToolTip(f"Indexing {activity.current}")
        else:
            self.index_status.setToolTip("Your indexed folders: click to open Folders")

    def _on_pause_toggled(self, paused: bool) -> None:
        self.index_pause.setText("Resume" if paused else "Pause")
        self.index_pause_toggled.emit(paused)

    # -- conversations -------------------------------------------------------------

    def new_conversation(self) -> None:
        if self.busy:
            self.stop()
        self.conversation_id = None
        self._cancel_edit()
        self.chat.clear()
        self._set_sources(())
        self.conversations.select(None)
        self.setWindowTitle("Hearth")
        self.focus_input()

    def open_conversation(self, conversation_id: str) -> None:
        """Show a stored conversation (also used by quick-ask's Continue)."""
        if self.busy:
            self.stop()
            if self._worker is not None:
                self._worker.wait(5_000)
        assistant = self.assistant

        def store() -> ConversationStore:
            return assistant.store

        def load() -> tuple[Conversation, list[Message]]:
            conv = store().get(conversation_id)
            return conv, store().messages(conv.id)

        run_op(self._workers, load, self._show_conversation,
               lambda m, d: show_error(self, m, d), self)

    def _show_conversation(self, loaded: tuple[Conversation, list[Message]]) -> None:
        conv, messages = loaded
        self._cancel_edit()
        self.conversation_id = conv.id
        self.chat.load(messages)
        last = self.chat.last("assistant")
        self._set_sources(last.info.sources if last and last.info else ())
        self.conversations.refresh(conv.id)
        self.conversations.select(conv.id)
        self.setWindowTitle(f"{conv.title} — Hearth")
        self.conversation_opened.emit(conv.id)

    def _on_deleted(self, conversation_id: str) -> None:
        if conversation_id == self.conversation_id:
            self.new_conversation()

    # -- asking --------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._worker is not None and self._worker.running

    def send(self) -> None:
        question = self.input.toPlainText().strip()
        if not question or self.busy:
            return
        if len(question) > MAX_QUESTION_CHARS:
            # Refused here so a huge paste is never drawn into the view; the
            # text stays in the input so nothing is lost.
            self._notice(f"The question is {len(question):,} characters long; Hearth accepts "
                         f"up to {MAX_QUESTION_CHARS:,}. Shorten it and send again.")
            self.answer_failed.emit(self.input_notice.text())
            return
        if self._editing is not None:
            editing = self._editing
            self._cancel_edit()
            self.input.clear()
            # The question asked again replaces the old one and what followed.
            self._drop_from(editing, lambda: self.ask(question))
            return
        self.input.clear()
        self.ask(question)

    def ask(self, question: str, new_conversation: bool = False, patient: bool = False,
            fresh: bool = False) -> None:
        """Send `question` (in a new conversation if asked) and stream the answer;
        `patient`: wait for the local model without a deadline."""
        if self.busy or self._closed:
            return
        if new_conversation:
            self.new_conversation()
        self._notice("")
        self.chat.add_user(question)
        self.chat.start_answer()
        self.chat.set_busy(True)
        self.session = AnswerSession()
        self._set_sources(())
        conversation = self.conversation_id
        assistant = self.assistant
        options = replace(self.ask_options(), patient=patient, fresh=fresh)
        self._worker = GeneratorWorker(
            lambda cancel: assistant.ask(question, conversation, options, cancel), self)
        self._worker.item.connect(self._on_event)
        self._worker.failed.connect(self._on_failed)
        self._worker.done.connect(self._on_done)
        self.send_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self._workers.start(self._worker)

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()

    def route(self) -> str | None:
        """The chosen route for the next question (a policy or a provider's name)."""
        data = self.route_chooser.currentData()
        return str(data) if data else None

    def refresh_routes(self) -> None:
        """Fill the route chooser from the configured providers, keeping the
        choice when it still exists (else the routing.policy setting)."""
        paths = self.assistant.paths
        if not self.route_chooser.count():
            self._fill_routes([])  # Auto and Local only need no file
        # Only the newest reading fills the chooser (an older one may end later).
        self._routes_generation += 1
        generation = self._routes_generation

        def filled(names: list[str]) -> None:
            if generation == self._routes_generation:
                self._fill_routes(names)

        def failed(message: str, _details: str) -> None:
            self.statusBar().showMessage(message, 10_000)
            filled([])

        run_op(self._workers, lambda: [p.name for p in load_providers(paths)], filled,
               failed, self)

    def _fill_routes(self, names: list[str]) -> None:
        current = self.route_chooser.currentData() if self.route_chooser.count() else None
        chooser = self.route_chooser
        chooser.blockSignals(True)
        chooser.clear()
        chooser.addItem("Auto", "auto")
        chooser.addItem("Local only", "local-only")
        if names:
            chooser.addItem("Remote first", "remote-first")
        for name in names:
            chooser.addItem(name, name)
        wanted = current or self.assistant.settings.snapshot().routing.policy
        index = chooser.findData(wanted)
        chooser.setCurrentIndex(index if index >= 0 else 0)
        chooser.blockSignals(False)
        self.routes_refreshed.emit()

    def set_default_route(self, policy: str) -> None:
        """The routing.policy setting changed: the chooser follows it."""
        index = self.route_chooser.findData(policy)
        if index >= 0:
            self.route_chooser.setCurrentIndex(index)

    def escape(self) -> None:
        if self.busy:
            self.stop()
        elif self._editing is not None:
            self._cancel_edit()
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
        self._notice("Editing your last question: Enter sends it again in its place, "
                     "Esc cancels.")
        self.focus_input()

    def _cancel_edit(self) -> None:
        if self._editing is not None:
            self._editing = None
            self._notice("")

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
            show_error(self, message_, details)

        if not (conversation and message):
            dropped(None)
            return
        self._dropping = True
        assistant = self.assistant

        def store() -> ConversationStore:
            return assistant.store
        run_op(self._workers, lambda: store().delete_messages_from(conversation, message),
               dropped, failed, self)

    def _on_event(self, event: object) -> None:
        state = self.session.fold(event)
        if isinstance(event, Started):
            new = self.conversation_id != state.conversation_id
            self.conversation_id = state.conversation_id
            user = self.chat.last("user")
            if user is not None:
                user.message_id = state.question_id
            if new:
                self.conversations.refresh(state.conversation_id)
                self.conversations.select(state.conversation_id)
        elif isinstance(event, Sources):
            self._set_sources(state.sources)
        elif isinstance(event, Progress):
            self.chat.set_waiting_text(state.reading_text)
        elif isinstance(event, Delta):
            self.chat.append_delta(event.text)
        elif isinstance(event, Fallback):
            note = fallback_note(event.detail, event.provider, event.model)
            self.chat.restart_answer(note, event.can_wait)
            self.statusBar().showMessage(note, 10_000)
        elif isinstance(event, Finished):
            self.chat.finish_answer(AnswerInfo.from_state(state))
            self.conversations.refresh(state.conversation_id)
            self.answer_finished.emit(event)
        elif isinstance(event, Error):
            info = AnswerInfo.from_state(state) if state.route and state.route.attempts \
                else None
            self.chat.finish_answer(info, state.error, state.error_detail)
            if state.discarded:
                # The first question got no answer and left no conversation:
                # the next one starts a new conversation, and the question
                # goes back to the input to be sent again.
                self.conversation_id = None
                self.conversations.refresh()
                user = self.chat.last("user")
                if user is not None and not self.input.toPlainText().strip():
                    self.input.setPlainText(user.text)
            self.statusBar().showMessage(event.message, 10_000)
            self.answer_failed.emit(event.message)

    def _on_failed(self, message: str, details: str) -> None:
        self.chat.finish_answer(None, message, details)
        show_error(self, message, details)
        self.answer_failed.emit(message)

    def _on_done(self) -> None:
        if self.chat.streaming:  # ended without Finished or Error: still say so
            self.chat.finish_answer(None, "The answer ended unexpectedly.")
        self.chat.set_busy(False)
        self.send_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        after, self._after_answer = self._after_answer, None
        if after is not None:
            after()

    def _set_sources(self, sources: tuple[Source, ...]) -> None:
        self._sources = tuple(sources)
        self.sources_panel.set_sources(self._sources)
        if self._sources:
            self.sources_action.setChecked(True)

    def show_details(self, info: AnswerInfo | None) -> None:
        if info is None:
            return
        if info.sources:
            self._set_sources(info.sources)
        self._details = AnswerDetailsDialog(info, self)
        self._details.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._details.show()

    def show_stats(self) -> None:
        from app.ui.stats_view import StatsDialog

        dialog = StatsDialog(self.assistant.paths, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def show_notice(self, text: str) -> None:
        """A line above the question box (e.g. a settings file with mistakes) until the
        next question."""
        self._notice(text)

    def _notice(self, text: str) -> None:
        self.input_notice.setText(text)
        self.input_notice.setVisible(bool(text))

    def focus_input(self) -> None:
        self.activateWindow()
        self.input.setFocus()

    def focus_search(self) -> None:
        self.conversations.search.setFocus()
        self.conversations.search.selectAll()

    def show_and_raise(self) -> None:
        self.show()
        self.setWindowState(self.windowState() & ~Qt.WindowState.WindowMinimized)
        self.raise_()
        self.activateWindow()

    # -- shutting down -------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop background work and wait for it, then free the model."""
        self._closed = True
        self._workers.stop_all()
        self.conversations.shutdown()
        self.sources_panel.shutdown()
        self.assistant.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_geometry()
        if self.hide_on_close():
            event.ignore()
            self.hide()
            self.hidden_to_tray.emit()
            return
        self.shutdown()
        super().closeEvent(event)
        self.closed.emit()
