"""What every `hearth` command shares: exit codes, the one-line failure
message, and loading the settings (with their warnings, and offline mode
switched on from the start when it is set)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.settings import Settings

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NO_DISPLAY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


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
