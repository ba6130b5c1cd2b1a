"""The router with the real local model: deadlines that fire while llama.cpp
is busy, the local computation really stopping, the privacy gate on the way
out, and the facade keeping everything in the conversation store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from app.core import offline
from app.core.assistant import AskOptions, Assistant
from app.core.events import Delta, Error, Fallback, Finished, Progress, Route
from app.core.llm.local import LocalProvider
from app.core.llm.openai_compat import OpenAICompatProvider
from app.core.llm.provider import (
    CancelToken,
    Capabilities,
    ChatMessage,
    PromptProgress,
    TextDelta,
)
from app.core.llm.registry import ProviderConfig, add_provider
from app.core.llm.router import Answered, GenParams, Router, RoutingConfig, Switched
from app.core.prompting import ContextChunk, PromptPlan
from app.paths import Paths
from app.settings import Settings
from tests.fault_server import ANSWER, FaultServer
from tests.helpers import LONG_QUESTION

pytestmark = pytest.mark.slow

CAPS = Capabilities(max_context=32768, local=False)


def provider_for(server: FaultServer, name: str = "faulty") -> OpenAICompatProvider:
    return OpenAICompatProvider(ProviderConfig(name, "openai", server.openai_url, "m"),
                                None, CAPS)


def test_first_token_timeout_stops_the_local_model_and_falls_back(
        engine: LocalProvider, remote: FaultServer) -> None:
    fallback = provider_for(remote)
    # No reading allowance: the deadline is the bare 0.2 s.
    router = Router(lambda: engine, [fallback],
                    RoutingConfig(ttft_timeout_s=0.2, reading_allowance=0))
    plan = PromptPlan("", (), LONG_QUESTION)
    assert engine.count_tokens(plan.render()) > 1500  # seconds of prompt evaluation here
    items = list(router.run(plan, GenParams(max_tokens=32), CancelToken()))
    answered = items[-1]
    assert isinstance(answered, Answered) and answered.provider == "faulty"
    local = answered.route.attempts[0]
    assert (local.provider, local.outcome, local.reason) == ("local", "failed", "ttft_timeout")
    assert answered.route.summary == "answered by faulty/fault-model — " \
                                     "local model timed out after 0.2 s"
    assert next(i for i in items if isinstance(i, Switched)).abandoned == ""
    # The remote request went out straight after the deadline (the benchmark
    # measures this properly; here only a generous bound).
    assert answered.trigger_at is not None
    assert remote.requests[0]["received_at"] - answered.trigger_at < 1.0
    # The local engine is free again: a request queued behind the abandoned
    # prompt evaluation is served long before that evaluation would have ended.
    done = threading.Event()
    worker = threading.Thread(target=lambda: (engine.count_tokens(plan.render()), done.set()))
    worker.start()
    assert done.wait(3.0), "the abandoned local computation is still running"
    worker.join()
    # ...and the CPU is idle: measured over a short window (a measurement, not a wait).
    proc = psutil.Process()
    before = sum(proc.cpu_times()[:2])
    threading.Event().wait(0.5)
    assert sum(proc.cpu_times()[:2]) - before < 0.25
    fallback.close()


def test_a_local_stall_abandons_the_partial_text_for_the_remote_answer(
        engine: LocalProvider, remote: FaultServer) -> None:
    fallback = provider_for(remote)
    # No model produces tokens 0.1 ms apart on this machine: a stall after
    # the first token, for real.
    router = Router(lambda: engine, [fallback],
                    RoutingConfig(ttft_timeout_s=30.0, stall_timeout_s=0.0001))
    items = list(router.run(PromptPlan("", (), "Name three colours."),
                            GenParams(max_tokens=64, temperature=0.0), CancelToken()))
    answered = items[-1]
    assert isinstance(answered, Answered)
    local = answered.route.attempts[0]
    assert (local.outcome, local.reason) == ("abandoned", "stalled")
    switched = next(i for i in items if isinstance(i, Switched))
    assert switched.abandoned  # the local text streamed before the stall
    after = items[items.index(switched) + 1:]
    assert "".join(i.text for i in after if isinstance(i, TextDelta)) == "".join(ANSWER)
    fallback.close()


SEEDED = {
    "openai_key": "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
    "aws_access_key": "AKIAIOSFODNN7EXAMPLE",
    "github_token": "ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R",
    "jwt": ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    "url_password": "hunter2-Pa55",
}
PRIVATE_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
               "-----END OPENSSH PRIVATE KEY-----")


def test_secrets_and_local_only_chunks_never_reach_the_remote(
        tmp_path: Path, remote: FaultServer) -> None:
    notes = tmp_path / "notes" / "deploy.md"
    notes.parent.mkdir()
    notes.write_text(
        "Deploy with key " + SEEDED["openai_key"] + " and " + SEEDED["aws_access_key"] + ".\n"
        "Clone https://deploy:" + SEEDED["url_password"] + "@git.example.com/repo.git\n"
        "token " + SEEDED["github_token"] + "\n" + PRIVATE_KEY + "\n")
    diary = tmp_path / "private" / "diary.md"
    diary.parent.mkdir()
    diary.write_text("Dear diary, the launch code word is PELICAN-MARMALADE.")
    # Chunks as retrieval builds them from the indexed files; diary.md is in a
    # folder marked local-only.
    chunks = (
        ContextChunk(1, str(notes), notes.read_text(), 1, 5),
        ContextChunk(2, str(diary), diary.read_text(), 1, 1, local_only=True),
    )
    plan = PromptPlan("Be brief.", (ChatMessage("user", "my session is " + SEEDED["jwt"]),
                                    ChatMessage("assistant", "Noted.")),
                      "How do I deploy?", chunks)
    fallback = provider_for(remote)
    router = Router(None, [fallback], RoutingConfig())
    answered = list(router.run(plan, GenParams(), CancelToken(), "faulty"))[-1]
    assert isinstance(answered, Answered)
    sent = remote.requests[0]["raw"]
    for secret in [*SEEDED.values(), "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"]:
        assert secret not in sent
    assert "PELICAN-MARMALADE" not in sent and "diary.md" not in sent
    assert "How do I deploy?" in sent and "[REDACTED openai_key]" in sent
    route = answered.route
    assert route.local_only_dropped == 1
    assert route.redactions == {"aws_access_key": 1, "github_token": 1, "jwt": 1,
                                "openai_key": 1, "private_key": 1, "url_password": 1}
    assert not any(s in repr(route) for s in SEEDED.values())
    fallback.close()


@pytest.fixture
def assistant(settings: Settings, paths: Paths, remote: FaultServer) -> Iterator[Assistant]:
    add_provider(paths, ProviderConfig("faulty", "openai", remote.openai_url, "m",
                                       timeout_s=2.0))
    a = Assistant(settings, paths)
    yield a
    a.close()
    offline.disable()


def test_the_facade_records_the_fallback_and_stores_the_route(
        assistant: Assistant, remote: FaultServer) -> None:
    assistant.settings.override("routing.ttft_timeout_s", 0.05)
    events = list(assistant.ask(LONG_QUESTION, None, AskOptions(max_tokens=16)))
    done = events[-1]
    assert isinstance(done, Finished) and done.provider == "faulty"
    fb = [e for e in events if isinstance(e, Fallback)]
    assert len(fb) == 1 and fb[0].reason == "ttft_timeout" and fb[0].provider == "faulty"
    assert done.answer == "".join(ANSWER) == "".join(
        e.text for e in events[events.index(fb[0]):] if isinstance(e, Delta))
    stored = assistant.store.messages(done.conversation_id)
    assert stored[-1].provider == "faulty" and stored[-1].content == done.answer
    reasons = [a["reason"] for a in stored[-1].route["attempts"]]
    assert reasons == ["ttft_timeout", None]


def test_everything_failing_names_each_attempt_and_leaves_no_empty_conversation(
        assistant: Assistant, remote: FaultServer, tmp_path: Path) -> None:
    remote.queue("500", "500", "500")
    events = list(assistant.ask("Hello?", None, AskOptions(
        model_path=str(tmp_path / "gone.gguf"))))
    err = events[-1]
    assert isinstance(err, Error) and err.reason == "all_failed"
    gone = tmp_path / "gone.gguf"
    assert err.message.startswith(f"No provider could answer: no local model: the model file "
                                  f"{gone} does not exist; faulty: ")
    assert isinstance(events[-2], Route) and len(events[-2].attempts) == 4
    # A first question that got no answer leaves no conversation behind.
    assert err.conversation_id is None and assistant.store.search() == []
    # In a conversation that exists, the failure is kept with its route.
    conv = assistant.store.create("notes")
    remote.queue("500", "500", "500")
    events = list(assistant.ask("Hello?", conv.id, AskOptions(
        model_path=str(tmp_path / "gone.gguf"))))
    assert isinstance(events[-1], Error) and events[-1].conversation_id == conv.id
    stored = assistant.store.messages(conv.id)
    assert stored[0].content == "Hello?" and stored[1].status == "error"
    assert stored[1].route["summary"].startswith("no answer")


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("gone.gguf", None, "no local model: the model file {path} does not exist"),
    ("notes.gguf", b"plain notes, not a model",
     "local model failed to load: notes.gguf is not a GGUF model file (llama.cpp models end "
     "in .gguf)"),
])
def test_a_broken_local_model_is_named_with_its_reason_in_the_fallback_notice(
        assistant: Assistant, remote: FaultServer, tmp_path: Path, name: str,
        content: bytes | None, reason: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    events = list(assistant.ask("Hello?", None, AskOptions(model_path=str(path))))
    done = events[-1]
    assert isinstance(done, Finished) and done.provider == "faulty"
    fallback = next(e for e in events if isinstance(e, Fallback))
    assert fallback.detail == reason.format(path=path)
    route = next(e for e in events if isinstance(e, Route))
    assert route.summary == f"answered by faulty/fault-model — {fallback.detail}"


def test_local_only_sends_nothing_and_never_cuts_the_local_model_off(
        assistant: Assistant, remote: FaultServer) -> None:
    # A deadline far shorter than reading this prompt takes: with nothing
    # allowed to take over, the local model answers however long it needs.
    assistant.settings.override("routing.ttft_timeout_s", 0.05)
    assistant.settings.override("routing.stall_timeout_s", 0.01)
    events = list(assistant.ask(LONG_QUESTION, None, AskOptions(max_tokens=8,
                                                                route="local-only")))
    done = events[-1]
    assert isinstance(done, Finished) and done.provider == "local", events[-1]
    assert not [e for e in events if isinstance(e, Fallback)]
    assert remote.requests == []
    assert not offline.is_enabled()  # held for that question only
    # The prompt was read in steps the window can show ("Reading… N %").
    progress = [e for e in events if isinstance(e, Progress)]
    assert len(progress) >= 3 and progress[0].total == done.usage.prompt_tokens
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert progress[-1].done == progress[-1].total - 1


@pytest.mark.parametrize("how", ["offline", "fallback switched off", "patient"])
def test_no_deadline_when_nothing_can_take_over_or_the_user_waits(
        assistant: Assistant, remote: FaultServer, how: str) -> None:
    assistant.settings.override("routing.ttft_timeout_s", 0.05)
    options = AskOptions(max_tokens=8, offline=how == "offline", patient=how == "patient")
    if how == "fallback switched off":
        assistant.settings.override("routing.remote_fallback", False)
    events = list(assistant.ask(LONG_QUESTION, None, options))
    assert isinstance(events[-1], Finished) and events[-1].provider == "local", events[-1]
    assert remote.requests == []


def test_a_long_prompt_is_not_a_timeout_while_it_is_being_read(
        engine: LocalProvider, remote: FaultServer) -> None:
    fallback = provider_for(remote)
    plan = PromptPlan("", (), LONG_QUESTION)
    # Reading about 3,000 tokens takes far longer than 0.05 s here, but each
    # batch is reported as it is read, so the deadline waits (up to 0.05 s ×
    # 10,001 in all, which is never reached here).
    router = Router(lambda: engine, [fallback],
                    RoutingConfig(ttft_timeout_s=0.05, reading_allowance=10_000))
    items = list(router.run(plan, GenParams(max_tokens=4), CancelToken()))
    answered = items[-1]
    assert isinstance(answered, Answered) and answered.provider == "local", answered.route
    assert remote.requests == []
    assert sum(isinstance(i, PromptProgress) for i in items) >= 3
    # With the allowance used up, the same prompt falls back and says why.
    router = Router(lambda: engine, [fallback],
                    RoutingConfig(ttft_timeout_s=0.05, reading_allowance=1))
    # (Reworded at its start, so little of it is still in the model's cache.)
    answered = list(router.run(PromptPlan("", (), "Once more. " + LONG_QUESTION),
                               GenParams(max_tokens=4), CancelToken()))[-1]
    assert isinstance(answered, Answered) and answered.provider == "faulty"
    detail = answered.route.attempts[0].detail
    assert detail.startswith("local model was still reading a 3,") and "-token prompt after" \
        in detail, detail
    fallback.close()


def test_offline_is_held_while_a_local_only_answer_streams(assistant: Assistant) -> None:
    # The question's own policy: the backstop is on while it streams, but the
    # code consuming the stream keeps its own (network allowed) policy.
    seen = []
    for _ in assistant.ask("Say hi.", None, AskOptions(max_tokens=4, route="local-only")):
        seen.append((offline.backstop_installed(), offline.network_allowed()))
    assert seen and all(installed and allowed for installed, allowed in seen)
    assert not offline.is_enabled() and not offline.backstop_installed()


def test_an_unknown_route_is_one_sentence(assistant: Assistant) -> None:
    err = list(assistant.ask("hi", None, AskOptions(route="nope")))[-1]
    assert isinstance(err, Error)
    assert err.message == ("'nope' is neither a routing policy nor a configured provider; "
                           "use one of: auto, local-only, remote-first, faulty.")
