"""The built wheel works outside the checkout: installed into a fresh virtualenv
and run from another folder, `hearth` answers offline, indexes a folder and
finds its catalog, prices and desktop files inside the package."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow


def _build_wheel(out: Path) -> Path:
    # A copy of the sources, so that setuptools' build/ and egg-info never land
    # in the checkout; what the copy lacks, the wheel lacks.
    src = out / "src"
    shutil.copytree(REPO / "app", src / "app",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
           "-q", "-w", str(out / "dist"), str(src)]
    if _has_build_backend():
        # Build with the dev tools already installed: no network needed.
        cmd.insert(4, "--no-build-isolation")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (wheel,) = (out / "dist").glob("hearth-*.whl")
    return wheel


def _has_build_backend() -> bool:
    try:
        major = int(importlib.metadata.version("setuptools").split(".")[0])
        importlib.metadata.version("wheel")
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    return major >= 68


def _fresh_venv(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True,
                   timeout=120)
    python = where / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                           "'purelib'))"], capture_output=True, text=True, check=True).stdout
    # The dependencies (PySide6, chromadb, the compiled llama.cpp, the model
    # packages: gigabytes, some built from source) come from this test's own
    # environment through a path entry placed after the venv's own
    # site-packages, rather than being downloaded again; Hearth itself only
    # comes from the wheel. A plain path line does not run the other
    # environment's .pth files, so its editable install of the checkout stays
    # out (the test checks where `app` is imported from).
    Path(site.strip(), "deps-from-test-env.pth").write_text(
        sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    return python


def _run(venv: Path, *args: str, env: dict[str, str], cwd: Path,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "hearth"), *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)


def test_the_wheel_installed_in_a_fresh_venv_answers_and_indexes(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path / "build")
    names = zipfile.ZipFile(wheel).namelist()
    for data in ("app/resources/catalog.toml", "app/resources/prices.toml",
                 "app/resources/hearth.svg", "app/resources/prompts/hearth-answer@3.toml",
                 "app/resources/linux/io.github.hearth.Hearth.desktop",
                 "app/resources/linux/io.github.hearth.Hearth.metainfo.xml"):
        assert data in names
    assert not [n for n in names if n.startswith(("tests/", "models/", "resources/"))]
    requires = zipfile.ZipFile(wheel).read("hearth-" + wheel.name.split("-")[1]
                                           + ".dist-info/METADATA").decode()
    assert "Requires-Dist: httpx2" in requires

    venv = tmp_path / "venv"
    python = _fresh_venv(venv)
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "--no-deps", "--no-index", "-q", "--disable-pip-version-check",
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    run_dir = tmp_path / "elsewhere"
    notes = tmp_path / "notes"
    notes.mkdir()
    run_dir.mkdir()
    (notes / "kettle.md").write_text("# Kettle\n\nThe blue kettle lives on the second shelf.\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "HEARTH_"))}
    env |= {"HEARTH_HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg"),
            "PATH": f"{venv / 'bin'}:/usr/bin:/bin"}

    where = subprocess.run([str(python), "-c", "import app, app.bundled as b; "
                            "print(app.__file__); print(b.resource('prices.toml'))"],
                           capture_output=True, text=True, env=env, cwd=run_dir, check=True)
    app_file, prices = where.stdout.split()
    assert Path(app_file).is_relative_to(venv) and Path(prices).is_relative_to(venv)

    version = _run(venv, "--version", env=env, cwd=run_dir)
    assert version.returncode == 0 and version.stdout.startswith("hearth ")

    ask = _run(venv, "ask", "--offline", "--json", "--max-tokens", "8", "--seed", "1",
               "Say hello.", env=env, cwd=run_dir)
    assert ask.returncode == 0, ask.stderr
    answer = json.loads(ask.stdout)
    assert answer["provider"] == "local" and answer["answer"].strip()

    add = _run(venv, "index", "add", str(notes), env=env, cwd=run_dir)
    assert add.returncode == 0, add.stderr
    found = _run(venv, "search", "where is the kettle", "--json", env=env, cwd=run_dir)
    assert found.returncode == 0, found.stderr
    assert "kettle.md" in found.stdout

    # The catalog and the desktop files come from inside the package.
    models = _run(venv, "models", "list", env=env, cwd=run_dir)
    assert models.returncode == 0 and "SmolLM2" in models.stdout, models.stderr
    entry = _run(venv, "--install-desktop-entry", env=env, cwd=run_dir)
    assert entry.returncode == 0, entry.stderr
    desktop = (tmp_path / "xdg" / "applications" / "io.github.hearth.Hearth.desktop").read_text()
    assert f"Exec={venv / 'bin' / 'hearth'}\n" in desktop
    assert not list(run_dir.iterdir())  # nothing written to the folder it ran from
