"""Help menu: About shows the one version, the shortcuts come from the window's
own actions, and the folders are the ones this Hearth uses."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QTableWidget
from pytestqt.qtbot import QtBot

from app import __version__
from app.paths import Paths
from app.ui.about import ABOUT, FOLDERS, SHORTCUTS, AboutDialog
from app.ui.main_window import MainWindow


def _rows(table: QTableWidget) -> list[tuple[str, str]]:
    return [(table.item(r, 0).text(), table.item(r, 1).text()) for r in range(table.rowCount())]


def _open(qtbot: QtBot, window: MainWindow, tab: int) -> AboutDialog:
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    (action,) = [a for a in help_menu.actions() if a.objectName() == f"help-{tab}"]
    action.trigger()
    dialog = next(w for w in QApplication.topLevelWidgets()
                  if isinstance(w, AboutDialog) and w.isVisible())
    qtbot.addWidget(dialog)
    return dialog


def test_help_menu_about_shortcuts_and_folders(
        qtbot: QtBot, window: MainWindow, paths: Paths) -> None:
    about = _open(qtbot, window, ABOUT)
    assert about.tabs.currentIndex() == ABOUT
    assert f"Hearth {__version__}" in about.tabs.widget(ABOUT).text()  # type: ignore[attr-defined]
    about.close()

    keys = _open(qtbot, window, SHORTCUTS)
    rows = _rows(keys.tabs.widget(SHORTCUTS))  # type: ignore[arg-type]
    assert ("Ctrl+N", "New conversation") in rows and ("Ctrl+Q", "Quit") in rows
    assert ("Esc", "Stop the answer, or close the search") in rows
    quick = str(window.assistant.settings.snapshot().ui.quick_ask_shortcut) or "(none set)"
    assert rows[-1][0] == quick and rows[-1][1].startswith("Quick ask from anywhere")
    keys.close()

    folders = dict(_rows(_open(qtbot, window, FOLDERS).tabs.widget(FOLDERS)))  # type: ignore[arg-type]
    assert folders["Settings"] == str(paths.config_dir)
    assert folders["Conversations"] == str(paths.conversations_db)
