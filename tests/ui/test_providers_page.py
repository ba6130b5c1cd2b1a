"""Settings › Providers against the loopback fault server (which checks the
key like a real service) and a test keyring backend (no OS keyring runs on
this headless machine; keyring lets a program choose its backend)."""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backends import fail
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from app.core.llm.registry import providers_file
from app.ui.providers_page import ProvidersPage
from app.ui.settings_dialog import RoutingPage, SettingsDialog
from tests.fault_server import ANSWER, FaultServer
from tests.helpers import GuiTicks, providers_page
from tests.keyring_backend import MemoryKeyring

RIGHT_KEY = "sk-right-4f3e2d1c0b9a8f7e6d5c4b3a"
WRONG_KEY = "sk-wrong-0a1b2c3d4e5f6a7b8c9d0e1f"


@pytest.fixture
def server() -> Iterator[FaultServer]:
    s = FaultServer(api_key=RIGHT_KEY)
    yield s
    s.close()


def fill(page: ProvidersPage, server: FaultServer, key: str = "", name: str = "faulty") -> None:
    page.new()
    page.name.setText(name)
    page.kind.setCurrentIndex(page.kind.findData("openai"))
    page.base_url.setText(server.openai_url + "/")
    page.model.setText("fault-model")
    page.headers.setPlainText("X-Team: hearth\n")
    page.timeout.setValue(5.0)
    page.key.setText(key)


def wait_done(qtbot: QtBot, page: ProvidersPage, action: Any) -> str:
    with qtbot.waitSignal(page.finished, timeout=20_000) as done:
        action()
    qtbot.waitUntil(lambda: not page.busy, timeout=5_000)
    return str(done.args[0])


def test_add_a_provider_store_its_key_and_test_it(
        qtbot: QtBot, hearth: Any, server: FaultServer, memory_keyring: MemoryKeyring,
        hearth_home: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    dialog = hearth.open_settings()
    page = providers_page(dialog)
    assert page.key.echoMode() == QLineEdit.EchoMode.Password
    assert page.list.count() == 0 and page.test_button.isEnabled()  # tests the form
    assert [hearth.window.route_chooser.itemData(i)
            for i in range(hearth.window.route_chooser.count())] == ["auto", "local-only"]

    # A wrong key: stored in the keyring, refused by the server, said in words.
    fill(page, server, WRONG_KEY)
    with qtbot.waitSignal(dialog.providers_changed, timeout=5_000) as changed:
        said = wait_done(qtbot, page, page.save_button.click)
    assert changed.args[0] == ["faulty"]
    assert said == "Saved faulty; its key is in the system keyring."
    assert page.key.text() == ""
    assert memory_keyring.store == {("hearth", "faulty"): WRONG_KEY}
    qtbot.waitUntil(lambda: "key: keyring" in page.list.item(0).text(), timeout=5_000)
    saved = tomllib.loads(providers_file(page.paths).read_text())["provider"]
    assert saved == [{"name": "faulty", "kind": "openai", "base_url": server.openai_url,
                      "model": "fault-model", "headers": {"X-Team": "hearth"},
                      "timeout_s": 5.0, "heavy": False, "context_window": 0}]
    # The route chooser and the routing policy now offer the provider by name.
    assert hearth.window.route_chooser.findData("faulty") >= 0
    routing = dialog.page("Routing")
    assert isinstance(routing, RoutingPage)
    assert routing.policy.findData("faulty") >= 0  # type: ignore[attr-defined]

    said = wait_done(qtbot, page, page.test_button.click)
    assert said == (f"The server at 127.0.0.1:{server.port} refused the key (401 "
                    "unauthorized); check the key for faulty and test again.")
    assert page.status.text() == said
    assert server.requests[-1]["headers"]["authorization"] == f"Bearer {WRONG_KEY}"

    # The right key replaces it; the test now gets the server's answer.
    page.key.setText(RIGHT_KEY)
    wait_done(qtbot, page, page.save_button.click)
    assert memory_keyring.store == {("hearth", "faulty"): RIGHT_KEY}
    said = wait_done(qtbot, page, page.test_button.click)
    assert said.startswith(f"faulty works: fault-model answered {''.join(ANSWER)!r} (")
    sent = server.requests[-1]["headers"]
    assert sent["authorization"] == f"Bearer {RIGHT_KEY}" and sent["x-team"] == "hearth"

    # Neither key is in any of Hearth's files, nor in the log.
    files = [p for p in hearth_home.rglob("*") if p.is_file()]
    assert any(p.name == "providers.toml" for p in files)
    for path in files:
        data = path.read_bytes()
        assert RIGHT_KEY.encode() not in data and WRONG_KEY.encode() not in data, path
    assert RIGHT_KEY not in caplog.text and WRONG_KEY not in caplog.text


def test_edit_forget_and_remove(qtbot: QtBot, dialog: SettingsDialog, server: FaultServer,
                                memory_keyring: MemoryKeyring) -> None:
    page = providers_page(dialog)
    fill(page, server, RIGHT_KEY)
    wait_done(qtbot, page, page.save_button.click)
    fill(page, server, name="second")
    # No key typed: nothing goes to the keyring.
    assert wait_done(qtbot, page, page.save_button.click) == "Saved second."
    assert page.status.text() == "Saved second."
    qtbot.waitUntil(lambda: page.list.count() == 2, timeout=5_000)
    page.list.setCurrentRow(0)
    assert page.editing == "faulty" and page.name.isReadOnly()
    assert page.headers.toPlainText() == "X-Team: hearth"
    page.model.setText("bigger-model")
    page.heavy.setChecked(True)
    wait_done(qtbot, page, page.save_button.click)
    saved = tomllib.loads(providers_file(page.paths).read_text())["provider"]
    assert [(p["name"], p["model"], p["heavy"]) for p in saved] == [
        ("faulty", "bigger-model", True), ("second", "fault-model", False)]
    said = wait_done(qtbot, page, page.forget_button.click)
    assert said == "Forgot the key for faulty." and memory_keyring.store == {}
    with qtbot.waitSignal(page.changed, timeout=5_000) as changed:
        page.remove_button.click()
    assert changed.args[0] == ["second"]
    assert page.status.text().startswith("Removed faulty;")
    assert [p["name"] for p in tomllib.loads(
        providers_file(page.paths).read_text())["provider"]] == ["second"]


def test_bad_provider_input_is_one_sentence_and_nothing_is_written(
        qtbot: QtBot, dialog: SettingsDialog, server: FaultServer,
        memory_keyring: MemoryKeyring) -> None:
    page = providers_page(dialog)
    cases = [
        (lambda: page.base_url.setText("not a url"), "is not a web address"),
        (lambda: page.name.setText("local"), "cannot be a provider name"),
        (lambda: page.model.setText(" "), "The model name is empty"),
        (lambda: page.headers.setPlainText("just-a-name"),
         "Each header line needs a name and a value"),
        (lambda: page.headers.setPlainText("Authorization: Bearer abc"),
         "store keys with `hearth keys set faulty`"),
    ]
    for spoil, words in cases:
        fill(page, server, RIGHT_KEY)
        spoil()
        page.save_button.click()
        assert words in page.status.text()
        assert page.status.text().count(". ") == 0  # one sentence
        assert not providers_file(page.paths).exists()
    assert memory_keyring.store == {}
    assert page.key.text() == RIGHT_KEY  # kept in the form to fix and save again
    fill(page, server)
    wait_done(qtbot, page, page.save_button.click)
    fill(page, server)
    wait_done(qtbot, page, page.save_button.click)
    assert page.status.text() == "A provider called faulty already exists; remove it first."


def test_a_refused_keyring_is_explained_and_the_environment_variable_works(
        qtbot: QtBot, dialog: SettingsDialog, server: FaultServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        page = providers_page(dialog)
        fill(page, server)
        page.save_button.click()
        qtbot.waitUntil(lambda: not page.keyring_note.isHidden(), timeout=5_000)
        note = page.keyring_note.text()
        assert note.startswith("Hearth will not store keys because no OS keyring was found;")
        assert "HEARTH_<NAME>_API_KEY" in note and "HEARTH_FAULTY_API_KEY" in note
        assert not page.key.isEnabled()
        said = wait_done(qtbot, page, page.test_button.click)
        assert said == (f"The server at 127.0.0.1:{server.port} asked for a key (401 "
                        "unauthorized) and none is stored for faulty; enter one and test again.")
        monkeypatch.setenv("HEARTH_FAULTY_API_KEY", RIGHT_KEY)
        page.reload(select="faulty")
        qtbot.waitUntil(lambda: "environment (HEARTH_FAULTY_API_KEY)" in
                        page.list.item(0).text(), timeout=5_000)
        said = wait_done(qtbot, page, page.test_button.click)
        assert said.startswith("faulty works: fault-model answered")
    finally:
        keyring.set_keyring(previous)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


def test_test_connection_names_the_cause_and_the_address_of_unsaved_values(
        qtbot: QtBot, dialog: SettingsDialog, server: FaultServer,
        memory_keyring: MemoryKeyring) -> None:
    page = providers_page(dialog)
    at = f"127.0.0.1:{server.port}"
    closed = _closed_port()
    cases: list[tuple[str, str, str, str]] = [
        # (base URL, key, fault queued, the sentence)
        (f"http://127.0.0.1:{closed}/v1", RIGHT_KEY, "",
         f"Connection refused at 127.0.0.1:{closed} — is the server running, is the URL "
         "right?"),
        ("http://no-such-host.invalid/v1", RIGHT_KEY, "",
         "The server name no-such-host.invalid could not be found (DNS lookup failed) — is "
         "the URL right, and is this computer online?"),
        (f"https://127.0.0.1:{server.port}/v1", RIGHT_KEY, "",
         f"The secure (TLS) connection to {at} failed (wrong version number) — does the "
         "server speak HTTPS, or should the URL start with http://?"),
        (server.openai_url, WRONG_KEY, "",
         f"The server at {at} refused the key (401 unauthorized); check the key for faulty "
         "and test again."),
        (server.openai_url, RIGHT_KEY, "403",
         f"The server at {at} refused the key (403 forbidden); check the key for faulty and "
         "test again."),
        (server.openai_url, RIGHT_KEY, "404",
         f"Nothing was found at {server.openai_url} (HTTP 404) — is the base URL right "
         "(OpenAI-compatible ones usually end in /v1), and does the server have the model "
         "'fault-model'?"),
        (server.openai_url, RIGHT_KEY, "hang_headers",
         f"The server at {at} took the request but sent no answer within 2.5 s — is it "
         "overloaded, or is something else listening on that port?"),
    ]
    for url, key, fault, sentence in cases:
        fill(page, server, key)
        page.base_url.setText(url)
        page.timeout.setValue(0.5)
        if fault:
            server.queue(fault)
        ticks = GuiTicks()
        with qtbot.waitSignal(page.finished, timeout=20_000) as done:
            page.test_button.click()
            assert page.busy and page.status.text() == f"Testing faulty at {url}…"
        qtbot.waitUntil(lambda: not page.busy, timeout=5_000)
        ticks.timer.stop()
        assert done.args[0] == sentence, url
        assert page.status.text() == sentence
        if fault == "hang_headers":
            # 2.5 s of waiting for the server left the GUI thread free throughout.
            assert ticks.count >= 50
            server.release.set()
    # Nothing was saved, and the typed key went only to the server, not the keyring.
    assert not providers_file(page.paths).exists() and memory_keyring.store == {}
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {WRONG_KEY}"
