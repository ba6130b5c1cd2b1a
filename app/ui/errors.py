"""Showing an error: one sentence for the user, the technical details behind
a Details button (and in the log)."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QMessageBox, QWidget

log = logging.getLogger(__name__)


def show_error(parent: QWidget | None, message: str, details: str = "",
               title: str = "Hearth") -> QMessageBox:
    """Open a non-blocking message box (the event loop keeps running)."""
    if details:
        log.error("%s\n%s", message, details)
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(message)
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    box.setObjectName("hearthError")
    box.open()
    return box
