"""The system-wide quick-ask shortcut, through the optional `pynput` package
where the platform allows it (X11, Windows, macOS). Wayland does not let an
application grab keys: there, bind `hearth --quick-ask` to a shortcut in the
desktop's own keyboard settings; it reaches the running Hearth."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

OS_SHORTCUT_HINT = ("bind the command `hearth --quick-ask` to a shortcut in your desktop's "
                    "keyboard settings")


def unavailable_reason() -> str | None:
    """Why a global shortcut cannot work here, in words; None when it can."""
    if sys.platform.startswith("linux"):
        if os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("DISPLAY"):
            return f"Wayland does not allow global shortcuts from applications; {OS_SHORTCUT_HINT}."
        if not os.environ.get("DISPLAY"):
            return f"No X11 display for a global shortcut; {OS_SHORTCUT_HINT}."
    try:
        import pynput  # noqa: F401
    except Exception:  # noqa: BLE001  ImportError, or a backend that fails to start
        return ("The optional pynput package is not installed (pip install pynput); "
                f"or {OS_SHORTCUT_HINT}.")
    return None


class GlobalShortcut(QObject):
    """`activated` fires (in the GUI thread) when the shortcut is pressed."""

    activated = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._listener: Any = None
        self.note = ""

    @property
    def active(self) -> bool:
        return self._listener is not None

    def start(self, combo: str) -> bool:
        self.stop()
        if not combo:
            self.note = "The quick-ask shortcut is off."
            return False
        reason = unavailable_reason()
        if reason:
            self.note = reason
            log.info("global shortcut unavailable: %s", reason)
            return False
        try:
            from pynput import keyboard

            # pynput calls back on its own thread; the signal is queued to ours.
            self._listener = keyboard.GlobalHotKeys({combo: self.activated.emit})
            self._listener.daemon = True
            self._listener.start()
        except Exception as exc:  # noqa: BLE001  pynput's backends (Xlib, win32) raise their own
            self._listener = None
            self.note = f"The shortcut {combo} could not be registered ({exc}); {OS_SHORTCUT_HINT}."
            log.warning("%s", self.note)
            return False
        self.note = f"Quick Ask: {combo}"
        return True

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener.join(2.0)
            self._listener = None
