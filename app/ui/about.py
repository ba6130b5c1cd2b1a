"""The Help menu and its dialog: About (the version), keyboard shortcuts (read
from the window's own actions, so the list cannot go stale) and where Hearth
keeps things."""

from __future__ import annotations

import platform
from collections.abc import Callable

from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMainWindow,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import __version__, desktop
from app.paths import Paths
from app.ui import autostart

ABOUT, SHORTCUTS, FOLDERS = range(3)


def shortcuts(window: QWidget) -> list[tuple[str, str]]:
    """(keys, what they do) for every shortcut the window has, menu order."""
    rows: list[tuple[str, str]] = []
    for action in window.findChildren(QAction):
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        if keys:
            rows.append((keys, action.text().replace("&", "").rstrip("…")))
    names = {"Esc": "Stop the answer, or close the search", "Ctrl+L": "Go to the question box",
             "Ctrl+F": "Search the conversations"}
    for shortcut in window.findChildren(QShortcut):
        keys = shortcut.key().toString(QKeySequence.SequenceFormat.NativeText)
        if keys:
            rows.append((keys, names.get(keys, shortcut.whatsThis() or "")))
    return rows


def _table(rows: list[tuple[str, str]], headers: tuple[str, str]) -> QTableWidget:
    table = QTableWidget(len(rows), 2)
    table.setHorizontalHeaderLabels(list(headers))
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for r, (a, b) in enumerate(rows):
        table.setItem(r, 0, QTableWidgetItem(a))
        table.setItem(r, 1, QTableWidgetItem(b))
    table.resizeColumnsToContents()
    table.horizontalHeader().setStretchLastSection(True)
    return table


class AboutDialog(QDialog):
    def __init__(self, window: QWidget, paths: Paths, quick_ask_keys: str,
                 tab: int = ABOUT) -> None:
        super().__init__(window)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle("About Hearth")
        self.tabs = QTabWidget()
        about = QLabel(
            f"<h2>Hearth {__version__}</h2>"
            "<p>A local-first desktop AI copilot: answers from models on this computer "
            "and from your own files, with remote providers only when you allow them.</p>"
            f"<p>Python {platform.python_version()} · Qt {qVersion()}</p>")
        about.setWordWrap(True)
        about.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        about.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.tabs.addTab(about, "About")
        keys = shortcuts(window)
        keys.append((quick_ask_keys or "(none set)",
                     "Quick ask from anywhere (system-wide; Settings → Desktop)"))
        self.tabs.addTab(_table(keys, ("Keys", "Does")), "Keyboard shortcuts")
        places = [("Settings", str(paths.config_dir)),
                  ("Conversations", str(paths.conversations_db)),
                  ("Index and models", str(paths.data_dir)),
                  ("Caches", str(paths.cache_dir)), ("Logs", str(paths.log_dir)),
                  ("Menu entry", str(desktop.entry_path())),
                  ("Start at login", str(autostart.entry_path()))]
        self.tabs.addTab(_table(places, ("What", "Where")), "Where Hearth keeps things")
        self.tabs.setCurrentIndex(tab)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)
        self.resize(620, 380)


def add_help_menu(window: QMainWindow, paths: Paths,
                  quick_ask_keys: Callable[[], str]) -> None:
    """Help → About, Keyboard shortcuts, Where Hearth keeps things; the quick-ask
    keys are read when the dialog opens, since Settings can change them."""
    menu = window.menuBar().addMenu("&Help")
    for text, tab in (("&Keyboard shortcuts", SHORTCUTS),
                      ("&Where Hearth keeps things", FOLDERS), ("&About Hearth", ABOUT)):
        action = menu.addAction(text)
        action.setObjectName(f"help-{tab}")
        action.triggered.connect(
            lambda _=False, t=tab: AboutDialog(window, paths, quick_ask_keys(), t).open())
