"""The Linux menu entry, icons and metainfo: valid by freedesktop's own tools,
installed and removed for the user in a temporary XDG_DATA_HOME, and pointed
at the install again when it moves."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from app import desktop
from app.ui import autostart
from tests.helpers import run_hearth


def _ours(root: Path) -> list[Path]:
    # update-desktop-database leaves its own cache of every entry's types.
    return [p for p in root.rglob("*") if p.is_file() and p.name != "mimeinfo.cache"]

ENTRY = f"applications/{desktop.APP_ID}.desktop"
METAINFO = f"metainfo/{desktop.APP_ID}.metainfo.xml"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian: apt-get install desktop-file-utils "
                    "appstream)")
    return path


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(root))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    return root


def test_install_and_uninstall_through_the_cli(xdg: Path) -> None:
    added = run_hearth("--install-desktop-entry", env={"XDG_DATA_HOME": str(xdg)})
    assert added.returncode == 0, added.stderr
    assert str(xdg / ENTRY) in added.stdout
    text = (xdg / ENTRY).read_text()
    program = desktop.program_of(next(line[5:] for line in text.splitlines()
                                      if line.startswith("Exec=")))
    assert program is not None and Path(program).is_file()
    for size in desktop.ICON_SIZES:
        png = xdg / f"icons/hicolor/{size}x{size}/apps/{desktop.APP_ID}.png"
        assert _png_size(png) == (size, size)
    assert (xdg / f"icons/hicolor/scalable/apps/{desktop.APP_ID}.svg").read_text().startswith(
        "<svg")
    subprocess.run([_tool("desktop-file-validate"), str(xdg / ENTRY)], check=True)
    validated = subprocess.run([_tool("appstreamcli"), "validate", "--no-net",
                                str(xdg / METAINFO)], capture_output=True, text=True)
    assert validated.returncode == 0, validated.stdout

    removed = run_hearth("--uninstall-desktop-entry", env={"XDG_DATA_HOME": str(xdg)})
    assert removed.returncode == 0, removed.stderr
    assert _ours(xdg) == []
    again = run_hearth("--uninstall-desktop-entry", env={"XDG_DATA_HOME": str(xdg)})
    assert again.returncode == 0 and "nothing was removed" in again.stdout


def test_an_entry_the_user_wrote_is_neither_replaced_nor_removed(xdg: Path) -> None:
    mine = xdg / ENTRY
    mine.parent.mkdir(parents=True)
    mine.write_text("[Desktop Entry]\nType=Application\nName=My Hearth\nExec=/opt/hearth\n")
    with pytest.raises(desktop.DesktopError, match="was not written by Hearth"):
        desktop.install()
    desktop.uninstall()
    assert mine.read_text().startswith("[Desktop Entry]\nType=Application\nName=My Hearth")


def test_an_unwritable_data_folder_is_one_sentence(xdg: Path) -> None:
    # A file where the folder should be fails for root too, unlike permissions.
    xdg.mkdir()
    (xdg / "applications").write_text("not a folder")
    done = run_hearth("--install-desktop-entry", env={"XDG_DATA_HOME": str(xdg)})
    assert done.returncode == 1
    assert done.stderr.startswith(f"hearth: Hearth cannot write {xdg / ENTRY}: ")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_paths_with_spaces_and_percent_signs_are_quoted_for_the_spec(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    odd = str(tmp_path / 'My "Apps" 100%' / "bin" / "hearth")
    monkeypatch.setattr(desktop, "command", lambda: [odd])
    path = tmp_path / "odd.desktop"
    desktop.write_entry(path)
    text = path.read_text()
    exec_line = next(line[5:] for line in text.splitlines() if line.startswith("Exec="))
    assert desktop.program_of(exec_line) == odd
    assert "%%" in exec_line
    subprocess.run([_tool("desktop-file-validate"), str(path)], check=True)


def test_the_autostart_entry_is_the_menu_entry_plus_its_own_keys() -> None:
    menu = desktop.entry_text().splitlines()
    login = autostart.entry_text().splitlines()
    assert [line for line in login if line not in menu] == [
        "X-GNOME-Autostart-enabled=true", autostart.MARKER]
    assert [line for line in login if line in menu] == menu


def test_a_moved_install_is_pointed_at_again_and_another_install_is_left_alone(
        xdg: Path, tmp_path: Path) -> None:
    moved, other = xdg / ENTRY, tmp_path / "autostart" / "hearth.desktop"
    desktop.write_entry(moved)
    desktop.write_entry(other, ["X-GNOME-Autostart-enabled=true", autostart.MARKER])
    current = moved.read_text()
    gone = str(tmp_path / "old place" / "hearth")
    moved.write_text(current.replace(f"Exec={desktop.exec_value(desktop.command())}",
                                     f"Exec={desktop.exec_value([gone])}"))
    elsewhere = tmp_path / "another-install-hearth"
    elsewhere.write_text("#!/bin/sh\n")
    other.write_text(other.read_text().replace(
        f"Exec={desktop.exec_value(desktop.command())}", f"Exec={elsewhere}"))
    before_other = other.read_text()

    assert desktop.refresh_moved([moved, other, tmp_path / "missing.desktop"]) == [moved]
    assert moved.read_text() == current
    assert other.read_text() == before_other


def test_a_moved_bundle_is_pointed_at_its_new_place_when_it_next_starts(
        xdg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The bundle's executable is sys.executable (frozen); the entry names it.
    old = tmp_path / "Downloads" / "hearth" / "hearth"
    old.parent.mkdir(parents=True)
    old.write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(old))
    entry = desktop.entry_path()
    desktop.write_entry(entry)  # what --install-desktop-entry writes
    assert f"Exec={old}" in entry.read_text().splitlines()
    # The user moves the whole folder; the next start runs from there.
    moved = tmp_path / "My Apps" / "hearth"
    moved.parent.mkdir()
    shutil.move(old.parent, moved)
    monkeypatch.setattr(sys, "executable", str(moved / "hearth"))
    assert desktop.refresh_moved([entry, autostart.entry_path()]) == [entry]
    execs = [line for line in entry.read_text().splitlines() if line.startswith("Exec=")]
    assert execs and all(line.startswith(f"Exec={desktop.exec_value([str(moved / 'hearth')])}")
                         for line in execs)
    assert desktop.program_of(execs[0].removeprefix("Exec=")) == str(moved / "hearth")
    # Started again from the same place, nothing changes.
    assert desktop.refresh_moved([entry]) == []
