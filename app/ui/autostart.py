"""Starting Hearth at login: an XDG autostart entry
(`$XDG_CONFIG_HOME/autostart/hearth.desktop`) on Linux and the BSDs; Windows
and macOS are not supported yet, and the Settings dialog says so."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

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


def _quote(arg: str) -> str:
    # The Desktop Entry spec's quoting: double quotes, with " ` $ \\ escaped.
    if arg and not any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`'):
        return arg
    return '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'


def command() -> list[str]:
    """How to start this Hearth: the installed `hearth` script when there is one."""
    script = shutil.which("hearth")
    return [script] if script else [sys.executable, "-m", "app"]


def entry_text() -> str:
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Name=Hearth",
        "Comment=Local-first desktop copilot",
        "Exec=" + " ".join(_quote(a) for a in command()),
        "Icon=hearth",
        "Terminal=false",
        "X-GNOME-Autostart-enabled=true",
        MARKER,
        "",
    ])


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
