"""ruff and mypy stay clean: a lint failure fails the build like a test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

BIN = Path(sys.executable).parent


def test_ruff_is_clean() -> None:
    r = subprocess.run([str(BIN / "ruff"), "check", "app", "tests"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_is_clean() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy", "app"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
