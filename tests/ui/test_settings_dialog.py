"""The Settings dialog writes real settings.toml values and reads them back."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QPlainTextEdit, QSpinBox
from pytestqt.qtbot import QtBot

from app.core.llm.registry import ProviderConfig, add_provider, remove_provider
from app.paths import Paths
from app.settings import Settings
from app.ui import autostart
from app.ui.settings_dialog import ModelPathField, SettingsDialog, default_pages


def save(qtbot: QtBot, dialog: SettingsDialog) -> bool:
    """OK's work: check and write in a worker; True if all was written."""
    with qtbot.waitSignal(dialog.saved, timeout=10_000) as saved:
        dialog.save()
    return bool(saved.args[0])


def test_settings_round_trip_through_settings_toml(qtbot: QtBot, settings: Settings,
                                                   paths: Paths, model_path: Path) -> None:
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    assert [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())] == [
        "Model", "Answers", "Providers", "Routing", "Privacy", "Cache", "Desktop"]
    f = dialog.field
    assert isinstance(f("model.path"), ModelPathField)
    f("model.path").edit.setText(str(model_path))  # type: ignore[attr-defined]
    ctx = f("model.context_size")
    assert isinstance(ctx, QSpinBox)
    ctx.setValue(2048)
    threads = f("model.threads")
    assert isinstance(threads, QSpinBox) and threads.specialValueText().startswith("Automatic")
    threads.setValue(3)
    temp = f("generation.temperature")
    assert isinstance(temp, QDoubleSpinBox)
    temp.setValue(0.25)
    prompt = f("generation.system_prompt")
    assert isinstance(prompt, QPlainTextEdit)
    prompt.setPlainText("Be brief.")
    offline = f("network.offline")
    assert isinstance(offline, QCheckBox)
    offline.setChecked(True)
    theme = f("ui.theme")
    assert isinstance(theme, QComboBox)
    theme.setCurrentIndex(theme.findData("dark"))
    with qtbot.waitSignal(dialog.applied, timeout=10_000) as applied:
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert applied.args[0] == {"model.path", "model.context_size", "model.threads",
                               "generation.temperature", "generation.system_prompt",
                               "network.offline", "ui.theme"}
    on_disk = tomllib.loads(settings.path.read_text())
    assert on_disk["model"] == {"path": str(model_path), "context_size": 2048, "threads": 3}
    assert on_disk["generation"] == {"temperature": 0.25, "system_prompt": "Be brief."}
    assert on_disk["network"] == {"offline": True}
    assert on_disk["ui"] == {"theme": "dark"}
    reloaded = Settings.load(paths)
    assert reloaded.warnings == []
    again = SettingsDialog(reloaded)
    qtbot.addWidget(again)
    assert again.field("model.context_size").value() == 2048  # type: ignore[attr-defined]
    assert again.field("ui.theme").currentData() == "dark"  # type: ignore[attr-defined]
    assert again.field("generation.system_prompt").toPlainText() == "Be brief."  # type: ignore[attr-defined]


def test_a_bad_model_file_is_refused_in_words_and_nothing_is_written(
        qtbot: QtBot, settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_text("just text")
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.field("model.path").edit.setText(str(bad))  # type: ignore[attr-defined]
    dialog.field("model.threads").setValue(4)  # type: ignore[attr-defined]
    assert save(qtbot, dialog) is False
    assert dialog.isVisible()
    assert dialog.error.isVisible() and "not a GGUF model file" in dialog.error.text()
    assert not settings.path.exists()
    assert settings.snapshot().model.threads == 0


def test_routing_and_privacy_round_trip(qtbot: QtBot, settings: Settings, paths: Paths) -> None:
    add_provider(paths, ProviderConfig("groq", "openai", "https://api.groq.com/openai/v1",
                                       "llama-3.1-8b-instant"))
    dialog = SettingsDialog(settings, None, default_pages(paths))
    qtbot.addWidget(dialog)
    dialog.show()
    f = dialog.field
    policy = f("routing.policy")
    assert isinstance(policy, QComboBox)
    # The providers are read in a worker; the policy offers them once read.
    qtbot.waitUntil(lambda: policy.findData("groq") >= 0, timeout=5_000)
    assert [policy.itemData(i) for i in range(policy.count())] == [
        "auto", "local-only", "remote-first", "groq"]
    assert policy.currentData() == "auto"
    policy.setCurrentIndex(policy.findData("groq"))
    f("routing.ttft_timeout_s").setValue(3.5)  # type: ignore[attr-defined]
    f("routing.stall_timeout_s").setValue(4.0)  # type: ignore[attr-defined]
    f("routing.heavy_prompt_tokens").setValue(2000)  # type: ignore[attr-defined]
    fallback = f("routing.remote_fallback")
    redact = f("privacy.redact_secrets")
    assert isinstance(fallback, QCheckBox) and fallback.isChecked()
    assert isinstance(redact, QCheckBox) and redact.isChecked()
    fallback.setChecked(False)
    redact.setChecked(False)
    assert save(qtbot, dialog) is True
    on_disk = tomllib.loads(settings.path.read_text())
    assert on_disk["routing"] == {"policy": "groq", "ttft_timeout_s": 3.5,
                                  "stall_timeout_s": 4.0, "heavy_prompt_tokens": 2000,
                                  "remote_fallback": False}
    assert on_disk["privacy"] == {"redact_secrets": False}
    # The provider goes away: the policy that names it is shown, and refused in words.
    remove_provider(paths, "groq")
    again = SettingsDialog(Settings.load(paths), None, default_pages(paths))
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.page("Providers").loaded, timeout=5_000):  # type: ignore[attr-defined]
        again.show()  # providers.toml is read in a worker once the dialog is on screen
    assert again.field("routing.policy").currentText() == "groq (not configured)"  # type: ignore[attr-defined]
    assert save(qtbot, again) is False
    assert again.error.text() == ("The routing policy names the provider 'groq', which is "
                                  "not set up; choose another or add it on the Providers page.")
    assert again.tabs.currentWidget() is again.page("Routing")


def test_start_at_login_writes_and_removes_the_autostart_entry(
        qtbot: QtBot, hearth: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    entry = tmp_path / "xdg" / "autostart" / "hearth.desktop"
    dialog = hearth.open_settings()
    login = dialog.field("ui.start_at_login")
    assert isinstance(login, QCheckBox) and login.isEnabled()
    assert str(entry) in dialog.page("Desktop").login_note.text()
    login.setChecked(True)
    dialog.field("ui.start_minimised").setChecked(True)
    with qtbot.waitSignal(dialog.saved, timeout=5_000):
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    qtbot.waitUntil(entry.exists, timeout=5_000)  # written in a worker, after the settings
    text = entry.read_text()
    assert "[Desktop Entry]" in text and "\nExec=" in text and "Name=Hearth" in text
    assert tomllib.loads(hearth.settings.path.read_text())["ui"] == {
        "start_minimised": True, "start_at_login": True}
    dialog = hearth.open_settings()
    dialog.field("ui.start_at_login").setChecked(False)
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: not entry.exists(), timeout=5_000)


def test_start_at_login_says_where_it_is_not_supported(
        qtbot: QtBot, settings: Settings, paths: Paths, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    # Only Linux runs here; the platform check is what differs on Windows/macOS.
    monkeypatch.setattr("sys.platform", "win32")
    dialog = SettingsDialog(settings, None, default_pages(paths))
    qtbot.addWidget(dialog)
    assert not dialog.field("ui.start_at_login").isEnabled()
    assert dialog.page("Desktop").login_note.text() == autostart.UNSUPPORTED  # type: ignore[attr-defined]
    with pytest.raises(OSError, match="not supported on Windows or macOS yet"):
        autostart.set_enabled(True)


# Showing a tray icon where the platform has none makes Qt warn once.
@pytest.mark.qt_log_ignore("systemTrayWindowChanged")
def test_start_minimised_keeps_the_window_in_the_tray(qtbot: QtBot, hearth: Any) -> None:
    hearth.settings.override("ui.start_minimised", True)
    # Offscreen Qt has no system tray; the flag stands in for one being there.
    hearth.tray.available = True
    hearth.start()
    qtbot.waitUntil(lambda: hearth.window.model_state != "idle", timeout=5_000)
    assert not hearth.window.isVisible()
    hearth.handle_request({"action": "show"})
    assert hearth.window.isVisible()


def test_start_minimised_without_a_tray_starts_the_window_minimised(
        qtbot: QtBot, hearth: Any) -> None:
    hearth.settings.override("ui.start_minimised", True)
    assert not hearth.tray.available
    hearth.start()
    qtbot.waitUntil(lambda: hearth.window.isMinimized(), timeout=5_000)


def test_the_shortcut_setting_says_when_it_is_inactive_and_why(
        qtbot: QtBot, hearth: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.ui.settings_dialog import DesktopPage

    # pynput is not installed here: an X11 session still cannot have the shortcut.
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not hearth.shortcut.start("<ctrl>+<alt>+space")
    dialog = hearth.open_settings()
    page = dialog.page("Desktop")
    assert isinstance(page, DesktopPage)
    dialog.tabs.setCurrentWidget(page)
    assert page.shortcut_note.isVisible()
    assert page.shortcut_note.text() == (
        "Inactive: The optional pynput package is not installed (pip install pynput); or "
        "bind the command `hearth --quick-ask` to a shortcut in your desktop's keyboard "
        "settings.")
    dialog.reject()
    # A Wayland session without X11 never lets an application grab keys.
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.delenv("DISPLAY")
    wayland = DesktopPage()
    qtbot.addWidget(wayland)
    assert wayland.shortcut_note.text().startswith(
        "Inactive: Wayland does not allow global shortcuts from applications; bind the "
        "command `hearth --quick-ask`")
    # Where it is listening, it says so.
    wayland.show_shortcut_state(True)
    assert wayland.shortcut_note.text() == ("Active: the shortcut opens Quick Ask from any "
                                            "application.")
