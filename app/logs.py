"""Logging to a file in the log folder (never to the terminal): hearth.log
for the app and the command line, index.log for the window's index process."""

from __future__ import annotations

import logging
import logging.handlers
import os

from app.paths import Paths


def log_to_file(paths: Paths, name: str) -> None:
    root = logging.getLogger()
    root.setLevel(os.environ.get("HEARTH_LOG_LEVEL", "INFO").upper())
    try:
        paths.log_dir.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            paths.log_dir / name, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
        )
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
        )
    except OSError:
        handler = logging.NullHandler()
    root.addHandler(handler)
