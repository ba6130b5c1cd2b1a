"""The application as a whole: tray menu, close-to-tray, quick-ask popup and
the single-instance hand-off, over the real core and model."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot

from app.core import offline
from app.ui.single_instance import (
    NO_INSTANCE,
    InstanceServer,
    hand_off,
    server_name,
)
from tests.helpers import REPO

pytestmark = pytest.mark.slow


def test_tray_menu_actions(qtbot: QtBot, hearth: Any) -> None:
    # Offscreen Qt has no system tray, so the menu's actions are triggered
    # directly: they are the same QActions the tray menu shows.
    assert not QSystemTrayIcon.isSystemTrayAvailable()
    tray = hearth.tray
    texts = [a.text() for a in tray.menu.actions() if not a.isSeparator()]
    assert texts == ["Quick Ask…", "Show Hearth", "Pause indexing", "Offline mode", "Quit Hearth"]
    tray.show_action.trigger()
    assert hearth.window.isVisible()
    tray.quick_ask_action.trigger()
    assert hearth.quick.isVisible()
    hearth.quick.close()
    try:
        tray.offline_action.trigger()  # written in a worker
        qtbot.waitUntil(lambda: hearth.settings.snapshot().network.offline is True, timeout=5_000)
        assert tomllib.loads(hearth.settings.path.read_text())["network"]["offline"] is True
        qtbot.waitUntil(lambda: hearth.window.offline_label.isVisible(), timeout=1_000)
        assert offline.is_enabled()
        tray.offline_action.trigger()
        qtbot.waitUntil(lambda: not hearth.window.offline_label.isVisible(), timeout=1_000)
        assert not offline.is_enabled()
    finally:
        offline.disable()
    with qtbot.waitSignal(hearth.quitting, timeout=1_000):
        tray.quit_action.trigger()
    assert not hearth.window.isVisible() and not hearth.server.server.isListening()


def test_closing_keeps_hearth_in_the_tray_and_says_so_once(qtbot: QtBot, hearth: Any) -> None:
    hearth.start()
    # Offscreen has no tray; pretend one is there to check what closing does.
    hearth.tray.available = True
    hearth.window.close()
    assert not hearth.window.isVisible()
    assert not hearth._quit_done
    assert hearth.tray.notices == [("Hearth is still running", hearth.tray.notices[0][1])]
    hearth.tray.show_action.trigger()
    assert hearth.window.isVisible()
    hearth.window.close()
    assert len(hearth.tray.notices) == 1  # only the first time
    # without a tray (or with the setting off) closing quits
    hearth.tray.available = False
    hearth.window.show()
    with qtbot.waitSignal(hearth.quitting, timeout=1_000):
        hearth.window.close()


def test_quick_ask_answers_closes_and_continues_in_the_window(qtbot: QtBot,
                                                             hearth: Any) -> None:
    quick = hearth.quick
    hearth.quick_ask()
    assert quick.isVisible() and quick.windowFlags() & Qt.WindowType.FramelessWindowHint
    qtbot.keyClicks(quick.input, "Say hi.")
    with qtbot.waitSignal(quick.answer_finished, timeout=60_000) as done:
        qtbot.keyClick(quick.input, Qt.Key.Key_Return)
    finished = done.args[0]
    assert finished.answer.strip()[:10] in quick.view.toPlainText()
    assert quick.badge.text().startswith("Local · ")
    qtbot.waitUntil(lambda: not quick.busy, timeout=5_000)
    with qtbot.waitSignal(hearth.window.conversation_opened, timeout=10_000):
        quick.continue_button.click()
    assert not quick.isVisible()
    assert hearth.window.isVisible()
    assert hearth.window.conversation_id == finished.conversation_id
    assert "Say hi." in hearth.window.chat.transcript()
    assert finished.answer.strip()[:10] in hearth.window.chat.transcript()
    # Esc closes the popup
    hearth.quick_ask()
    assert quick.isVisible() and quick.input.text() == ""
    # The popup takes the keyboard from the window (whose own Esc stops an answer).
    qtbot.waitUntil(quick.isActiveWindow, timeout=5_000)
    qtbot.keyClick(quick, Qt.Key.Key_Escape)
    assert not quick.isVisible()


def test_single_instance_hand_off_in_process(qtbot: QtBot) -> None:
    name = server_name()
    assert hand_off({"action": "show"}, name) == NO_INSTANCE
    server = InstanceServer(name)
    assert server.listen()
    received: list[dict[str, Any]] = []
    server.request_received.connect(received.append)
    # hand_off blocks waiting for "ok"; the server answers from the event
    # loop, so the client runs in a subprocess in the test below. Here: a raw
    # socket without waiting for the reply.
    from PySide6.QtNetwork import QLocalSocket

    sock = QLocalSocket()
    sock.connectToServer(name)
    assert sock.waitForConnected(1_000)
    sock.write(b'{"action": "nonsense"}\n{"action": "ask", "question": "hi"}\n')
    sock.flush()
    qtbot.waitUntil(lambda: received == [{"action": "ask", "question": "hi"}], timeout=2_000)
    qtbot.waitUntil(lambda: sock.bytesAvailable() >= len(b"error\nok\n"), timeout=2_000)
    assert bytes(sock.readAll().data()) == b"error\nok\n"
    sock.disconnectFromServer()
    server.close()


def _hearth(qtbot: QtBot, *args: str) -> tuple[int, str]:
    """Run `hearth ARGS` while this test's event loop keeps serving requests."""
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)  # the hand-off needs no display
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.Popen([sys.executable, "-m", "app", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=30_000)
    _, err = proc.communicate()
    return proc.returncode, err


def test_a_second_launch_hands_quick_ask_and_ask_to_the_running_one(qtbot: QtBot,
                                                                    hearth: Any) -> None:
    hearth.start()
    hearth.window.hide()
    code, err = _hearth(qtbot, "--quick-ask")
    assert code == 0, err
    assert hearth.quick.isVisible()
    hearth.quick.close()
    with qtbot.waitSignal(hearth.window.answer_finished, timeout=60_000) as done:
        code, err = _hearth(qtbot, "ask", "--gui", "Say one word.")
        assert code == 0, err
    assert hearth.window.isVisible()
    assert "Say one word." in hearth.window.chat.transcript()
    assert hearth.window.conversation_id == done.args[0].conversation_id
    hearth.window.hide()
    code, err = _hearth(qtbot)
    assert code == 0, err
    assert hearth.window.isVisible()
    hearth.quit()
    # once it has quit, a launch without a display says so instead
    code, err = _hearth(qtbot, "--quick-ask")
    assert code == 3 and "no display" in err


def test_a_settings_file_with_mistakes_is_one_line_in_the_window_naming_the_keys(
        qtbot: QtBot, paths: Any) -> None:
    from app.settings import Settings
    from app.ui.app import HearthApp

    paths.settings_file.parent.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_text('[generation]\ntemperature = 9\n[ui]\ncolour = "red"\n'
                                   'quick_ask_shortcut = ""\n')
    settings = Settings.load(paths)
    hearth = HearthApp(settings, paths)
    try:
        hearth.window.show()
        notice = hearth.window.input_notice
        qtbot.waitUntil(notice.isVisible, timeout=5_000)
        assert notice.text() == (
            "Hearth uses the defaults for settings in settings.toml it cannot use: "
            "generation.temperature must be a number from 0 to 2 (got 9); ui.colour is not a "
            "setting (`hearth config list` shows what is allowed).")
        assert "\n" not in notice.text()
    finally:
        hearth.quit()
        for widget in (hearth.window, hearth.quick):
            widget.close()
            widget.deleteLater()
