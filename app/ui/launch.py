"""Starting the window, or handing the request to the Hearth already running,
or saying clearly why the window cannot start. No Qt import at module level,
so `hearth --help` and the no-display message come fast."""

from __future__ import annotations

import os
import sys
from typing import Any

from app.exit_codes import EXIT_FAIL, EXIT_NO_DISPLAY, EXIT_OK

NO_DISPLAY_MESSAGE = (
    "hearth: no display was found, so the Hearth window cannot open. Hearth is installed; "
    "ask from the terminal with: hearth ask \"your question\" (hearth --help lists every command)."
)
NO_ANSWER_MESSAGE = (
    "hearth: a Hearth window is running but did not respond; close it (or end its process) "
    "and start Hearth again."
)


def has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    if os.environ.get("QT_QPA_PLATFORM"):
        return True  # a platform chosen explicitly (offscreen, xcb, wayland)
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def launch(request: dict[str, Any] | None = None) -> int:
    """Open Hearth for `request` ({"action": "show" | "quick-ask" | "ask", ...}).

    A running instance gets the request and this process exits at once; that
    needs no display of its own, so `hearth --quick-ask` works from any
    desktop's shortcut settings."""
    request = request or {"action": "show"}
    from app.ui.single_instance import DELIVERED, NO_ANSWER, hand_off

    result = hand_off(request)
    if result == DELIVERED:
        return EXIT_OK
    if result == NO_ANSWER:
        print(NO_ANSWER_MESSAGE, file=sys.stderr)
        return EXIT_FAIL
    if not has_display():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return EXIT_NO_DISPLAY
    from app.ui.app import run

    return run(request)
