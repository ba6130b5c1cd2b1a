"""What every `hearth` command shares: exit codes, the one-line failure
message, and loading the settings (with their warnings, and offline mode
switched on from the start when it is set)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from app.exit_codes import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_NO_DISPLAY, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from app.settings import Settings

__all__ = ["EXIT_FAIL", "EXIT_INTERRUPTED", "EXIT_NO_DISPLAY", "EXIT_OK", "EXIT_USAGE", "fail",
           "load_settings"]


def fail(message: str, code: int = EXIT_FAIL) -> int:
    print(f"hearth: {message}", file=sys.stderr)
    return code


def load_settings() -> Settings:
    from app.settings import Settings

    settings = Settings.load()
    if settings.snapshot().network.offline:
        from app.core import offline

        offline.enable()  # the backstop holds from start-up, not only after a change
    for warning in settings.warnings:
        print(f"hearth: warning: {warning}", file=sys.stderr)
    return settings
