from __future__ import annotations

import tomllib

import pytest

from app.paths import Paths
from app.settings import SETTINGS, Settings, SettingsError, lookup


def test_defaults_when_no_file(paths: Paths) -> None:
    s = Settings.load(paths)
    assert s.warnings == [] and s.notice == ""
    for setting in SETTINGS:
        assert s.get(setting.key) == setting.default
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
    assert again.snapshot().model.context_size == 2048 and again.snapshot().network.offline is True


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
    assert s.snapshot().model.context_size == 4096
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
    assert s.snapshot().model.context_size == 4096
    assert s.snapshot().model.threads == 3
    joined = " ".join(s.warnings)
    assert "model.context_size" in joined and "ui.flavour" in joined
    assert paths.settings_file.read_text() == text


def test_out_of_range_value_in_file_is_rejected(paths: Paths) -> None:
    paths.config_dir.mkdir(parents=True)
    paths.settings_file.write_text("[generation]\ntemperature = 9.5\n")
    s = Settings.load(paths)
    assert s.snapshot().generation.temperature == 0.7
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


# -- the typed snapshot -------------------------------------------------------------


def test_the_typed_settings_module_is_generated_from_the_declarations() -> None:
    from app import settings_codegen

    assert settings_codegen.TARGET.read_text(encoding="utf-8") == settings_codegen.render(), (
        "app/settings_types.py is stale; run `python -m app.settings_codegen`")


def test_snapshot_holds_every_declared_setting_with_its_declared_default(paths: Paths) -> None:
    from app.settings_types import DEFAULTS, Key

    snap = Settings.load(paths).snapshot()
    assert {k.value for k in Key} == {s.key for s in SETTINGS}
    for setting in SETTINGS:
        section, name = setting.key.split(".", 1)
        assert getattr(getattr(snap, section), name) == setting.default
        assert getattr(getattr(DEFAULTS, section), name) == setting.default
        assert type(getattr(getattr(snap, section), name)) is setting.type


def test_snapshot_is_immutable_and_a_change_makes_a_new_one(paths: Paths) -> None:
    import dataclasses

    from app.settings_types import Key

    s = Settings.load(paths)
    before = s.snapshot()
    assert s.snapshot() is before  # unchanged settings: the same snapshot
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.model.threads = 3  # type: ignore[misc]
    s.set(Key.MODEL_THREADS, 3)
    s.override(Key.NETWORK_OFFLINE, True)
    after = s.snapshot()
    assert (before.model.threads, before.network.offline) == (0, False)
    assert (after.model.threads, after.network.offline) == (3, True)
    # A value from settings.toml arrives typed: an int written for a float setting.
    paths.settings_file.write_text("[generation]\ntemperature = 1\n")
    assert Settings.load(paths).snapshot().generation.temperature == 1.0
    assert type(Settings.load(paths).snapshot().generation.temperature) is float


def test_the_copied_defaults_follow_the_declarations() -> None:
    from pathlib import Path

    from app.core.llm.local import LocalModelConfig
    from app.core.llm.provider import ChatMessage, ChatRequest
    from app.core.llm.router import GenParams, RoutingConfig
    from app.settings_types import DEFAULTS

    assert RoutingConfig() == RoutingConfig.from_settings(DEFAULTS)
    config = LocalModelConfig(Path("m.gguf"))
    assert config == LocalModelConfig.from_settings(Path("m.gguf"), DEFAULTS)
    params, request = GenParams(), ChatRequest((ChatMessage("user", "hi"),))
    for made in (params, request):
        assert (made.max_tokens, made.temperature, made.top_p) == (
            DEFAULTS.generation.max_tokens, DEFAULTS.generation.temperature,
            DEFAULTS.generation.top_p)


def test_code_names_settings_only_through_the_typed_module() -> None:
    """A setting's name written as a string outside the settings modules and the
    settings dialog (which lays out fields by name) would dodge the type check."""
    import ast
    from pathlib import Path

    from app.settings import BY_KEY

    app_dir = Path(__file__).resolve().parents[2] / "app"
    allowed = {"settings.py", "settings_types.py", "settings_codegen.py",
               "ui/settings_dialog.py"}
    found = []
    for file in sorted(app_dir.rglob("*.py")):
        if str(file.relative_to(app_dir)) in allowed:
            continue
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in BY_KEY:
                found.append(f"{file.relative_to(app_dir)}:{node.lineno} {node.value!r}")
    assert not found, "use Settings.snapshot() or Key instead: " + ", ".join(found)
