"""The router against a misbehaving loopback server: each fault gives the
right retry or fallback, with its reason on the route, and no thread left."""

from __future__ import annotations

import threading
import time

import pytest

from app.core.events import Attempt
from app.core.llm.anthropic import AnthropicProvider
from app.core.llm.openai_compat import OpenAICompatProvider
from app.core.llm.pacing import CircuitBreaker
from app.core.llm.provider import CancelToken, Capabilities, TextDelta
from app.core.llm.registry import ProviderConfig
from app.core.llm.router import (
    Answered,
    GenParams,
    Router,
    RoutingConfig,
    RoutingError,
    Switched,
)
from app.core.prompting import PromptPlan
from tests.fault_server import ANSWER, FaultServer

CAPS = Capabilities(max_context=8192, local=False, price_in_per_m=1.0, price_out_per_m=2.0)
PLAN = PromptPlan("Be brief.", (), "Say hello.")
FAST = RoutingConfig(ttft_timeout_s=5.0, stall_timeout_s=0.5, retries=2, backoff_s=0.01,
                     max_backoff_s=0.05)


def openai(name: str, server: FaultServer, timeout_s: float = 1.0) -> OpenAICompatProvider:
    return OpenAICompatProvider(
        ProviderConfig(name, "openai", server.openai_url, f"{name}-model", timeout_s=timeout_s),
        "test-key", CAPS)


def run(router: Router, policy: str = "remote-first", cancel: CancelToken | None = None
        ) -> tuple[list[object], Answered]:
    items = list(router.run(PLAN, GenParams(max_tokens=32), cancel or CancelToken(), policy))
    answered = items[-1]
    assert isinstance(answered, Answered)
    return items, answered


def text_of(items: list[object]) -> str:
    """The answer as the facade builds it: a Switched drops what came before."""
    out: list[str] = []
    for item in items:
        if isinstance(item, Switched):
            out.clear()
        elif isinstance(item, TextDelta):
            out.append(item.text)
    return "".join(out)


def outcomes(answered: Answered) -> list[tuple[str, str, str | None]]:
    return [(a.provider, a.outcome, a.reason) for a in answered.route.attempts]


@pytest.mark.parametrize(
    ("fault", "outcome", "reason"),
    [
        ("hang_headers", "failed", "ttft_timeout"),
        ("keepalive", "failed", "ttft_timeout"),
        ("hang_mid", "abandoned", "stalled"),
        ("malformed", "failed", "bad_response"),
        ("cut_mid", "abandoned", "network_error"),
    ],
)
def test_a_fault_moves_on_to_the_next_provider(
        faulty: FaultServer, good: FaultServer, fault: str, outcome: str, reason: str) -> None:
    faulty.queue(fault)
    a, b = openai("faulty", faulty), openai("good", good)
    router = Router(None, [a, b], FAST)
    items, answered = run(router)
    assert outcomes(answered) == [("faulty", outcome, reason), ("good", "answered", None)]
    assert answered.provider == "good" and text_of(items) == "".join(ANSWER)
    switched = [i for i in items if isinstance(i, Switched)]
    assert len(switched) == 1 and switched[0].provider == "good"
    if outcome == "abandoned":  # the partial text is marked, then replaced
        assert switched[0].abandoned and ANSWER[0].startswith(switched[0].abandoned[:3])
    assert len(faulty.requests) == 1 and len(good.requests) == 1
    assert answered.route.summary.startswith("answered by good/")
    a.close()
    b.close()


def test_429_waits_for_retry_after_then_succeeds(faulty: FaultServer) -> None:
    faulty.retry_after = "0.3"
    faulty.queue("429")
    provider = openai("faulty", faulty)
    items, answered = run(Router(None, [provider], FAST))
    assert outcomes(answered) == [("faulty", "retried", "rate_limited"),
                                  ("faulty", "answered", None)]
    gap = faulty.requests[1]["received_at"] - faulty.requests[0]["received_at"]
    assert gap >= 0.3  # Retry-After was honoured
    assert text_of(items) == "".join(ANSWER)
    provider.close()


def test_500_and_cut_connection_are_retried_then_the_chain_moves_on(
        faulty: FaultServer, good: FaultServer) -> None:
    faulty.queue("500", "cut", "500")
    a, b = openai("faulty", faulty), openai("good", good)
    _, answered = run(Router(None, [a, b], FAST))
    assert outcomes(answered) == [
        ("faulty", "retried", "server_error"), ("faulty", "retried", "network_error"),
        ("faulty", "failed", "server_error"), ("good", "answered", None)]
    assert "after 3 tries" in answered.route.attempts[2].detail
    assert len(faulty.requests) == 3
    a.close()
    b.close()


def test_usage_and_cost_are_recorded(good: FaultServer) -> None:
    provider = openai("good", good)
    _, answered = run(Router(None, [provider], FAST))
    attempt = answered.route.attempts[-1]
    assert (attempt.prompt_tokens, attempt.completion_tokens) == (21, len(ANSWER))
    expected = (21 * 1.0 + len(ANSWER) * 2.0) / 1e6
    assert attempt.cost_usd == pytest.approx(expected)
    assert answered.route.cost_usd == pytest.approx(expected)
    assert good.requests[0]["headers"]["authorization"] == "Bearer test-key"
    assert good.requests[0]["body"]["stream"] is True
    provider.close()


def test_anthropic_format_streams_and_falls_back(faulty: FaultServer, good: FaultServer) -> None:
    faulty.queue("500", "500", "500")
    config = ProviderConfig("claude", "anthropic", faulty.anthropic_url, "fault-claude",
                            timeout_s=1.0)
    claude = AnthropicProvider(config, "ant-key", CAPS)
    ok = AnthropicProvider(ProviderConfig("claude2", "anthropic", good.anthropic_url,
                                          "fault-claude"), "ant-key", CAPS)
    items, answered = run(Router(None, [claude, ok], FAST))
    assert [o for _, o, _ in outcomes(answered)] == ["retried", "retried", "failed", "answered"]
    assert text_of(items) == "".join(ANSWER)
    assert answered.end.prompt_tokens == 17 and answered.end.completion_tokens == len(ANSWER)
    sent = good.requests[0]
    assert sent["path"] == "/v1/messages" and "anthropic-version" in sent["headers"]
    assert sent["headers"]["authorization"] == "Bearer ant-key"  # how this SDK sends keys
    assert sent["body"]["system"] == "Be brief."
    assert [m["role"] for m in sent["body"]["messages"]] == ["user"]
    claude.close()
    ok.close()


def test_circuit_breaker_skips_a_provider_that_keeps_failing(
        faulty: FaultServer, good: FaultServer) -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=2, cooldown_s=30.0, clock=lambda: now[0])
    config = RoutingConfig(retries=0, ttft_timeout_s=5.0)
    a, b = openai("faulty", faulty), openai("good", good)
    router = Router(None, [a, b], config, breaker)
    faulty.queue("500", "500", "500")
    for _ in range(2):
        run(router)
    _, answered = run(router)
    assert outcomes(answered)[0] == ("faulty", "skipped", "circuit_open")
    assert len(faulty.requests) == 2  # the third question never reached it
    now[0] = 31.0  # after the cooldown one request goes through again
    _, answered = run(router)
    assert outcomes(answered)[0] == ("faulty", "failed", "server_error")
    assert len(faulty.requests) == 3
    a.close()
    b.close()


def test_every_provider_failing_is_one_sentence_naming_each(faulty: FaultServer) -> None:
    faulty.queue("500", "500", "500", "malformed")
    a = openai("faulty", faulty)
    b = OpenAICompatProvider(ProviderConfig("again", "openai", faulty.openai_url, "m"),
                             None, CAPS)
    with pytest.raises(RoutingError) as err:
        list(Router(None, [a, b], FAST).run(PLAN, GenParams(), CancelToken(), "remote-first"))
    message = str(err.value)
    assert message.startswith("No provider could answer: ")
    assert "faulty: server error (HTTP 500) after 3 tries" in message
    assert "again: malformed response" in message and "no local model" in message
    assert err.value.reason == "all_failed"
    assert [a.outcome for a in err.value.route.attempts].count("failed") == 3
    a.close()
    b.close()


def test_a_stop_from_the_user_ends_a_hung_request_at_once(faulty: FaultServer) -> None:
    faulty.queue("hang_headers")
    provider = openai("faulty", faulty, timeout_s=30.0)
    provider.client()  # built before the clock starts: the first import of openai is slow
    cancel = CancelToken()
    router = Router(None, [provider], RoutingConfig(ttft_timeout_s=30.0))
    stream = router.run(PLAN, GenParams(), cancel, "faulty")
    started = time.perf_counter()
    threading.Timer(0.3, cancel.cancel).start()
    items = list(stream)
    answered = items[-1]
    assert isinstance(answered, Answered) and answered.end.finish_reason == "cancelled"
    assert time.perf_counter() - started < 5.0  # not the 30 s deadline
    assert isinstance(answered.route.attempts[-1], Attempt)
    assert answered.route.attempts[-1].outcome == "cancelled"
    provider.close()
