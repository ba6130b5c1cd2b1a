"""Logging to rotating files in the log folder (never to the terminal):
hearth.log for the app and the command line, index.log for the window's
index process. Level, size and backups are settings (logging.*).

Every line is redacted before it is written, by the same rules as text
sent to a remote provider, and the API keys Hearth holds are replaced
wherever they appear: a server that echoes a key back in an error cannot
put it in a log file. Above debug, long texts in a line (a passage, a
prompt, a server's answer) are cut to their start: the log is for what
happened, not for the user's documents.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.paths import Paths

if TYPE_CHECKING:
    from app.settings import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
LOG_NAMES = ("hearth.log", "index.log")
# Above debug, a text longer than this in a log line keeps only its first
# KEEP_CHARS characters.
LONG_TEXT = 300
KEEP_CHARS = 80


class RedactingFormatter(logging.Formatter):
    """Formats a record (message, arguments, traceback) and redacts the result."""

    def format(self, record: logging.LogRecord) -> str:
        from app.core.privacy import redact_all

        # Not cached: log lines rarely repeat, prompts do.
        return redact_all(super().format(record), cached=False)


class ShortTexts(logging.Filter):
    """Cuts long string arguments of records above debug (document text,
    prompts and answers reach log calls as arguments, not in the format)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and record.args:
            if isinstance(record.args, dict):
                record.args = {k: _short(v) for k, v in record.args.items()}
            else:
                record.args = tuple(_short(a) for a in record.args)
        elif record.levelno > logging.DEBUG and isinstance(record.msg, str):
            record.msg = _short(record.msg)
        return True


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > LONG_TEXT:
        return f"{value[:KEEP_CHARS]}… ({len(value):,} characters, shown in full at debug)"
    return value


def log_files(paths: Paths) -> list[Path]:
    """Hearth's log files that exist now, rotated ones included."""
    if not paths.log_dir.is_dir():
        return []
    return sorted(p for p in paths.log_dir.iterdir()
                  if p.is_file() and p.name.split(".log")[0] + ".log" in LOG_NAMES)


def log_to_file(paths: Paths, name: str, settings: Settings | None = None) -> None:
    if settings is None:
        from app.settings import Settings

        settings = Settings.load(paths)
    s = settings.snapshot().logging
    root = logging.getLogger()
    root.setLevel(os.environ.get("HEARTH_LOG_LEVEL", s.level).upper())
    try:
        paths.log_dir.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            paths.log_dir / name, maxBytes=s.max_mb * 1_000_000,
            backupCount=s.backups, encoding="utf-8"
        )
        handler.setFormatter(RedactingFormatter(FORMAT))
        handler.addFilter(ShortTexts())
    except OSError:
        handler = logging.NullHandler()
    root.addHandler(handler)
