"""The Qt application: creates the window and runs the event loop."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

from app.core.assistant import Assistant
from app.paths import get_paths
from app.settings import Settings
from app.ui.main_window import MainWindow


def run() -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    QApplication.setApplicationName("Hearth")
    QApplication.setApplicationDisplayName("Hearth")
    settings = Settings.load()
    assistant = Assistant(settings, get_paths())
    window = MainWindow(assistant)
    for warning in settings.warnings:
        window.statusBar().showMessage(warning, 15_000)
    window.show()
    window.preload_model()
    code = app.exec()
    window.shutdown()
    return int(code)
