"""Remote streams are checked to the end and bounded by Hearth itself: one
that stops without its end marker is cut off, one without text is empty, a
server that ignores max_tokens or never ends is stopped, a stop ends a read
blocked on a silent server at once, and no attempt's thread outlives the call.

Real loopback servers (tests/fault_server.py) and the real openai and
anthropic SDKs throughout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from app.core.llm.anthropic import AnthropicProvider
from app.core.llm.openai_compat import OpenAICompatProvider
from app.core.llm.provider import (
    CancelToken,
    ChatMessage,
    ChatRequest,
    StreamEnd,
    TextDelta,
)
from app.core.llm.registry import ProviderConfig, ProviderConfigError
from app.core.llm.remote import RemoteProviderBase
from app.core.llm.router import Answered, GenParams, Router, RoutingError, Switched
from app.settings import Settings
from tests.fault_server import ANSWER, ENDLESS_PIECES, FaultServer
from tests.integration.test_router_faults import CAPS, FAST, PLAN, outcomes, text_of

# What "early_end" sends before it closes: the first two pieces.
EARLY = "".join(ANSWER[:2])


def make(kind: str, name: str, server: FaultServer, timeout_s: float = 1.0,
         max_answer_s: float | None = None) -> RemoteProviderBase:
    if kind == "anthropic":
        return AnthropicProvider(
            ProviderConfig(name, "anthropic", server.anthropic_url, "fault-claude",
                           timeout_s=timeout_s, max_answer_s=max_answer_s), "ant-key", CAPS)
    return OpenAICompatProvider(
        ProviderConfig(name, "openai", server.openai_url, f"{name}-model",
                       timeout_s=timeout_s, max_answer_s=max_answer_s), "test-key", CAPS)


def attempt_threads() -> list[str]:
    return [t.name for t in threading.enumerate()
            if t.name.startswith("hearth-attempt-") and t.is_alive()]


def ask(providers: list[RemoteProviderBase], max_tokens: int = 32,
        cancel: CancelToken | None = None) -> list[object]:
    """Router.run to its end (one provider: that one alone, with no fallback);
    no attempt thread may be left the moment it returns."""
    policy = providers[0].name if len(providers) == 1 else "remote-first"
    assert attempt_threads() == []
    try:
        return list(Router(None, providers, FAST).run(
            PLAN, GenParams(max_tokens=max_tokens), cancel or CancelToken(), policy))
    finally:
        assert attempt_threads() == []


def answered_of(items: list[object]) -> Answered:
    assert isinstance(items[-1], Answered)
    return items[-1]


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        pause.wait(0.01)


def close_all(*providers: RemoteProviderBase) -> None:
    for provider in providers:
        provider.close()


# -- a stream that ends too soon ---------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_an_answer_cut_off_without_its_end_marker_falls_back(
        faulty: FaultServer, good: FaultServer, kind: str) -> None:
    faulty.queue("early_end")
    a, b = make(kind, "faulty", faulty), make(kind, "good", good)
    items = ask([a, b])
    answered = answered_of(items)
    assert outcomes(answered) == [("faulty", "abandoned", "cut_off"), ("good", "answered", None)]
    assert answered.route.attempts[0].detail == (
        "faulty: answer cut off (stream ended without its end marker)")
    switched = [i for i in items if isinstance(i, Switched)]
    assert len(switched) == 1 and switched[0].abandoned == EARLY
    assert answered.provider == "good" and text_of(items) == "".join(ANSWER)
    assert len(faulty.requests) == 1  # text had come: never retried
    close_all(a, b)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_cut_off_answer_with_no_fallback_says_so_and_keeps_its_text(
        faulty: FaultServer, kind: str) -> None:
    faulty.queue("early_end")
    provider = make(kind, "faulty", faulty)
    with pytest.raises(RoutingError) as err:
        ask([provider])
    assert str(err.value) == "faulty ended its answer early, without its end marker."
    assert err.value.reason == "cut_off"
    assert err.value.partial == EARLY
    assert [a.outcome for a in err.value.route.attempts] == ["abandoned"]
    provider.close()


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("fault", ["only_done", "blank"])
def test_an_empty_answer_falls_back(
        faulty: FaultServer, good: FaultServer, kind: str, fault: str) -> None:
    faulty.queue(fault)
    a, b = make(kind, "faulty", faulty), make(kind, "good", good)
    items = ask([a, b])
    answered = answered_of(items)
    first = answered.route.attempts[0]
    assert (first.provider, first.reason, first.detail) == (
        "faulty", "empty_answer", "faulty: empty answer")
    assert answered.provider == "good" and text_of(items) == "".join(ANSWER)
    close_all(a, b)


def test_an_empty_answer_with_no_fallback_fails_in_one_sentence(faulty: FaultServer) -> None:
    faulty.queue("only_done")
    provider = make("openai", "faulty", faulty)
    with pytest.raises(RoutingError) as err:
        ask([provider])
    assert str(err.value) == "faulty sent an empty answer."
    assert err.value.reason == "empty_answer" and err.value.partial == ""
    assert len(faulty.requests) == 1  # not retried: the same question gets the same nothing
    provider.close()


def test_a_whole_answer_still_ends_normally(good: FaultServer) -> None:
    provider = make("openai", "good", good)
    answered = answered_of(ask([provider]))
    assert answered.end.finish_reason == "stop" and answered.end.notes == ()
    assert answered.end.completion_tokens == len(ANSWER)
    provider.close()


# -- bounds Hearth keeps itself ----------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_server_that_ignores_max_tokens_is_stopped_at_the_limit(
        faulty: FaultServer, kind: str) -> None:
    faulty.queue("endless")
    provider = make(kind, "faulty", faulty)
    provider.client()  # the SDK's first import is not the server's time
    started = time.monotonic()
    items = ask([provider], max_tokens=16)
    took = time.monotonic() - started
    answered = answered_of(items)
    words = text_of(items).split()
    assert len(words) == 16 and words[0] == "word0"
    assert answered.provider == "faulty" and answered.end.finish_reason == "length"
    assert answered.end.completion_tokens == 16
    assert ("faulty ignored the token limit; Hearth stopped reading at 16 tokens"
            in answered.notes)
    # The server would have gone on for ENDLESS_PIECES * 10 ms (200 s).
    assert took < 20
    wait_for(lambda: faulty.endless_sent and len(faulty.requests) == 1)
    assert faulty.endless_sent[0] < ENDLESS_PIECES
    provider.close()


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_an_answer_over_its_time_falls_back_or_fails_keeping_its_text(
        faulty: FaultServer, good: FaultServer, kind: str) -> None:
    faulty.queue("endless", "endless")
    slow = make(kind, "faulty", faulty, max_answer_s=0.5)
    backup = make(kind, "good", good)
    items = ask([slow, backup], max_tokens=100_000)
    answered = answered_of(items)
    assert outcomes(answered) == [("faulty", "abandoned", "too_slow"),
                                  ("good", "answered", None)]
    assert answered.route.attempts[0].detail == "faulty: answer took longer than 0.5 s"
    assert text_of(items) == "".join(ANSWER)

    with pytest.raises(RoutingError) as err:
        ask([slow], max_tokens=100_000)
    assert err.value.reason == "too_slow"
    assert str(err.value) == ("faulty was still answering after 0.5 s, so Hearth stopped "
                              "reading (routing.max_answer_s sets this limit).")
    assert err.value.partial.split()[0] == "word0"
    close_all(slow, backup)


def test_the_answer_time_comes_from_the_setting(faulty: FaultServer,
                                                settings: Settings) -> None:
    settings.set("routing.max_answer_s", 0.4)
    faulty.queue("endless")
    provider = make("openai", "faulty", faulty)  # no limit of its own
    assert provider.max_answer_s() == 0.4
    with pytest.raises(RoutingError) as err:
        ask([provider], max_tokens=100_000)
    assert err.value.reason == "too_slow" and "after 0.4 s" in str(err.value)
    provider.close()


def test_the_answer_time_of_a_provider_is_checked() -> None:
    config = ProviderConfig("x", "openai", "https://x/v1", "m", max_answer_s=0.0)
    with pytest.raises(ProviderConfigError, match="max_answer_s"):
        config.validate()
    assert ProviderConfig("x", "openai", "https://x/v1", "m").validate().max_answer_s is None


# -- a stop ends a blocked read at once --------------------------------------------


def consume(provider: RemoteProviderBase, cancel: CancelToken
            ) -> tuple[threading.Thread, list[Any], list[float]]:
    """Read `provider.stream` on a thread of its own, as the router does."""
    items: list[Any] = []
    ended: list[float] = []
    request = ChatRequest((ChatMessage("user", "Say hello."),), max_tokens=100_000)

    def run() -> None:
        try:
            items.extend(provider.stream(request, cancel))
        except BaseException as exc:
            items.append(exc)
        ended.append(time.monotonic())

    thread = threading.Thread(target=run, name="test-consumer")
    thread.start()
    return thread, items, ended


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("fault", ["hang_headers", "keepalive", "hang_mid"])
def test_a_stop_ends_a_blocked_read_within_a_second(
        faulty: FaultServer, kind: str, fault: str) -> None:
    """With a 30 s timeout the SDK's own read would wait 32 s."""
    faulty.queue(fault)
    provider = make(kind, "faulty", faulty, timeout_s=30.0)
    provider.client()
    cancel = CancelToken()
    thread, items, ended = consume(provider, cancel)
    wait_for(lambda: faulty.requests)
    if fault == "hang_mid":
        wait_for(lambda: any(isinstance(i, TextDelta) for i in items))
    stopped = time.monotonic()
    cancel.cancel()
    thread.join(5)
    assert not thread.is_alive()
    assert ended[0] - stopped < 1.0
    assert isinstance(items[-1], StreamEnd) and items[-1].finish_reason == "cancelled"
    provider.close()


# -- no attempt thread outlives the call, whatever the fault -----------------------

MODES = [
    # (kind, faults queued on the faulty server, how the call ends: None, with a
    # fallback to the good server; "alone", without one; "time", over its
    # max_answer_s; "stop", the user's Stop; "close", the caller walks away)
    ("openai", ("hang_headers",), None),
    ("openai", ("keepalive",), None),
    ("openai", ("hang_mid",), None),
    ("openai", ("malformed",), None),
    ("openai", ("cut_mid",), None),
    ("openai", ("cut", "500", "500"), None),
    ("openai", ("429",), None),
    ("openai", ("500", "500", "500"), None),
    ("openai", ("early_end",), None),
    ("openai", ("only_done",), None),
    ("openai", ("blank",), None),
    ("openai", ("endless",), None),
    ("openai", ("endless",), "time"),
    ("openai", ("hang_headers",), "stop"),
    ("openai", ("endless",), "close"),
    ("openai", ("hang_headers",), "alone"),
    ("openai", ("keepalive",), "alone"),
    ("openai", ("hang_mid",), "alone"),
    ("openai", ("early_end",), "alone"),
    ("anthropic", ("hang_headers",), None),
    ("anthropic", ("hang_mid",), None),
    ("anthropic", ("500", "500", "500"), None),
    ("anthropic", ("early_end",), None),
    ("anthropic", ("only_done",), None),
    ("anthropic", ("endless",), None),
    ("anthropic", ("endless",), "stop"),
    ("anthropic", ("hang_mid",), "alone"),
]


@pytest.mark.parametrize(("kind", "faults", "how"), MODES,
                         ids=["-".join((k, *f, h or "")).strip("-") for k, f, h in MODES])
def test_no_attempt_thread_outlives_the_call(
        faulty: FaultServer, good: FaultServer, kind: str, faults: tuple[str, ...],
        how: str | None) -> None:
    faulty.queue(*faults)
    a = make(kind, "faulty", faulty, max_answer_s=0.5 if how == "time" else None)
    b = make(kind, "good", good)
    cancel = CancelToken()
    before = attempt_threads()
    assert before == []
    if how == "close":  # the caller walks away mid-answer (a closed window, Ctrl+C)
        stream = Router(None, [a, b], FAST).run(PLAN, GenParams(max_tokens=100_000), cancel,
                                                "remote-first")
        assert any(isinstance(item, TextDelta) for item in stream)
        stream.close()
        assert attempt_threads() == []
    elif how == "stop":  # the user's Stop while the server is silent or dripping
        stopper = threading.Thread(
            target=lambda: (wait_for(lambda: faulty.requests), cancel.cancel()),
            name="test-stopper")
        stopper.start()
        items = ask([a, b], max_tokens=100_000, cancel=cancel)
        stopper.join(5)
        assert answered_of(items).end.finish_reason == "cancelled"
    elif how == "alone":  # no fallback: the call ends right after the fault
        with pytest.raises(RoutingError):
            ask([a], max_tokens=16)
    else:
        items = ask([a, b], max_tokens=16)
        assert answered_of(items).provider in ("faulty", "good")
    assert attempt_threads() == []
    close_all(a, b)
