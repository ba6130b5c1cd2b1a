"""The Qt application: one place that wires the main window, the tray, the
quick-ask popup, the settings dialog and the single-instance server together."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

from app import __version__, desktop
from app.core import offline
from app.core.assistant import Assistant
from app.core.knowledge.protocol import INDEX_SETTINGS, FolderStatus
from app.paths import Paths, get_paths
from app.settings import Key, Settings, Value
from app.ui import autostart
from app.ui.errors import show_error
from app.ui.folders_dialog import FoldersDialog
from app.ui.global_shortcut import GlobalShortcut
from app.ui.indexing import IndexService
from app.ui.main_window import MainWindow
from app.ui.models_dialog import ModelsDialog, ModelService
from app.ui.quick_ask import QuickAsk
from app.ui.settings_dialog import DesktopPage, SettingsDialog, default_pages
from app.ui.single_instance import InstanceServer
from app.ui.theme import app_icon, apply_theme
from app.ui.tray import Tray
from app.ui.workers import run_op, stop_every_set

log = logging.getLogger(__name__)

# How long the status bar says there is no tray (then the index and answers use it).
NO_TRAY_NOTICE_MS = 30_000
MODEL_KEYS = frozenset({Key.MODEL_PATH, Key.MODEL_CONTEXT_SIZE, Key.MODEL_THREADS,
                        Key.MODEL_GPU_LAYERS})


class HearthApp(QObject):
    """Owns everything visible; `quit()` stops all work cleanly."""

    quitting = Signal()
    # Cross-thread safe relay for settings changes (listeners run where set() ran).
    _setting_changed = Signal(str, object)

    def __init__(self, settings: Settings, paths: Paths, server_name: str | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.paths = paths
        # Offline mode holds from start-up, not only once the setting changes.
        if settings.snapshot().network.offline:
            offline.enable()
        # The index process writes the index and answers the assistant's
        # searches, so this process never runs Chroma.
        self.index = IndexService(settings, paths, self)
        self.assistant = Assistant(settings, paths, knowledge=self.index.process)
        self.window = MainWindow(self.assistant)
        self.tray = Tray(app_icon(), settings.snapshot().network.offline, self)
        self.quick = QuickAsk(self.assistant)
        self.server = InstanceServer(server_name, self)
        self.settings_dialog: SettingsDialog | None = None
        self.folders_dialog: FoldersDialog | None = None
        self.models = ModelService(settings, paths, self)
        self.models_dialog: ModelsDialog | None = None
        self.shortcut = GlobalShortcut(self)
        self.no_tray_notice = ""  # what the status bar said at start when there is no tray
        self._quit_done = False
        if settings.notice:
            # Stays until the next question: a status-bar message would be gone
            # before anyone read it, and would say only the last problem.
            self.window.show_notice(settings.notice)

        self.window.hide_on_close = self._keep_in_tray
        self.window.hidden_to_tray.connect(self._first_time_in_tray)
        self.window.quit_requested.connect(self.quit)
        self.window.closed.connect(self.quit)
        self.window.settings_requested.connect(self.open_settings)
        self.window.answer_failed.connect(self._notify_hidden_error)
        self.window.folders_requested.connect(self.open_folders)
        self.window.index_pause_toggled.connect(self.pause_indexing)
        self.window.models_requested.connect(self.open_models)
        self.window.download_requested.connect(self.download_model)
        self.window.model_switched.connect(lambda _loaded: self.models.refresh())
        self.models.rows_changed.connect(self._on_model_rows)
        self.tray.pause_indexing_toggled.connect(self.pause_indexing)
        self.index.state_changed.connect(self.window.set_index_state)
        self.index.activity.connect(self.window.set_index_activity)
        self.index.folders_changed.connect(self._on_folders_changed)
        self.index.finished.connect(self._on_index_finished)
        self.index.problem.connect(self._on_index_problem)
        self.index.failed.connect(self._on_index_failed)
        self.tray.quick_ask_requested.connect(self.quick_ask)
        self.tray.show_requested.connect(self.window.show_and_raise)
        self.tray.show_requested.connect(self.models.resume_pending)
        self.tray.offline_toggled.connect(self.set_offline)
        self.tray.quit_requested.connect(self.quit)
        self.quick.continue_requested.connect(self.continue_in_window)
        self.server.request_received.connect(self.handle_request)
        self.shortcut.activated.connect(self.quick_ask)
        self._setting_changed.connect(self._on_setting_changed)
        for key in (Key.NETWORK_OFFLINE, Key.UI_THEME, Key.ROUTING_POLICY):
            settings.subscribe(key, self._relay(key))
        for name in INDEX_SETTINGS:  # the index process has its own copy of these
            settings.subscribe(name, functools.partial(self.index.apply_setting, name))
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.styleHints().colorSchemeChanged.connect(self._on_system_scheme)

    def _relay(self, key: str) -> Callable[[Value], None]:
        def changed(value: Value) -> None:
            self._setting_changed.emit(key, value)

        return changed

    # -- requests ------------------------------------------------------------------

    def handle_request(self, request: dict[str, Any]) -> None:
        """A request from the command line or a second launch."""
        action = request.get("action")
        if action == "quick-ask":
            self.quick_ask()
        elif action == "ask":
            self.window.show_and_raise()
            self.window.ask(str(request.get("question", "")).strip(), new_conversation=True)
        else:
            self.window.show_and_raise()

    def quick_ask(self) -> None:
        self.quick.popup()

    def continue_in_window(self, conversation_id: str) -> None:
        self.window.show_and_raise()
        self.window.open_conversation(conversation_id)

    def open_settings(self) -> SettingsDialog:
        if self.settings_dialog is None:
            self.settings_dialog = SettingsDialog(self.settings, self.window,
                                                  default_pages(self.paths))
            self.settings_dialog.applied.connect(self._on_settings_applied)
            self.settings_dialog.providers_changed.connect(
                lambda _names: self.window.refresh_routes())
            self.settings_dialog.finished.connect(self._forget_settings)
            desktop = self.settings_dialog.page("Desktop")
            if isinstance(desktop, DesktopPage) and (self.shortcut.active or self.shortcut.note):
                desktop.show_shortcut_state(self.shortcut.active, self.shortcut.note)
        self.settings_dialog.show()
        self.settings_dialog.raise_()
        return self.settings_dialog

    def open_folders(self) -> FoldersDialog:
        if self.folders_dialog is None:
            self.folders_dialog = FoldersDialog(self.index, self.window)
            self.folders_dialog.finished.connect(self._forget_folders)
        self.folders_dialog.show()
        self.folders_dialog.raise_()
        return self.folders_dialog

    def open_models(self) -> ModelsDialog:
        if self.models_dialog is None:
            self.models_dialog = ModelsDialog(self.models, self.window)
            self.models_dialog.use_requested.connect(self._use_model)
            self.models_dialog.finished.connect(self._forget_models)
        self.models_dialog.show()
        self.models_dialog.raise_()
        return self.models_dialog

    def download_model(self, model_id: str) -> None:
        dialog = self.open_models()
        self.models.download(model_id)
        dialog.select(model_id)

    def _use_model(self, model_id: str, force: bool) -> None:
        row = self.models.row(model_id)
        if row is not None:
            self.window.choose_model(row, force)

    def _forget_models(self) -> None:
        if self.models_dialog is not None:
            self.models_dialog.deleteLater()
            self.models_dialog = None

    def _on_model_rows(self, rows: list[Any]) -> None:
        from app.core.models.library import best_fitting

        self.window.set_model_rows(rows)
        now = next((r for r in rows if r.current), None)
        demo = now is not None and now.entry is not None and now.entry.bundled
        self.window.set_first_run_hint(demo, best_fitting(rows))

    def _forget_folders(self) -> None:
        if self.folders_dialog is not None:
            self.folders_dialog.deleteLater()
            self.folders_dialog = None

    def _forget_settings(self) -> None:
        if self.settings_dialog is not None:
            self.settings_dialog.deleteLater()
            self.settings_dialog = None

    def _on_settings_applied(self, changed: set[str]) -> None:
        if changed & MODEL_KEYS:
            self.window.preload_model()
            self.models.refresh()
        if Key.UI_START_AT_LOGIN in changed:
            self.apply_start_at_login()

    def apply_start_at_login(self) -> None:
        """Write or remove the autostart entry to match the setting (in a worker)."""
        enabled = self.settings.snapshot().ui.start_at_login
        run_op(self.window.workers, lambda: autostart.apply(enabled), lambda _r: None,
               lambda m, d: show_error(self.settings_dialog or self.window, m, d), self)

    # -- settings that change what is shown ----------------------------------------------

    def set_offline(self, value: bool) -> None:
        """The tray's Offline mode: written in a worker; on a failure the tray's
        check mark goes back and the user is told why."""
        def failed(message: str, details: str) -> None:
            self.tray.set_offline(self.settings.snapshot().network.offline)
            show_error(self.window, message, details)

        if self.settings.snapshot().network.offline != value:
            run_op(self.window.workers, lambda: self.settings.set(Key.NETWORK_OFFLINE, value),
                   lambda _v: None, failed, self)

    def _on_setting_changed(self, key: str, value: Value) -> None:
        if key == Key.NETWORK_OFFLINE:
            self.window.set_offline(bool(value))
            self.tray.set_offline(bool(value))
            if value:
                offline.enable()
            else:
                offline.disable()
        elif key == Key.UI_THEME:
            app = QApplication.instance()
            if isinstance(app, QApplication):
                apply_theme(app, str(value))
        elif key == Key.ROUTING_POLICY:
            self.window.set_default_route(str(value))

    def _on_system_scheme(self, *_args: object) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication) and self.settings.snapshot().ui.theme == "system":
            apply_theme(app, "system")

    # -- indexing ----------------------------------------------------------------------

    def pause_indexing(self, paused: bool) -> None:
        self.tray.set_indexing_paused(paused)
        self.index.set_paused(paused)

    def _on_folders_changed(self, folders: tuple[FolderStatus, ...]) -> None:
        self.window.set_folders([f.path for f in folders])

    def _on_index_finished(self, stats: Any) -> None:
        parts = [f"{stats.indexed:,} files indexed"]
        if stats.removed:
            parts.append(f"{stats.removed:,} removed")
        left_out = stats.failed + stats.skipped
        if left_out:
            parts.append(f"{left_out:,} left out (Folders lists why)")
        self.tray.notify("Indexing finished", ", ".join(parts) + ".")

    def _on_index_problem(self, message: str) -> None:
        self.window.statusBar().showMessage(message, 15_000)
        if not self.window.isVisible():
            self.tray.notify("Hearth: a folder needs attention", message, error=True)

    def _on_index_failed(self, message: str, details: str) -> None:
        if self.folders_dialog is not None and self.folders_dialog.isVisible():
            return  # the dialog shows it next to what was asked
        if self.window.isVisible():
            show_error(self.window, message, details)
        else:
            self.tray.notify("Hearth", message, error=True)

    # -- tray ------------------------------------------------------------------------

    def _keep_in_tray(self) -> bool:
        return self.settings.snapshot().ui.close_to_tray and self.tray.available

    def _first_time_in_tray(self) -> None:
        if not self.settings.snapshot().models.keep_downloading_in_tray and self.models.pause_all():
            self.tray.notify("Downloads paused",
                             "Model downloads are paused while the window is closed; they "
                             "continue when you open Hearth again.")
        state = self.window.state
        if state.value("tray/notice_shown", False, type=bool):
            return
        self.tray.notify("Hearth is still running",
                         "Hearth keeps running in the system tray. Use the tray menu to "
                         "open it again or to quit.")
        state.setValue("tray/notice_shown", True)
        state.sync()

    def _notify_hidden_error(self, message: str) -> None:
        if not self.window.isVisible():
            self.tray.notify("Hearth", message, error=True)

    # -- start and stop -----------------------------------------------------------------

    def start(self) -> None:
        if not self.server.listen():
            log.warning("another launch will not find this instance")
        self.tray.show()
        s = self.settings.snapshot().ui
        if not s.start_minimised:
            self.window.show()
        elif not self.tray.available:
            # Without a tray the window is the only way back in: start it minimised.
            self.window.showMinimized()
        if s.start_at_login and not autostart.is_enabled() \
                and autostart.supported():
            self.apply_start_at_login()  # e.g. turned on with `hearth config set`
        self.shortcut.start(s.quick_ask_shortcut)
        self._say_if_no_tray()
        self.index.start()
        self.models.refresh()
        self.models.resume_pending()
        # After the window is on screen: the model loads in the background.
        QTimer.singleShot(0, self, self._preload)

    def _say_if_no_tray(self) -> None:
        """Without a system tray (some Wayland and tiling desktops) the tray's
        Quick Ask and its way back to a closed window are missing: the window
        says so, and how to reach Quick Ask instead."""
        if self.tray.available:
            self.no_tray_notice = ""
            return
        # Short enough for the status bar of a small window.
        if self.shortcut.active:
            how = f"Quick Ask opens with {self.settings.snapshot().ui.quick_ask_shortcut}"
        else:
            how = "for Quick Ask, bind `hearth --quick-ask` to a keyboard shortcut"
        self.no_tray_notice = f"No system tray: closing the window quits Hearth; {how}."
        log.info("no system tray: %s", self.no_tray_notice)
        self.window.statusBar().showMessage(self.no_tray_notice, NO_TRAY_NOTICE_MS)

    def _preload(self) -> None:
        if not self._quit_done:
            self.window.preload_model()

    def quit(self) -> None:
        """Stop generation and loading, wait for the workers, free the model."""
        if self._quit_done:
            return
        self._quit_done = True
        self.quitting.emit()
        self.shortcut.stop()
        self.window.save_geometry()
        self.quick.shutdown()
        self.quick.close()
        if self.settings_dialog is not None:
            self.settings_dialog.reject()
        if self.folders_dialog is not None:
            self.folders_dialog.reject()
        if self.models_dialog is not None:
            self.models_dialog.reject()
        self.window.hide()
        # Indexing stops first (a batch in progress is finished, nothing is left
        # half-written), then the answers and the model.
        self.index.stop()
        self.models.shutdown()  # downloads pause; the next start resumes them
        self.window.shutdown()
        stop_every_set()  # whatever an owner left running (a statistics window left open)
        self.window.hide()
        self.tray.hide()
        self.server.close()
        app = QApplication.instance()
        if app is not None:
            app.quit()


def run(request: dict[str, Any] | None = None,
        setup: Callable[[HearthApp], object] | None = None,
        server_name: str | None = None) -> int:
    """Run the window until it quits. `setup` is given the application before it
    starts (the hidden self-test uses it); `server_name` overrides the
    single-instance socket's name."""
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    QApplication.setApplicationName("Hearth")
    QApplication.setApplicationDisplayName("Hearth")
    QApplication.setApplicationVersion(__version__)
    # Wayland compositors find the icon and name through the launcher entry.
    QApplication.setDesktopFileName(desktop.APP_ID)
    app.setQuitOnLastWindowClosed(False)  # the tray keeps Hearth running
    app.setWindowIcon(app_icon())
    settings = Settings.load()
    apply_theme(app, settings.snapshot().ui.theme)
    hearth = HearthApp(settings, get_paths(), server_name)
    if setup is not None:
        setup(hearth)
    try:
        desktop.refresh_moved([desktop.entry_path(), autostart.entry_path()])
    except OSError:
        # A menu entry pointing at the old folder is no reason not to start.
        log.warning("could not update a moved install's desktop entries", exc_info=True)
    hearth.start()
    if request and request.get("action") != "show":
        QTimer.singleShot(0, lambda: hearth.handle_request(request))
    code = app.exec()
    hearth.quit()
    return int(code)
