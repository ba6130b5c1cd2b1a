"""Nothing leaks: a fake OpenAI-compatible server on 127.0.0.1 records every
request, and these tests check what reached it. Local-only text (passages,
answers built from them, the conversation that holds them) never does;
seeded secrets never do; each question's network policy is its own."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core import offline
from app.core.assistant import AskOptions, Assistant
from app.core.events import Error, Finished, Route
from app.core.knowledge.base import KnowledgeBase
from app.core.llm.openai_compat import OpenAICompatProvider
from app.core.llm.probe import probe_provider
from app.core.llm.provider import CancelToken, Capabilities, ChatMessage
from app.core.llm.registry import ProviderConfig, add_provider
from app.core.llm.router import Answered, GenParams, Router, RoutingConfig
from app.core.prompting import ContextChunk, PromptPlan
from app.paths import Paths
from app.settings import Settings
from tests.fault_server import FaultServer
from tests.kb_helpers import wait_for
from tests.secret_corpus import secrets

pytestmark = pytest.mark.slow


@pytest.fixture
def assistant(settings: Settings, paths: Paths, remote: FaultServer) -> Iterator[Assistant]:
    add_provider(paths, ProviderConfig("faulty", "openai", remote.openai_url, "fault-model",
                                       timeout_s=30))
    a = Assistant(settings, paths)
    yield a
    a.close()


def sent_text(request: dict[str, Any]) -> str:
    """Every message of a recorded request, as the provider received it."""
    return "\n".join(str(m.get("content", "")) for m in request["body"].get("messages", []))


def events_of(assistant: Assistant, question: str, conv: str | None = None,
              **options: Any) -> list[Any]:
    return list(assistant.ask(question, conv, AskOptions(**options)))


# -- the network policy -----------------------------------------------------------------


def test_two_questions_in_flight_one_offline_one_remote(assistant: Assistant,
                                                         remote: FaultServer) -> None:
    remote.queue("gate")  # the remote answer waits until the offline one is done
    results: dict[str, list[Any]] = {}

    def ask_remote() -> None:
        results["remote"] = events_of(assistant, "Remote question?", route="faulty",
                                      use_files=False, max_tokens=8)

    thread = threading.Thread(target=ask_remote)
    thread.start()
    try:
        wait_for(lambda: remote.requests, what="the remote request")
        offline_events = events_of(assistant, "Offline question?", offline=True,
                                   use_files=False, max_tokens=4, temperature=0.0)
        # While the offline question held its policy, this thread was not offline.
        assert offline.network_allowed() and not offline.backstop_installed()
    finally:
        remote.gate.set()
        thread.join(30)
    done = offline_events[-1]
    assert isinstance(done, Finished) and done.provider == "local", done
    route = next(e for e in offline_events if isinstance(e, Route))
    assert route.policy == "local-only"
    answered = results["remote"][-1]
    assert isinstance(answered, Finished) and answered.provider == "faulty", answered
    assert len(remote.requests) == 1
    assert "Offline question" not in remote.requests[0]["raw"]


def test_a_request_held_offline_cannot_connect_while_another_can() -> None:
    outcome: dict[str, str] = {}
    other_ready, offline_done = threading.Event(), threading.Event()

    def attempt(name: str) -> None:
        import socket

        with socket.socket() as s:
            s.settimeout(0.3)
            try:
                s.connect(("192.0.2.10", 9))  # TEST-NET: nothing answers there
                outcome[name] = "connected"
            except offline.OfflineError:
                outcome[name] = "refused by Hearth"
            except OSError:
                outcome[name] = "tried the network"

    def held() -> None:
        with offline.policy(allow_network=False):
            other_ready.wait(5)
            attempt("offline")
            offline_done.set()

    def free() -> None:
        other_ready.set()
        offline_done.wait(5)  # the backstop is installed right now
        attempt("online")

    threads = [threading.Thread(target=held), threading.Thread(target=free)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert outcome == {"offline": "refused by Hearth", "online": "tried the network"}
    assert not offline.backstop_installed()


def test_provider_test_sends_nothing_when_offline(settings: Settings, paths: Paths,
                                                  remote: FaultServer) -> None:
    add_provider(paths, ProviderConfig("faulty", "openai", remote.openai_url, "fault-model"))
    settings.override("network.offline", True)
    result = probe_provider(settings, paths, "faulty")
    assert not result.ok and result.reason == "offline"
    assert result.message == ("Hearth is offline, so nothing was sent to faulty; turn offline "
                              "mode off (network.offline) to test it.")
    assert remote.requests == []


def test_offline_mode_is_on_from_start_up(settings: Settings, paths: Paths) -> None:
    from app.cli_common import load_settings

    settings.set("network.offline", True)
    try:
        load_settings()
        assert offline.is_persistent() and offline.backstop_installed()
        with pytest.raises(offline.OfflineError, match="was not done"):
            offline.require_network("downloading the model")
    finally:
        offline.disable()


# -- the local-only boundary ---------------------------------------------------------------


def test_local_only_text_never_leaves_through_the_conversation(
        assistant: Assistant, remote: FaultServer, paths: Paths, settings: Settings,
        tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir()
    (private / "diary.md").write_text(
        "# Diary\n\nThe vault code is PELICAN-SUNRISE-4471. Only I know it; it opens the "
        "blue vault in the cellar.\n")
    with KnowledgeBase(paths, settings, writer=True) as kb:
        kb.add_folder(private, local_only=True)
        kb.reconcile()

    first = events_of(assistant, "What is the vault code in my diary?", route="local-only",
                      max_tokens=32, temperature=0.0)
    done = first[-1]
    assert isinstance(done, Finished) and done.local_only
    conv = done.conversation_id
    stored = assistant.store.messages(conv)
    assert [m.local_only for m in stored] == [False, True]

    second = events_of(assistant, "Thanks. Anything else?", conv, route="faulty",
                       use_files=False, max_tokens=8)
    answered = second[-1]
    assert isinstance(answered, Finished) and answered.provider == "faulty", answered
    sent = sent_text(remote.requests[-1])
    assert "PELICAN" not in sent and "vault code" not in sent
    if done.answer.strip():
        assert done.answer.strip()[:40] not in sent
    assert "Thanks. Anything else?" in sent
    route = next(e for e in second if isinstance(e, Route))
    assert route.history_withheld == 2
    assert ("2 earlier messages of this conversation were not sent to faulty: they quote "
            "files from a local-only folder") in answered.notes
    # The answer from the remote provider holds no local-only text.
    assert not answered.local_only and not assistant.store.messages(conv)[-1].local_only

    # The folder is removed (index and files) while the conversation still
    # quotes it: the marks stay, so the quote still never leaves.
    with KnowledgeBase(paths, settings, writer=True) as kb:
        kb.remove_folder(private)
    shutil.rmtree(private)
    third = events_of(assistant, "One more thing?", conv, route="faulty", use_files=False,
                      max_tokens=8)
    assert isinstance(third[-1], Finished)
    sent = sent_text(remote.requests[-1])
    assert "PELICAN" not in sent and "What is the vault code" not in sent
    assert "Thanks. Anything else?" in sent  # the remote turns are still context


def test_a_symlink_into_a_local_only_folder_is_not_indexed_as_normal_text(
        paths: Paths, settings: Settings, tmp_path: Path) -> None:
    normal, private = tmp_path / "normal", tmp_path / "private"
    normal.mkdir()
    private.mkdir()
    (private / "secret.md").write_text("The heron password hint is marmalade-ninety.\n")
    (private / "back").symlink_to(normal, target_is_directory=True)  # a loop: private -> normal
    (normal / "notes.md").write_text("Shopping list: eggs, flour.\n")
    (normal / "linked.md").symlink_to(private / "secret.md")
    (normal / "into-private").symlink_to(private, target_is_directory=True)
    with KnowledgeBase(paths, settings, writer=True) as kb:
        kb.add_folder(normal)
        kb.add_folder(private, local_only=True)
        kb.reconcile()
        hits = kb.search("heron password hint marmalade", 10)
        assert hits, "the private file itself is indexed"
        for hit in hits:
            if "marmalade" in hit.text:
                assert hit.local_only and hit.path.startswith(str(private)), hit
        status = kb.status(errors=True)
    normal_status = next(f for f in status["folders"] if f["path"] == str(normal))
    assert normal_status["indexed"] == 1  # notes.md only


# -- secrets -------------------------------------------------------------------------------

CAPS = Capabilities(max_context=1_000_000, local=False)


def _remote_router(server: FaultServer) -> Router:
    provider = OpenAICompatProvider(ProviderConfig("faulty", "openai", server.openai_url, "m"),
                                    None, CAPS)
    return Router(None, [provider], RoutingConfig(), allow_network=True)


def _send(server: FaultServer, plan: PromptPlan) -> tuple[str, Answered]:
    items = list(_remote_router(server).run(plan, GenParams(max_tokens=8), CancelToken(),
                                            policy="faulty"))
    answered = items[-1]
    assert isinstance(answered, Answered)
    return sent_text(server.requests[-1]), answered


def test_every_seeded_secret_is_caught_in_the_outbound_payload(remote: FaultServer) -> None:
    seeded = secrets()
    assert len({s.kind for s in seeded}) >= 50
    chunks = tuple(ContextChunk(i, f"config/{s.kind}.env", f"# {s.kind}\n{s.text}\n", 1, 3)
                   for i, s in enumerate(seeded, start=1))
    history = tuple(ChatMessage("user" if i % 2 == 0 else "assistant", s.text)
                    for i, s in enumerate(seeded[:20]))
    question = "Check these settings: " + " ; ".join(s.text for s in seeded[20:30])
    sent, answered = _send(remote, PromptPlan("Be brief.", history, question, chunks))
    leaked = [s.kind for s in seeded if s.secret in sent]
    assert leaked == [], f"secrets sent verbatim: {leaked}"
    # Multi-word values are redacted whole, not up to their first word.
    words = [w for s in seeded if " " in s.secret for w in s.secret.split() if len(w) >= 5]
    assert [w for w in words if w in sent] == []
    assert sum(answered.route.redactions.values()) >= len(seeded)
    assert "[REDACTED" in sent and "config/aws_access_key.env" in sent


def test_a_secret_split_across_two_passages_is_redacted_on_both_sides(
        remote: FaultServer) -> None:
    key = "sk-proj-" + "Zq8" * 8 + "Xy4Kp2Lm9Nb7Vc5Qw3Er1Ty6Ui0Op8As"
    cut = 20
    chunks = (ContextChunk(1, "notes/setup.md", f"Set the key to {key[:cut]}", 1, 4),
              ContextChunk(2, "notes/setup.md", f"{key[cut:]} and restart.", 5, 8))
    sent, answered = _send(remote, PromptPlan("", (), "What key do I set?", chunks))
    assert key[:cut] not in sent and key[cut:] not in sent
    assert key[cut:cut + 12] not in sent and key[cut - 12:cut] not in sent
    assert "Set the key to" in sent and "and restart." in sent
    assert answered.route.redactions


def test_a_key_with_spaces_or_non_ascii_is_refused_in_one_sentence(
        assistant: Assistant, remote: FaultServer, memory_keyring: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core import secrets as keys
    from app.core.errors import HearthError

    with pytest.raises(HearthError, match="contains spaces or line breaks"):
        keys.set_key("faulty", "sk-abc def")
    with pytest.raises(HearthError, match="other than plain ASCII"):
        keys.set_key("faulty", "sk-clé-secrète")
    monkeypatch.setenv(keys.env_var("faulty"), "sk-clé-secrète-42")
    err = events_of(assistant, "Hello?", route="faulty", use_files=False)[-1]
    assert isinstance(err, Error)
    assert err.message == ("The key for faulty contains characters other than plain ASCII "
                           "letters, digits and punctuation; paste only the key.")
    assert "clé" not in err.message and remote.requests == []
