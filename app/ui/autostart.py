"""Starting Hearth at login: an XDG autostart entry
(`$XDG_CONFIG_HOME/autostart/hearth.desktop`) on Linux and the BSDs; Windows
and macOS are not supported yet, and the Settings dialog says so."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from app import desktop
from app.core.errors import HearthError

UNSUPPORTED = ("Starting at login is not supported on Windows or macOS yet; add Hearth to "
               "your login items by hand.")
# Marks the file as Hearth's own, so turning the setting off never removes an
# entry the user wrote themselves.
MARKER = "X-Hearth-Autostart=true"


def supported() -> bool:
    return not sys.platform.startswith(("win", "darwin", "cygwin"))


def entry_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "autostart" / "hearth.desktop"


def entry_text() -> str:
    """The launcher entry's own text (one desktop file for both), marked as
    Hearth's autostart entry."""
    return desktop.entry_text(extra=["X-GNOME-Autostart-enabled=true", MARKER])


def is_enabled() -> bool:
    return entry_path().is_file()


def set_enabled(enabled: bool) -> None:
    """Write or remove the autostart entry. Raises OSError (with the path)."""
    if not supported():
        if enabled:
            raise OSError(UNSUPPORTED)
        return
    path = entry_path()
    if enabled:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(entry_text(), encoding="utf-8")
        os.replace(tmp, path)
        return
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    if MARKER in text:
        path.unlink()


def apply(enabled: bool) -> None:
    """`set_enabled`, for a worker: a failure is one sentence (HearthError)."""
    try:
        set_enabled(enabled)
    except OSError as exc:
        what = "add" if enabled else "remove"
        raise HearthError(f"Hearth could not {what} its autostart entry: "
                          f"{exc.strerror or exc}.") from exc
