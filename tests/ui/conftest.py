"""Fixtures for the window tests: real core, real model, real SQLite store,
each under the test's own HEARTH_HOME."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from app.core.assistant import Assistant
from app.core.llm.registry import ProviderConfig, add_provider
from app.paths import Paths
from app.settings import Settings
from app.ui.main_window import MainWindow
from app.ui.settings_dialog import SettingsDialog, default_pages
from tests.fault_server import FaultServer
from tests.gui_thread_guard import install

GUI_THREAD_IO_ALLOWED = "gui_thread_io_allowed"


@pytest.fixture(autouse=True)
def no_io_on_the_gui_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """The window never opens files or queries SQLite on the GUI thread: a
    test in which its code does fails, naming each place."""
    guard = install()
    guard.hits.clear()
    guard.on = True
    try:
        yield
    finally:
        guard.on = False
    hits = sorted(set(guard.hits))
    if hits and request.node.get_closest_marker(GUI_THREAD_IO_ALLOWED) is None:
        pytest.fail("I/O on the GUI thread:\n  " + "\n  ".join(hits[:30]), pytrace=False)


@pytest.fixture
def dialog(qtbot: QtBot, settings: Settings, paths: Paths) -> Iterator[SettingsDialog]:
    """The Settings dialog with every page, on screen."""
    d = SettingsDialog(settings, None, default_pages(paths))
    qtbot.addWidget(d)
    d.show()
    yield d
    d.reject()  # stops the pages' workers


@pytest.fixture
def window(qtbot: QtBot, settings: Settings, paths: Paths) -> Iterator[MainWindow]:
    settings.override("generation.max_tokens", 16)
    settings.override("generation.temperature", 0.0)
    w = MainWindow(Assistant(settings, paths))
    qtbot.addWidget(w)
    w.show()
    yield w
    w.shutdown()


@pytest.fixture
def hearth(qtbot: QtBot, settings: Settings, paths: Paths) -> Iterator[object]:
    from app.ui.app import HearthApp

    settings.override("generation.max_tokens", 16)
    settings.override("generation.temperature", 0.0)
    settings.override("ui.quick_ask_shortcut", "")
    h = HearthApp(settings, paths)
    yield h
    # Not registered with qtbot.addWidget: pytest-qt would delete the widgets
    # before this teardown, under the workers quit() has to stop first.
    h.quit()
    for widget in (h.window, h.quick):
        widget.close()
        widget.deleteLater()


@pytest.fixture
def remote(paths: Paths) -> Iterator[FaultServer]:
    server = FaultServer()
    add_provider(paths, ProviderConfig("faulty", "openai", server.openai_url, "fault-model",
                                       timeout_s=5.0))
    yield server
    server.close()
