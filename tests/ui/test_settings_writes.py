"""Settings files are written off the GUI thread, and a write that fails says
why in one sentence and leaves the previous value in force.

The failing writes are made by patching the atomic writer to raise the
OSError a read-only folder gives: the tests may run as root, for whom a
read-only folder is still writable."""

from __future__ import annotations

import errno
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QComboBox
from pytestqt.qtbot import QtBot

from app.core import offline
from app.core.llm.registry import providers_file
from app.paths import Paths
from app.settings import Settings
from app.ui.settings_dialog import SettingsDialog
from tests.helpers import GuiTicks, providers_page


def _refuse(delay_s: float = 0.0) -> Any:
    def write(path: Path, _text: str) -> None:
        time.sleep(delay_s)  # a slow disk: the GUI thread must not wait for it
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    return write


def test_a_settings_write_that_fails_says_why_and_keeps_the_old_value(
        qtbot: QtBot, settings: Settings, dialog: SettingsDialog,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.settings.write_text_atomic", _refuse(delay_s=0.6))
    theme = dialog.field("ui.theme")
    assert isinstance(theme, QComboBox)
    theme.setCurrentIndex(theme.findData("dark"))
    applied: list[object] = []
    dialog.applied.connect(applied.append)
    ticks = GuiTicks()
    with qtbot.waitSignal(dialog.saved, timeout=10_000) as saved:
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
        assert not dialog.buttons.isEnabled()  # one save at a time
    ticks.timer.stop()
    assert saved.args == [False]
    # 0.6 s of writing left the GUI thread free (a blocked thread ticks 0 times).
    assert ticks.count >= 10
    assert dialog.error.isVisible()
    assert dialog.error.text() == f"Cannot write settings to {settings.path}: Permission denied."
    assert settings.snapshot().ui.theme == "system" and not settings.path.exists()
    assert theme.currentData() == "dark"  # the form keeps the choice, to try again
    assert dialog.isVisible() and dialog.buttons.isEnabled() and applied == []


# Showing a tray icon where the platform has none makes Qt warn once.
@pytest.mark.qt_log_ignore("systemTrayWindowChanged")
def test_offline_mode_that_cannot_be_saved_unchecks_itself_and_says_why(
        qtbot: QtBot, hearth: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.settings.write_text_atomic", _refuse())
    shown: list[str] = []
    monkeypatch.setattr("app.ui.app.show_error",
                        lambda _parent, message, details="": shown.append(message))
    hearth.tray.offline_action.trigger()
    qtbot.waitUntil(lambda: bool(shown), timeout=5_000)
    assert shown == [f"Cannot write settings to {hearth.settings.path}: Permission denied."]
    assert not hearth.tray.offline_action.isChecked()
    assert hearth.settings.snapshot().network.offline is False and not offline.is_enabled()
    assert not hearth.window.offline_label.isVisible()


def test_an_autostart_entry_that_cannot_be_written_is_said_in_one_sentence(
        qtbot: QtBot, hearth: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_enabled: bool) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("app.ui.autostart.set_enabled", refuse)
    shown: list[str] = []
    monkeypatch.setattr("app.ui.app.show_error",
                        lambda _parent, message, details="": shown.append(message))
    hearth.settings.override("ui.start_at_login", True)
    hearth.apply_start_at_login()
    qtbot.waitUntil(lambda: bool(shown), timeout=5_000)
    assert shown == ["Hearth could not add its autostart entry: Permission denied."]


def test_a_provider_that_cannot_be_saved_says_why_and_the_list_stays(
        qtbot: QtBot, paths: Paths, dialog: SettingsDialog,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.core.llm.registry.write_text_atomic", _refuse())
    page = providers_page(dialog)
    page.name.setText("groq")
    page.base_url.setText("https://api.groq.com/openai/v1")
    page.model.setText("llama-3.1-8b-instant")
    page.key.setText("sk-typed")
    with qtbot.waitSignal(page.finished, timeout=10_000) as done:
        page.save_button.click()
    said = f"Cannot write {providers_file(paths)}: Permission denied."
    assert done.args == [said] and page.status.text() == said
    assert page.list.count() == 0 and page.providers == []
    assert page.key.text() == "sk-typed"  # kept in the form to save again
