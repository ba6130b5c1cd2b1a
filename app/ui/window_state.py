"""The window's own small facts, kept between runs in `window.ini` in Hearth's
config folder (QSettings): geometry, the splitter, whether answers use the
indexed files, whether the tray notice was shown. QSettings keeps them in
memory and writes them out itself; `save` asks for that write at once."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QSplitter, QWidget


def window_state(config_dir: Path) -> QSettings:
    """Window geometry and small UI facts, in Hearth's own config folder."""
    return QSettings(str(config_dir / "window.ini"), QSettings.Format.IniFormat)


def restore(state: QSettings, window: QWidget, splitter: QSplitter) -> None:
    geometry = state.value("main/geometry")
    if isinstance(geometry, QByteArray):
        window.restoreGeometry(geometry)
    sizes = state.value("main/splitter")
    if isinstance(sizes, QByteArray):
        splitter.restoreState(sizes)


def save(state: QSettings, window: QWidget, splitter: QSplitter) -> None:
    state.setValue("main/geometry", window.saveGeometry())
    state.setValue("main/splitter", splitter.saveState())
    state.sync()
