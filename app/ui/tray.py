"""The system tray entry: Quick Ask, Show Hearth, Offline mode, Quit, and
notifications (e.g. the first time closing the window keeps Hearth running)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon


class Tray(QObject):
    quick_ask_requested = Signal()
    show_requested = Signal()
    offline_toggled = Signal(bool)
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
        self.quit_action = QAction("Quit Hearth", self.menu)
        self.quit_action.triggered.connect(self.quit_requested.emit)
        for action in (self.quick_ask_action, self.show_action):
            self.menu.addAction(action)
        self.menu.addSeparator()
        self.menu.addAction(self.offline_action)
        self.menu.addSeparator()
        self.menu.addAction(self.quit_action)
        self.icon = QSystemTrayIcon(icon, self)
        self.icon.setToolTip("Hearth")
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._on_activated)
        self.available = QSystemTrayIcon.isSystemTrayAvailable()
        self.notices: list[tuple[str, str]] = []

    def show(self) -> None:
        if self.available:
            self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def set_offline(self, offline: bool) -> None:
        if self.offline_action.isChecked() != offline:
            self.offline_action.blockSignals(True)
            self.offline_action.setChecked(offline)
            self.offline_action.blockSignals(False)

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
