"""The Settings dialog writes real settings.toml values and reads them back."""

from __future__ import annotations

import tomllib
from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QPlainTextEdit, QSpinBox
from pytestqt.qtbot import QtBot

from app.paths import Paths
from app.settings import Settings
from app.ui.settings_dialog import ModelPathField, SettingsDialog


def test_settings_round_trip_through_settings_toml(qtbot: QtBot, settings: Settings,
                                                   paths: Paths, model_path: Path) -> None:
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    assert [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())] == [
        "Model", "Answers", "Privacy", "Desktop"]
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
    with qtbot.waitSignal(dialog.applied, timeout=1_000) as applied:
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
    assert dialog.save() is False
    assert dialog.isVisible()
    assert dialog.error.isVisible() and "not a GGUF model file" in dialog.error.text()
    assert not settings.path.exists()
    assert settings["model.threads"] == 0
