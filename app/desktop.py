"""Linux desktop integration for the current user: Hearth's launcher entry, its
icons and AppStream metainfo under `$XDG_DATA_HOME`, and the entry text that the
autostart entry shares. Never imports Qt except to draw the icons."""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from app.bundled import resource

APP_ID = "io.github.hearth.Hearth"
# Marks a file as Hearth's own, so that uninstalling never removes an entry the
# user wrote or edited under the same name by hand.
MARKER = "X-Hearth-Entry=true"
# The sizes the freedesktop icon theme spec lists for applications; the SVG is
# installed too, for the sizes in between.
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256)
UNSUPPORTED = ("Desktop entries are a Linux desktop feature; on Windows and macOS add Hearth "
               "to the menu or Dock by hand.")


class DesktopError(OSError):
    """A desktop file could not be written or removed; the message says which."""


def supported() -> bool:
    return not sys.platform.startswith(("win", "darwin", "cygwin"))


def data_home() -> Path:
    # The XDG spec: a relative XDG_DATA_HOME is invalid and must be ignored.
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


def command() -> list[str]:
    """How to start this Hearth, as absolute paths: the launcher runs without the
    user's shell, so a venv's `bin/` or a bundle's folder is not on its PATH."""
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).absolute())]
    # Beside the interpreter: the `hearth` script of this very install, even when
    # another Hearth comes first on PATH.
    script = Path(sys.executable).absolute().parent / "hearth"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("hearth")
    return [found] if found else [str(Path(sys.executable).absolute()), "-m", "app"]


def _quote(arg: str) -> str:
    # The Desktop Entry spec's Exec quoting: double quotes with " ` $ \ escaped.
    if arg and not any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`'):
        quoted = arg
    else:
        quoted = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
    # Then the rules for every string value: '%' starts a field code and a
    # backslash is itself escaped (the spec applies this before the quoting).
    return quoted.replace("\\", "\\\\").replace("%", "%%")


def exec_value(args: Sequence[str]) -> str:
    return " ".join(_quote(a) for a in args)


def program_of(exec_line: str) -> str | None:
    """The program an Exec value starts (the reverse of `exec_value`)."""
    try:
        words = shlex.split(exec_line.replace("\\\\", "\\").replace("%%", "%"))
    except ValueError:
        return None
    return words[0] if words else None


def entry_text(extra: Sequence[str] = ()) -> str:
    """The shipped desktop entry with Exec pointing at this install, the marker
    and `extra` lines added to its main group."""
    cmd = exec_value(command())
    out: list[str] = []
    group = ""
    for line in resource(f"linux/{APP_ID}.desktop").read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            if group == "[Desktop Entry]":
                while out and not out[-1]:
                    out.pop()
                out += [MARKER, *extra, ""]
            group = line
        elif line.startswith("Exec=hearth"):
            line = "Exec=" + cmd + line.removeprefix("Exec=hearth")
        out.append(line)
    if group == "[Desktop Entry]":
        out += [MARKER, *extra]
    return "\n".join(out).rstrip("\n") + "\n"


def entry_path(base: Path | None = None) -> Path:
    return (base or data_home()) / "applications" / f"{APP_ID}.desktop"


def files(base: Path | None = None) -> list[Path]:
    """Every file `install` writes, the launcher entry first."""
    root = base or data_home()
    icons = root / "icons" / "hicolor"
    return [entry_path(root), root / "metainfo" / f"{APP_ID}.metainfo.xml",
            icons / "scalable" / "apps" / f"{APP_ID}.svg",
            *(icons / f"{n}x{n}" / "apps" / f"{APP_ID}.png" for n in ICON_SIZES)]


def is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise DesktopError(f"Hearth cannot write {path}: {exc.strerror or exc}.") from exc


def write_entry(path: Path, extra: Sequence[str] = ()) -> None:
    _write(path, entry_text(extra).encode("utf-8"))


def _write_png(path: Path, size: int) -> None:
    from app.ui.theme import render_icon

    image = render_icon(size)
    if image is None:
        raise DesktopError("Hearth's icon is missing from its install folder; reinstall Hearth.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DesktopError(f"Hearth cannot write {path}: {exc.strerror or exc}.") from exc
    tmp = path.with_name(f".{path.name}.tmp.png")  # Qt picks the format by the suffix
    if not image.save(str(tmp)):
        tmp.unlink(missing_ok=True)
        raise DesktopError(f"Hearth cannot write {path}.")
    os.replace(tmp, path)


def install(base: Path | None = None) -> list[Path]:
    """Write the launcher entry, metainfo and icons; returns what was written."""
    if not supported():
        raise DesktopError(UNSUPPORTED)
    entry, metainfo, svg, *pngs = written = files(base)
    if entry.exists() and not is_ours(entry):
        raise DesktopError(f"{entry} was not written by Hearth; move it away first if "
                           "Hearth should replace it.")
    write_entry(entry)
    _write(metainfo, resource(f"linux/{APP_ID}.metainfo.xml").read_bytes())
    _write(svg, resource("hearth.svg").read_bytes())
    for png, size in zip(pngs, ICON_SIZES, strict=True):
        _write_png(png, size)
    _refresh_caches(base or data_home())
    return written


def uninstall(base: Path | None = None) -> list[Path]:
    """Remove what `install` wrote (an entry without Hearth's marker is left
    alone); returns what was removed."""
    removed: list[Path] = []
    entry, *rest = files(base)
    for path in ([entry] if is_ours(entry) else []) + rest:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise DesktopError(f"Hearth cannot remove {path}: {exc.strerror or exc}.") from exc
        removed.append(path)
    if removed:
        _refresh_caches(base or data_home())
    return removed


def installed(base: Path | None = None) -> list[Path]:
    entry, *rest = files(base)
    return ([entry] if is_ours(entry) else []) + [p for p in rest if p.is_file()]


def refresh_moved(paths: Sequence[Path]) -> list[Path]:
    """Point each of Hearth's entries in `paths` whose program no longer exists
    (the install was moved) at this install; returns the entries rewritten.

    An entry whose program still exists is left alone: it may belong to another
    Hearth install (a bundle beside a source checkout) that the user chose."""
    rewritten: list[Path] = []
    for path in paths:
        if not is_ours(path):
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        execs = [line.removeprefix("Exec=") for line in lines if line.startswith("Exec=")]
        program = program_of(execs[0]) if execs else None
        if program is not None and Path(program).exists():
            continue
        # What followed the marker (the autostart keys) is kept as it was.
        after = lines[lines.index(MARKER) + 1:]
        write_entry(path, list(itertools.takewhile(lambda s: s and s[0] != "[", after)))
        rewritten.append(path)
    return rewritten


def _refresh_caches(root: Path) -> None:
    # Menus that read the caches pick the change up at once; the tools are
    # optional and a failure only delays that until the next login.
    tools = [["update-desktop-database", "-q", str(root / "applications")]]
    if (root / "icons" / "hicolor" / "icon-theme.cache").exists():
        tools.append(["gtk-update-icon-cache", "-q", "-t", "-f", str(root / "icons" / "hicolor")])
    for tool in tools:
        if shutil.which(tool[0]) and Path(tool[-1]).is_dir():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(tool, check=False, timeout=30, capture_output=True)
