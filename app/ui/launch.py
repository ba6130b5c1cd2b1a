"""Starting the window, or saying clearly why it cannot start. No Qt import
here, so the message comes fast on a machine without a display."""

from __future__ import annotations

import os
import sys

NO_DISPLAY_MESSAGE = (
    "hearth: no display was found, so the Hearth window cannot open. Hearth is installed; "
    "ask from the terminal with: hearth ask \"your question\" (hearth --help lists every command)."
)


def has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    if os.environ.get("QT_QPA_PLATFORM"):
        return True  # a platform chosen explicitly (offscreen, xcb, wayland)
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def launch() -> int:
    if not has_display():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return 3
    from app.ui.app import run

    return run()
