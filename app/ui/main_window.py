"""The main window: conversations on the left, the conversation in the
middle, the answer's sources on the right, model and index state in the
status bar. It only assembles parts that draw from typed state objects
(`app.ui.state` says how): the status bar from the model state and the index
status, the conversation view from the answer's `AnswerState`, the route and
folder choosers. It connects states to parts and user actions to operations,
which run in its one `WorkerSet` (`run_op`, `GeneratorWorker`)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QMainWindow, QSplitter

from app.core.answer import AnswerSession, AnswerState
from app.core.assistant import AskOptions, Assistant
from app.core.conversations import Conversation
from app.core.events import Source
from app.core.knowledge.protocol import Activity, IndexState
from app.core.models.library import ModelRow
from app.ui import window_state
from app.ui.about import add_help_menu
from app.ui.answer_info import AnswerInfo
from app.ui.conversation_list import ConversationList
from app.ui.conversation_view import ConversationView
from app.ui.details_dialog import AnswerDetailsDialog
from app.ui.errors import show_error
from app.ui.folder_chooser import FolderChooser
from app.ui.model_state import ModelLoader, freeze_after_first_load
from app.ui.route_chooser import RouteChooser
from app.ui.sources_panel import SourcesPanel
from app.ui.state import IndexStatusState, Observed
from app.ui.status_bar import StatusBar
from app.ui.theme import app_icon
from app.ui.workers import GeneratorWorker, WorkerSet


def _action(parent: QObject, text: str, shortcut: str, slot: Callable[[], object]) -> QAction:
    action = QAction(text, parent)
    action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(slot)
    return action


class MainWindow(QMainWindow):
    answer_finished = Signal(object)  # Finished
    answer_failed = Signal(str)
    conversation_opened = Signal(str)  # conversation id, once it is shown
    routes_refreshed = Signal()
    model_state_changed = Signal(str)  # idle, loading, ready, error
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
        self.state = state or window_state.window_state(assistant.paths.config_dir)
        self._closed = False
        self.hide_on_close: Callable[[], bool] = lambda: False
        # The window's one owner of background work: every part's operation
        # runs in it, and shutdown() stops them all.
        self.workers = WorkerSet()
        self._details: AnswerDetailsDialog | None = None
        self.setWindowTitle("Hearth")
        self.setWindowIcon(app_icon())
        self.resize(1100, 720)

        # states
        self.model = ModelLoader(assistant, self.workers, self)
        self.model.closed = lambda: self._closed
        self.index = IndexStatusState(self)
        self.folders: Observed[tuple[str, ...]] = Observed((), self)

        # parts
        self.conversations = ConversationList(lambda: self.assistant.store, self.workers)
        self.route_chooser = RouteChooser(assistant.paths, self.workers,
                                          lambda: assistant.settings.snapshot().routing.policy)
        self.files_button = FolderChooser(self.state)
        self.files_menu = self.files_button.menu_
        self.view = ConversationView(assistant, self.workers, self.ask_options,
                                     [self.route_chooser, self.files_button])
        self.chat, self.input, self.input_notice = self.view.chat, self.view.input, \
            self.view.notice
        self.send_button, self.stop_button = self.view.send_button, self.view.stop_button
        self.sources_panel = SourcesPanel(self.workers)
        self.sources_panel.hide()
        self.status = StatusBar(self.model.state, self.index)
        self.setStatusBar(self.status)
        self.model_status, self.model_menu = self.status.model_status, self.status.model_menu
        self.model_details, self.offline_label = self.status.model_details, \
            self.status.offline_label
        self.index_status, self.index_pause = self.status.index_status, self.status.index_pause

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for i, (part, stretch) in enumerate(((self.conversations, 0), (self.view, 1),
                                             (self.sources_panel, 0))):
            self.splitter.addWidget(part)
            self.splitter.setStretchFactor(i, stretch)
        self.splitter.setSizes([240, 640, 260])
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)
        self._build_menus()
        self._connect()
        window_state.restore(self.state, self, self.splitter)
        self.route_chooser.refresh()
        self.conversations.refresh()
        self.set_offline(self.assistant.settings.snapshot().network.offline)
        self.input.setFocus()

    def _connect(self) -> None:
        def error(message: str, details: str) -> None:
            show_error(self, message, details)

        def note(message: str, ms: int = 3000) -> None:
            self.statusBar().showMessage(message, ms)

        self.conversations.selected.connect(self.open_conversation)
        self.conversations.new_requested.connect(self.new_conversation)
        self.conversations.deleted.connect(self._on_deleted)
        self.conversations.failed.connect(error)
        self.sources_panel.open_failed.connect(error)
        self.chat.details_requested.connect(self.show_details)
        self.chat.status_message.connect(note)
        view = self.view
        view.started.connect(self._on_started)
        view.opened.connect(self._on_opened)
        view.finished.connect(lambda e: self.conversations.refresh(e.conversation_id))
        view.finished.connect(self.answer_finished)
        view.failed.connect(self.answer_failed)
        view.discarded.connect(lambda: self.conversations.refresh())
        view.sources_changed.connect(self._set_sources)
        view.status_message.connect(note)
        view.models_requested.connect(self.models_requested)
        view.folders_requested.connect(self.folders_requested)
        view.download_requested.connect(self.download_requested)
        view.answer.changed.connect(lambda state, _e: self.model.note_answer(state))
        self.route_chooser.refreshed.connect(self.routes_refreshed)
        self.route_chooser.failed.connect(lambda m: note(m, 10_000))
        self.files_button.folders_requested.connect(self.folders_requested)
        self.folders.changed.connect(lambda paths: self.files_button.set_folders(list(paths)))
        self.model.state.changed.connect(lambda s: self.model_state_changed.emit(s.phase))
        self.model.state.changed.connect(freeze_after_first_load)
        self.model.message.connect(note)
        self.model.switched.connect(self.model_switched)
        self.model.switch_failed.connect(lambda name, message, details: show_error(
            self, f"{name} could not be loaded, so Hearth keeps the model it had: {message}",
            details))
        self.status.model_chosen.connect(self.switch_model)
        self.status.models_requested.connect(self.models_requested)
        self.status.folders_requested.connect(self.folders_requested)
        self.status.pause_toggled.connect(self.index_pause_toggled)

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
        for action in (self.new_action, None, self.folders_action, self.models_action,
                       self.settings_action, None, self.quit_action):
            if action is None:
                menu.addSeparator()
            else:
                menu.addAction(action)
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
        for key, slot in ((Qt.Key.Key_Escape, self.view.escape), ("Ctrl+L", self.focus_input),
                          ("Ctrl+F", self.focus_search)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.activated.connect(slot)

    def save_geometry(self) -> None:
        window_state.save(self.state, self, self.splitter)

    # -- what the app tells the window ---------------------------------------------------

    @property
    def model_state(self) -> str:
        """idle (not loaded yet), loading, ready or error."""
        return self.model.phase

    def preload_model(self) -> None:
        """Load the local model in the background so the first answer is quick."""
        self.model.preload()

    def set_model_rows(self, rows: list[ModelRow]) -> None:
        self.status.set_model_rows(rows)

    def choose_model(self, row: ModelRow, force: bool = False) -> None:
        """Use an installed model (asks first when it will not fit)."""
        if not self._closed:
            self.status.choose(row, force)

    def switch_model(self, name: str, path: str, force: bool = False) -> None:
        if self.busy:
            self.stop()
        self.model.switch(name, path, force)

    def set_first_run_hint(self, bundled_demo: bool, suggestion: ModelRow | None) -> None:
        self.view.set_first_run_hint(bundled_demo, suggestion)

    def set_offline(self, offline: bool) -> None:
        self.status.set_offline(offline)

    def set_index_state(self, state: IndexState, text: str) -> None:
        """The indexer's state for the status bar."""
        self.index.set_state(state, text)

    def set_index_activity(self, activity: Activity) -> None:
        self.index.set_activity(activity)

    def set_folders(self, paths: list[str]) -> None:
        """The indexed folders changed: the folder chooser follows."""
        self.folders.set(tuple(paths))

    def refresh_routes(self) -> None:
        self.route_chooser.refresh()

    def set_default_route(self, policy: str) -> None:
        """The routing.policy setting changed: the chooser follows it."""
        self.route_chooser.set_default(policy)

    def ask_options(self) -> AskOptions:
        return AskOptions(route=self.route_chooser.route(), use_files=self.files_button.isChecked(),
                          folders=self.files_button.folders())

    # -- conversations -------------------------------------------------------------

    @property
    def conversation_id(self) -> str | None:
        return self.view.conversation_id

    @conversation_id.setter
    def conversation_id(self, value: str | None) -> None:
        self.view.conversation_id = value

    def new_conversation(self) -> None:
        if self.busy:
            self.stop()
        self.view.clear()
        self._set_sources(())
        self.conversations.select(None)
        self.setWindowTitle("Hearth")
        self.focus_input()

    def open_conversation(self, conversation_id: str) -> None:
        """Show a stored conversation (also used by quick-ask's Continue)."""
        self.view.open(conversation_id)

    def _on_opened(self, conv: Conversation) -> None:
        self.conversations.refresh(conv.id)
        self.conversations.select(conv.id)
        self.setWindowTitle(f"{conv.title} — Hearth")
        self.conversation_opened.emit(conv.id)

    def _on_started(self, conversation_id: str, new: bool) -> None:
        if new:
            self.conversations.refresh(conversation_id)
            self.conversations.select(conversation_id)

    def _on_deleted(self, conversation_id: str) -> None:
        if conversation_id == self.conversation_id:
            self.new_conversation()

    # -- asking --------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.view.busy

    @property
    def session(self) -> AnswerSession:
        """The answer being streamed (or the last one), folded from its events."""
        return self.view.answer.session

    @property
    def _worker(self) -> GeneratorWorker | None:
        return self.view.worker

    def _on_event(self, event: object) -> AnswerState:
        return self.view.answer.fold(event)

    def send(self) -> None:
        self.view.send()

    def ask(self, question: str, new_conversation: bool = False, patient: bool = False,
            fresh: bool = False) -> None:
        """Send `question` (in a new conversation if asked) and stream the answer;
        `patient`: wait for the local model without a deadline."""
        if self.busy or self._closed:
            return
        if new_conversation:
            self.new_conversation()
        self.view.ask(question, patient, fresh)

    def stop(self) -> None:
        self.view.stop()

    def _set_sources(self, sources: tuple[Source, ...]) -> None:
        self.sources_panel.set_sources(tuple(sources))
        if sources:
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
        self.view.set_notice(text)

    def focus_input(self) -> None:
        self.view.focus_input()

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
        self._closed = self.view.closed = True
        self.workers.stop_all()  # the parts' work too: they share the window's set
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
