"""The bundle's build and check scripts and its PyInstaller spec at least parse
(building and checking the bundle is slow: `bash packaging/build_bundle.sh`
and `bash packaging/check_bundle.sh`, never part of the test run)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.helpers import REPO

PACKAGING = REPO / "packaging"


@pytest.mark.parametrize("script", ["build_bundle.sh", "check_bundle.sh"])
def test_the_scripts_are_valid_bash(script: str) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run([bash, "-n", str(PACKAGING / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_spec_is_python_and_starts_app_cli() -> None:
    compile((PACKAGING / "hearth.spec").read_text(encoding="utf-8"), "hearth.spec", "exec")
    entry = (PACKAGING / "hearth_main.py").read_text(encoding="utf-8")
    assert "from app.cli import main" in entry
