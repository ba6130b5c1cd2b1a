"""Keys in the keyring: the happy path on a test backend, refusal of backends
that would not keep a key safe, and the environment variable that wins."""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import pytest
from keyring.backends import fail
from keyrings.alt.file import PlaintextKeyring

from app.core import secrets
from tests.keyring_backend import MemoryKeyring


@pytest.fixture
def refused(request: pytest.FixtureRequest, tmp_path) -> Iterator[None]:
    previous = keyring.get_keyring()
    if request.param == "fail":
        keyring.set_keyring(fail.Keyring())
    else:
        backend = PlaintextKeyring()
        backend.file_path = str(tmp_path / "plain.cfg")  # type: ignore[misc]
        keyring.set_keyring(backend)
    yield
    keyring.set_keyring(previous)


def test_set_get_delete_on_a_usable_backend(memory_keyring: MemoryKeyring,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTH_GROQ_API_KEY", raising=False)
    assert secrets.backend_status().usable
    secrets.set_key("groq", "  gsk_secretvalue123  \n")
    assert memory_keyring.store[("hearth", "groq")] == "gsk_secretvalue123"
    assert secrets.get_key("groq") == "gsk_secretvalue123"
    assert secrets.key_source("groq") == "keyring"
    assert secrets.delete_key("groq") and secrets.get_key("groq") is None
    assert not secrets.delete_key("groq")


def test_environment_variable_wins(memory_keyring: MemoryKeyring,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    secrets.set_key("my-llm", "from-keyring")
    monkeypatch.setenv("HEARTH_MY_LLM_API_KEY", "from-env")
    assert secrets.env_var("my-llm") == "HEARTH_MY_LLM_API_KEY"
    assert secrets.get_key("my-llm") == "from-env"
    assert secrets.key_source("my-llm") == "environment (HEARTH_MY_LLM_API_KEY)"


def test_empty_or_multiline_keys_are_refused(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(secrets.HearthError, match="The key is empty"):
        secrets.set_key("x", "   ")
    with pytest.raises(secrets.HearthError, match="spaces or line breaks"):
        secrets.set_key("x", "abc def")
    assert memory_keyring.store == {}


@pytest.mark.parametrize(("refused", "why"), [("fail", "no OS keyring was found"),
                                               ("plain", "plain-text file")],
                         indirect=["refused"])
def test_unsafe_backends_are_refused_with_the_fix(refused: None, why: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    status = secrets.backend_status()
    assert not status.usable and why in status.note
    with pytest.raises(secrets.KeyringUnusableError) as err:
        secrets.set_key("openai", "sk-should-never-be-stored-0000000000")
    message = str(err.value)
    assert why in message and "Secret Service" in message and "HEARTH_OPENAI_API_KEY" in message
    assert "sk-should" not in message
    # the environment variable still works where the keyring does not
    monkeypatch.setenv("HEARTH_OPENAI_API_KEY", "env-key")
    assert secrets.get_key("openai") == "env-key"
