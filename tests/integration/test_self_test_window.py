"""The hidden window checks the bundle's check script uses, run from source:
`hearth --self-test-window FOLDER` opens the window, indexes the folder through
the index process, finds a file and quits with 0; it fails in one sentence;
`hearth --startup-time` prints the time to the first window. Neither is in
`--help`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import run_hearth

pytestmark = pytest.mark.slow

OFFSCREEN = {"QT_QPA_PLATFORM": "offscreen"}


def _notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "atlas.txt").write_text("The Atlas launch moved to the ninth of October.\n")
    (folder / "kettle.md").write_text("# Kettle\nDescale the kettle with citric acid.\n")
    return folder


def test_the_window_indexes_a_folder_through_its_index_process_and_quits(
        tmp_path: Path) -> None:
    folder = _notes(tmp_path)
    done = run_hearth("--self-test-window", str(folder), env=OFFSCREEN, timeout=240)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        r"self-test: window shown in [\d.]+ s; the index process \(pid \d+, .+\) indexed "
        + re.escape(str(folder.resolve())) + r" in [\d.]+ s; searching '.+' found "
        + re.escape(str(folder.resolve() / "atlas.txt")), line), line


def test_a_missing_folder_and_a_timeout_are_one_sentence_each(tmp_path: Path) -> None:
    missing = run_hearth("--self-test-window", str(tmp_path / "nowhere"), env=OFFSCREEN)
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith("is not one.")
    assert len(missing.stderr.strip().splitlines()) == 1
    late = run_hearth("--self-test-window", str(_notes(tmp_path)), "--self-test-timeout",
                      "0.001", env=OFFSCREEN, timeout=240)
    assert late.returncode == 1
    said = [s for s in late.stderr.splitlines() if s.startswith("hearth self-test failed")]
    assert said == [f"hearth self-test failed: the window did not finish indexing "
                    f"{tmp_path.resolve() / 'notes'} within 0.001 s."]


def test_startup_time_prints_the_seconds_to_the_first_window() -> None:
    done = run_hearth("--startup-time", env=OFFSCREEN, timeout=240)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"startup: first window in \d+\.\d{3} s", done.stdout.strip())


def test_the_checks_stay_out_of_help_and_off_other_commands() -> None:
    shown = run_hearth("--help")
    assert shown.returncode == 0
    assert "self-test" not in shown.stdout and "startup-time" not in shown.stdout
    both = run_hearth("--startup-time", "doctor")
    assert both.returncode == 2 and "used on their own" in both.stderr
