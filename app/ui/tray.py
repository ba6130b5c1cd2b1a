"""The system tray entry: Quick Ask, Show Hearth, Pause indexing, Offline
mode, Quit, and notifications (closing the window keeps Hearth running, a
scan finished, something failed while the window was hidden)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QGuiApplication, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon


class Tray(QObject):
    quick_ask_requested = Signal()
    show_requested = Signal()
    offline_toggled = Signal(bool)
    pause_indexing_toggled = Signal(bool)
    quit_requested = Signal()

    def __init__(self, icon: QIcon, offline: bool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.menu = QMenu()
        self.quick_ask_action = QAction("Quick Ask…", self.menu)
        self.quick_ask_action.setToolTip("Ask a question in a small window")
        self.quick_ask_action.triggered.connect(self.quick_ask_requested.emit)
        self.show_action = QAction("Show Hearth", self.menu)
        self.show_action.triggered.connect(self.show_requested.emit)
        self.offline_action = QAction("Offline mode", self.menu)
        self.offline_action.setCheckable(True)
        self.offline_action.setChecked(offline)
        self.offline_action.setToolTip("Send nothing over the network")
        self.offline_action.toggled.connect(self.offline_toggled.emit)
        self.pause_action = QAction("Pause indexing", self.menu)
        self.pause_action.setCheckable(True)
        self.pause_action.setToolTip("Stop reading your folders for now; the index stays")
        self.pause_action.toggled.connect(self.pause_indexing_toggled.emit)
        self.quit_action = QAction("Quit Hearth", self.menu)
        self.quit_action.triggered.connect(self.quit_requested.emit)
        for action in (self.quick_ask_action, self.show_action):
            self.menu.addAction(action)
        self.menu.addSeparator()
        self.menu.addAction(self.pause_action)
        self.menu.addAction(self.offline_action)
        self.menu.addSeparator()
        self.menu.addAction(self.quit_action)
        self.icon = QSystemTrayIcon(icon, self)
        self.icon.setToolTip("Hearth")
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._on_activated)
        self._available: bool | None = None
        self.notices: list[tuple[str, str]] = []

    @property
    def available(self) -> bool:
        """A tray is there now: at login the panel may come up after Hearth, and
        it can go and come back while Hearth runs."""
        if self._available is not None:
            return self._available
        return QSystemTrayIcon.isSystemTrayAvailable()

    @available.setter
    def available(self, value: bool) -> None:
        self._available = value

    def show(self) -> None:
        # On X11 Qt embeds the icon whenever a tray appears, even one that
        # starts after Hearth; elsewhere showing it without a tray only warns.
        if self.available or QGuiApplication.platformName() == "xcb":
            self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def set_offline(self, offline: bool) -> None:
        if self.offline_action.isChecked() != offline:
            self.offline_action.blockSignals(True)
            self.offline_action.setChecked(offline)
            self.offline_action.blockSignals(False)

    def set_indexing_paused(self, paused: bool) -> None:
        if self.pause_action.isChecked() != paused:
            self.pause_action.blockSignals(True)
            self.pause_action.setChecked(paused)
            self.pause_action.blockSignals(False)

    def notify(self, title: str, message: str, error: bool = False) -> None:
        self.notices.append((title, message))
        if self.available and self.icon.isVisible():
            icon = (QSystemTrayIcon.MessageIcon.Warning if error
                    else QSystemTrayIcon.MessageIcon.Information)
            self.icon.showMessage(title, message, icon, 6000)

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger,
                      QSystemTrayIcon.ActivationReason.DoubleClick):
            self.show_requested.emit()
        elif reason == QSystemTrayIcon.ActivationReason.MiddleClick:
            self.quick_ask_requested.emit()
