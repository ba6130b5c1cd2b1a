"""A desktop without a system tray (the offscreen platform has none): the window
works, and says at start that closing it quits Hearth and how to reach Quick
Ask without the tray."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot

pytestmark = pytest.mark.slow


class _Listener:
    """Stands in for pynput's key listener: the shortcut counts as registered."""

    def stop(self) -> None:
        pass

    def join(self, _timeout: float) -> None:
        pass


def test_without_a_tray_the_window_says_quick_ask_needs_the_shortcut(
        qtbot: QtBot, hearth: Any) -> None:
    assert not QSystemTrayIcon.isSystemTrayAvailable()
    hearth.start()
    assert hearth.window.isVisible()
    notice = hearth.no_tray_notice
    assert notice == ("No system tray: closing the window quits Hearth; for Quick Ask, bind "
                      "`hearth --quick-ask` to a keyboard shortcut.")
    bar = hearth.window.statusBar()
    assert bar.currentMessage() == notice
    # Read whole in the status bar of the window as it first opens (1100 px
    # wide); a longer sentence was cut off there.
    assert hearth.window.width() == 1100
    assert bar.fontMetrics().horizontalAdvance(notice) < bar.width() - 40
    # The window goes on working: the command that shortcut runs reaches it.
    hearth.handle_request({"action": "quick-ask"})
    assert hearth.quick.isVisible()
    hearth.quick.close()
    # and closing it quits, as it said
    with qtbot.waitSignal(hearth.quitting, timeout=5_000):
        hearth.window.close()


def test_with_the_shortcut_registered_it_names_the_keys(
        qtbot: QtBot, hearth: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    hearth.settings.override("ui.quick_ask_shortcut", "<ctrl>+<alt>+h")

    def registered(combo: str) -> bool:
        hearth.shortcut._listener = _Listener()
        return True

    monkeypatch.setattr(hearth.shortcut, "start", registered)
    hearth.start()
    assert hearth.no_tray_notice.endswith("Quick Ask opens with <ctrl>+<alt>+h.")
    assert hearth.window.statusBar().currentMessage() == hearth.no_tray_notice


def test_with_a_tray_nothing_is_said(qtbot: QtBot, hearth: Any,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    hearth.tray.available = True
    monkeypatch.setattr(hearth.tray, "show", lambda: None)  # offscreen has no tray to show in
    hearth.start()
    assert hearth.no_tray_notice == ""
    assert "system tray" not in hearth.window.statusBar().currentMessage()
