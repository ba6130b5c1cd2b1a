"""`hearth uninstall`: lists what it removes, asks, keeps the user's data
without --purge, and with it removes data, settings and the keyring's keys."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from app import desktop
from tests.helpers import run_hearth


def _ours(root: Path) -> list[Path]:
    # update-desktop-database leaves its own cache of every entry's types.
    return [p for p in root.rglob("*") if p.is_file() and p.name != "mimeinfo.cache"]


@pytest.fixture
def env(tmp_path: Path, hearth_home: Path) -> dict[str, str]:
    # The test keyring is a real keyring backend shared with the subprocess;
    # the OS keyring cannot run on this headless machine.
    return {"PYTHON_KEYRING_BACKEND": "tests.keyring_backend.FileTestKeyring",
            "HEARTH_TEST_KEYRING": str(tmp_path / "test-keyring.json"),
            "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
            "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
            "HEARTH_HOME": str(hearth_home)}


def _set_up(env: dict[str, str], hearth_home: Path, tmp_path: Path) -> None:
    """A user's Hearth: a provider with a key, a setting, a conversation-sized
    data folder, a model file, the menu and autostart entries."""
    for args in (["providers", "add", "groq", "--kind", "openai", "--base-url",
                  "http://127.0.0.1:9/v1", "--model", "m"],
                 ["config", "set", "generation.max_tokens", "64"],
                 ["--install-desktop-entry"]):
        done = run_hearth(*args, env=env)
        assert done.returncode == 0, done.stderr
    done = run_hearth("keys", "set", "groq", input="sk-test-1234567890abcdef\n", env=env)
    assert done.returncode == 0, done.stderr
    (hearth_home / "data" / "models").mkdir(parents=True)
    (hearth_home / "data" / "models" / "a.gguf").write_bytes(b"GGUF" + bytes(2048))
    (hearth_home / "data" / "conversations.sqlite3").write_bytes(b"")
    autostart_entry = tmp_path / "xdg-config" / "autostart" / "hearth.desktop"
    autostart_entry.parent.mkdir(parents=True)
    autostart_entry.write_text(desktop.entry_text(["X-Hearth-Autostart=true"]))


def test_without_purge_only_the_desktop_entries_go(
        env: dict[str, str], hearth_home: Path, tmp_path: Path) -> None:
    _set_up(env, hearth_home, tmp_path)
    done = run_hearth("uninstall", "--yes", env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"application menu entry: {tmp_path}/xdg-data/applications/" in out
    assert f"start-at-login entry: {tmp_path}/xdg-config/autostart/hearth.desktop" in out
    assert "Kept (add --purge to remove them too):" in out
    assert f"conversations: {hearth_home}/data/conversations.sqlite3" in out
    assert _ours(tmp_path / "xdg-data") == []
    assert not (tmp_path / "xdg-config" / "autostart" / "hearth.desktop").exists()
    assert (hearth_home / "data" / "models" / "a.gguf").is_file()
    assert (hearth_home / "config" / "settings.toml").is_file()
    assert "hearth/groq" in json.loads(Path(env["HEARTH_TEST_KEYRING"]).read_text())


def test_purge_lists_everything_asks_and_removes_it(
        env: dict[str, str], hearth_home: Path, tmp_path: Path) -> None:
    _set_up(env, hearth_home, tmp_path)
    keyring_file = Path(env["HEARTH_TEST_KEYRING"])
    stored = json.loads(keyring_file.read_text())
    assert list(stored) == ["hearth/groq"]

    no = run_hearth("uninstall", "--purge", input="n\n", env=env)
    assert no.returncode == 0 and no.stdout.rstrip().endswith("Nothing was removed.")
    for line in (f"conversations: {hearth_home}/data/conversations.sqlite3",
                 f"downloaded and imported models: {hearth_home}/data/models",
                 f"settings and providers: {hearth_home}/config",
                 "API key of provider 'groq' in the keyring",
                 "application menu entry: "):
        assert line in no.stdout
    assert (hearth_home / "config" / "providers.toml").is_file()

    yes = run_hearth("uninstall", "--purge", input="y\n", env=env)
    assert yes.returncode == 0, yes.stderr
    assert "Removed." in yes.stdout
    assert not hearth_home.exists()
    assert json.loads(keyring_file.read_text()) == {}
    assert _ours(tmp_path / "xdg-data") == []

    again = run_hearth("uninstall", "--purge", "--yes", env=env)
    assert again.returncode == 0 and "nothing to remove" in again.stdout


def test_a_key_from_the_environment_is_not_hearths_to_remove(
        env: dict[str, str], hearth_home: Path, tmp_path: Path) -> None:
    _set_up(env, hearth_home, tmp_path)
    done = run_hearth("uninstall", "--purge", "--yes",
                      env={**env, "HEARTH_GROQ_API_KEY": "sk-env-1234567890abcdef"})
    assert done.returncode == 0, done.stderr
    assert "API key of provider" not in done.stdout
    assert "hearth/groq" in json.loads(Path(env["HEARTH_TEST_KEYRING"]).read_text())


def test_the_last_step_names_the_bundles_folder(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli_install import how_to_remove_the_program

    assert "pip uninstall hearth" in how_to_remove_the_program()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "hearth" / "hearth"))
    assert how_to_remove_the_program() == (
        f"The hearth app itself goes when you delete its folder, {tmp_path / 'hearth'}.")
