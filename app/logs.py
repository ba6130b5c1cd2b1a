"""Logging to a file in the log folder (never to the terminal): hearth.log
for the app and the command line, index.log for the window's index process.

Every line is redacted before it is written, by the same rules as text
sent to a remote provider, and the API keys Hearth holds are replaced
wherever they appear: a server that echoes a key back in an error cannot
put it in a log file.
"""

from __future__ import annotations

import logging
import logging.handlers
import os

from app.paths import Paths

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"


class RedactingFormatter(logging.Formatter):
    """Formats a record (message, arguments, traceback) and redacts the result."""

    def format(self, record: logging.LogRecord) -> str:
        from app.core.privacy import redact_all

        # Not cached: log lines rarely repeat, prompts do.
        return redact_all(super().format(record), cached=False)


def log_to_file(paths: Paths, name: str) -> None:
    root = logging.getLogger()
    root.setLevel(os.environ.get("HEARTH_LOG_LEVEL", "INFO").upper())
    try:
        paths.log_dir.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            paths.log_dir / name, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
        )
        handler.setFormatter(RedactingFormatter(FORMAT))
    except OSError:
        handler = logging.NullHandler()
    root.addHandler(handler)
