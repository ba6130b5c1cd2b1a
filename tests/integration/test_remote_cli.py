"""Remote providers end to end: llama.cpp's own OpenAI-compatible server as a
real remote, and the `hearth providers`/`keys`/`ask --route` commands in
subprocesses. Keys never land in files or logs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.llm.openai_compat import OpenAICompatProvider
from app.core.llm.provider import (
    CancelToken,
    Capabilities,
    ChatMessage,
    ChatRequest,
    StreamEnd,
    TextDelta,
)
from app.core.llm.registry import ProviderConfig
from app.core.llm.remote import RemoteError
from tests.fault_server import ANSWER, FaultServer
from tests.helpers import run_hearth

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's own server on the bundled model, on loopback."""
    port = _free_port()
    # A file, not a pipe: an unread pipe fills up and blocks the server.
    log = (tmp_path_factory.mktemp("llama-server") / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
         "--model_alias", "smollm2"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    ready = threading.Event()
    for _ in range(600):  # up to 60 s for the server to import and load
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with status {proc.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=1):
                break
        except OSError:
            ready.wait(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def test_streams_from_a_real_openai_compatible_server(llama_server: str) -> None:
    provider = OpenAICompatProvider(
        ProviderConfig("llamacpp", "openai", llama_server, "smollm2"), None,
        Capabilities(max_context=2048, local=False))
    request = ChatRequest((ChatMessage("user", "Name three colours."),), max_tokens=24,
                          temperature=0.0)
    items = list(provider.stream(request, CancelToken()))
    deltas = [i for i in items if isinstance(i, TextDelta)]
    end = items[-1]
    assert len(deltas) > 3 and "".join(d.text for d in deltas).strip()
    assert isinstance(end, StreamEnd) and end.finish_reason in ("stop", "length")
    assert end.prompt_tokens > 0 and 0 < end.completion_tokens <= 40
    # This server sends no usage while streaming: the counts are marked estimated.
    assert any("estimated" in n for n in end.notes)
    provider.close()


def test_errors_from_a_real_server_are_one_sentence(llama_server: str) -> None:
    provider = OpenAICompatProvider(
        ProviderConfig("llamacpp", "openai", llama_server + "/nowhere", "smollm2"), None,
        Capabilities(max_context=2048, local=False))
    with pytest.raises(RemoteError) as err:
        list(provider.stream(ChatRequest((ChatMessage("user", "hi"),)), CancelToken()))
    assert err.value.reason == "bad_request" and not err.value.retryable
    assert str(err.value) == "llamacpp refused the request (HTTP 404)."
    provider.close()
    closed = _free_port()  # nothing listens there
    dead = OpenAICompatProvider(
        ProviderConfig("dead", "openai", f"http://127.0.0.1:{closed}/v1", "m"), None,
        Capabilities(max_context=2048, local=False))
    with pytest.raises(RemoteError) as err:
        list(dead.stream(ChatRequest((ChatMessage("user", "hi"),)), CancelToken()))
    assert err.value.reason == "network_error" and err.value.retryable
    dead.close()


def test_ask_routed_to_the_real_server_prints_the_route(llama_server: str) -> None:
    add = run_hearth("providers", "add", "llamacpp", "--kind", "openai", "--base-url",
                     llama_server, "--model", "smollm2")
    assert add.returncode == 0, add.stderr
    r = run_hearth("ask", "Say hi.", "--route", "llamacpp", "--max-tokens", "12", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["provider"] == "llamacpp" and data["answer"]
    attempts = data["route"]["attempts"]
    assert [(a["provider"], a["outcome"]) for a in attempts] == [("llamacpp", "answered")]
    assert attempts[0]["completion_tokens"] > 0


@pytest.fixture
def test_keyring(tmp_path: Path) -> dict[str, str]:
    return {"PYTHON_KEYRING_BACKEND": "tests.keyring_backend.FileTestKeyring",
            "HEARTH_TEST_KEYRING": str(tmp_path / "test-keyring.json"),
            "HEARTH_LOG_LEVEL": "DEBUG"}


def test_providers_keys_and_a_fallback_through_the_cli(
        remote: FaultServer, test_keyring: dict[str, str], hearth_home: Path,
        tmp_path: Path) -> None:
    key = "sk-test-9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c"
    env = test_keyring
    add = run_hearth("providers", "add", "backup", "--kind", "openai", "--base-url",
                     remote.openai_url, "--model", "fault-model", "--header", "X-Team=hearth",
                     env=env)
    assert add.returncode == 0 and "hearth keys set backup" in add.stdout
    stored = run_hearth("keys", "set", "backup", input=key + "\n", env=env)
    assert stored.returncode == 0, stored.stderr
    assert key not in stored.stdout + stored.stderr
    listed = json.loads(run_hearth("providers", "list", "--json", env=env).stdout)
    assert listed == [{"name": "backup", "kind": "openai", "base_url": remote.openai_url,
                       "model": "fault-model", "headers": ["X-Team"], "timeout_s": 30.0,
                       "heavy": False, "key": "keyring"}]
    tested = run_hearth("providers", "test", "backup", env=env)
    assert tested.returncode == 0 and tested.stdout.startswith("backup works: fault-model")
    # A question the local model cannot start on in time falls back, and says so.
    assert run_hearth("config", "set", "routing.ttft_timeout_s", "0.02").returncode == 0
    assert run_hearth("config", "set", "routing.reading_allowance", "0").returncode == 0
    question = "Summarise: " + "lorem ipsum dolor sit amet " * 120
    r = run_hearth("ask", question, "--max-tokens", "8", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "".join(ANSWER)
    assert "answered by backup/fault-model — local model timed out after 0.02 s" in r.stderr
    assert "conversation " in r.stderr.splitlines()[-1]
    sent = remote.requests[-1]
    assert sent["headers"]["authorization"] == f"Bearer {key}"
    assert sent["headers"]["x-team"] == "hearth"
    # The key is nowhere in Hearth's own files: settings, providers, logs, database.
    files = [p for p in hearth_home.rglob("*") if p.is_file()]
    assert any(p.name == "hearth.log" for p in files)
    assert any(p.name == "providers.toml" for p in files)
    for path in files:
        assert key.encode() not in path.read_bytes(), path
    assert key not in "".join(r.stdout + r.stderr for r in (add, tested, r))
    deleted = run_hearth("keys", "delete", "backup", env=env)
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    removed = run_hearth("providers", "remove", "backup", env=env)
    assert removed.returncode == 0
    assert json.loads(run_hearth("providers", "list", "--json", env=env).stdout) == []


def test_a_plaintext_keyring_is_refused_by_the_cli(tmp_path: Path) -> None:
    env = {"PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
           "XDG_DATA_HOME": str(tmp_path / "xdg")}
    r = run_hearth("keys", "set", "openai", input="sk-plain-should-not-be-written-123\n",
                   env=env)
    assert r.returncode == 1
    assert "plain-text file" in r.stderr and "HEARTH_OPENAI_API_KEY" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not any(b"sk-plain" in p.read_bytes() for p in written)


def test_bad_provider_input_is_one_sentence() -> None:
    bad_url = run_hearth("providers", "add", "x", "--kind", "openai", "--base-url",
                         "not a url", "--model", "m")
    assert bad_url.returncode == 1 and "is not a web address" in bad_url.stderr
    bad_name = run_hearth("providers", "add", "local", "--kind", "openai", "--base-url",
                          "http://127.0.0.1:1/v1", "--model", "m")
    assert bad_name.returncode == 1 and "cannot be a provider name" in bad_name.stderr
    key_header = run_hearth("providers", "add", "x", "--kind", "openai", "--base-url",
                            "http://127.0.0.1:1/v1", "--model", "m", "--header",
                            "Authorization=Bearer abc")
    assert key_header.returncode == 1 and "hearth keys set x" in key_header.stderr
    missing = run_hearth("providers", "remove", "ghost")
    assert missing.returncode == 1 and "There is no provider called 'ghost'" in missing.stderr
    no_remote = run_hearth("ask", "hi", "--route", "remote-first")
    assert no_remote.returncode == 1
    assert "No remote provider is set up" in no_remote.stderr
