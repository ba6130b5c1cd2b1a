from __future__ import annotations

import tomllib

import pytest

from app.paths import Paths
from app.settings import SETTINGS, Settings, SettingsError, lookup


def test_defaults_when_no_file(paths: Paths) -> None:
    s = Settings.load(paths)
    assert s.warnings == [] and s.notice == ""
    for setting in SETTINGS:
        assert s[setting.key] == setting.default
    assert not paths.settings_file.exists()


def test_every_setting_is_declared_with_a_description_and_valid_default() -> None:
    keys = [s.key for s in SETTINGS]
    assert len(keys) == len(set(keys))
    for setting in SETTINGS:
        assert setting.description.endswith(".")
        assert setting.validate(setting.default) == setting.default


def test_set_persists_as_toml_and_round_trips(paths: Paths) -> None:
    s = Settings.load(paths)
    assert s.set("model.context_size", "2048", from_text=True) == 2048
    assert s.set("network.offline", "yes", from_text=True) is True
    data = tomllib.loads(paths.settings_file.read_text())
    assert data == {"model": {"context_size": 2048}, "network": {"offline": True}}
    again = Settings.load(paths)
    assert again["model.context_size"] == 2048 and again["network.offline"] is True


def test_bad_value_is_refused_with_the_allowed_range(paths: Paths) -> None:
    s = Settings.load(paths)
    with pytest.raises(SettingsError, match="from 0 to 2") as err:
        s.set("generation.temperature", "7", from_text=True)
    assert "generation.temperature" in str(err.value)
    with pytest.raises(SettingsError, match="one of system, light, dark"):
        s.set("ui.theme", "purple", from_text=True)
    with pytest.raises(SettingsError, match="a whole number"):
        s.set("model.threads", "two", from_text=True)
    with pytest.raises(SettingsError, match="true or false"):
        s.set("network.offline", "maybe", from_text=True)
    assert not paths.settings_file.exists()


def test_unknown_key_is_refused(paths: Paths) -> None:
    with pytest.raises(SettingsError, match="hearth config list"):
        Settings.load(paths).set("model.colour", "red", from_text=True)
    with pytest.raises(SettingsError):
        lookup("nope")


def test_broken_toml_falls_back_to_defaults_and_keeps_the_file(paths: Paths) -> None:
    paths.config_dir.mkdir(parents=True)
    broken = "[model\ncontext_size = 99\n"
    paths.settings_file.write_text(broken)
    s = Settings.load(paths)
    assert s["model.context_size"] == 4096
    assert len(s.warnings) == 1 and "not valid TOML" in s.warnings[0]
    assert s.notice.startswith("settings.toml is not valid TOML (")
    assert s.notice.endswith("); using default settings.") and "\n" not in s.notice
    # Changing a setting must not overwrite the user's (broken) file.
    with pytest.raises(SettingsError, match="left untouched"):
        s.set("model.threads", 2)
    assert paths.settings_file.read_text() == broken


def test_one_bad_key_names_the_key_and_only_it_falls_back(paths: Paths) -> None:
    paths.config_dir.mkdir(parents=True)
    text = '[model]\ncontext_size = "big"\nthreads = 3\n[ui]\nflavour = 1\n'
    paths.settings_file.write_text(text)
    s = Settings.load(paths)
    assert s["model.context_size"] == 4096
    assert s["model.threads"] == 3
    joined = " ".join(s.warnings)
    assert "model.context_size" in joined and "ui.flavour" in joined
    assert paths.settings_file.read_text() == text


def test_out_of_range_value_in_file_is_rejected(paths: Paths) -> None:
    paths.config_dir.mkdir(parents=True)
    paths.settings_file.write_text("[generation]\ntemperature = 9.5\n")
    s = Settings.load(paths)
    assert s["generation.temperature"] == 0.7
    assert "from 0 to 2" in s.warnings[0]


def test_listeners_hear_changes_of_their_key(paths: Paths) -> None:
    s = Settings.load(paths)
    heard: list[object] = []
    s.subscribe("ui.theme", heard.append)
    s.set("ui.theme", "dark")
    s.set("model.threads", 4)
    assert heard == ["dark"]


def test_unwritable_config_dir_gives_one_sentence(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HEARTH_HOME", str(blocker / "home"))
    from app.paths import get_paths

    s = Settings.load(get_paths())
    with pytest.raises(SettingsError, match="Cannot write settings"):
        s.set("model.threads", 2)
