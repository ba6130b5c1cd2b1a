"""Router benchmarks (run with `pytest tests/bench -s`):

- fallback latency: from the local first-token deadline firing to the remote
  server receiving the request, over 25 runs against the loopback server;
- router overhead: local tokens/s through the router over the bare provider,
  interleaved runs on the same prompt, seed and model.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import pytest

from app.core.llm.local import LocalProvider
from app.core.llm.openai_compat import OpenAICompatProvider
from app.core.llm.provider import CancelToken, Capabilities, ChatMessage, StreamEnd, TextDelta
from app.core.llm.registry import ProviderConfig
from app.core.llm.router import Answered, GenParams, Router, RoutingConfig
from app.core.prompting import PromptPlan
from tests.bench.figures import Record
from tests.fault_server import FaultServer

pytestmark = pytest.mark.bench


@pytest.fixture
def remote() -> Iterator[FaultServer]:
    server = FaultServer()
    yield server
    server.close()


def test_fallback_latency(engine: LocalProvider, remote: FaultServer, record: Record) -> None:
    provider = OpenAICompatProvider(ProviderConfig("loop", "openai", remote.openai_url, "m"),
                                    None, Capabilities(max_context=32768, local=False))
    router = Router(lambda: engine, [provider], RoutingConfig(ttft_timeout_s=0.05))
    plan = PromptPlan("", (), "Summarise: " + "lorem ipsum dolor sit amet " * 300)
    latencies = []
    for _ in range(25):
        answered = list(router.run(plan, GenParams(max_tokens=8), CancelToken()))[-1]
        assert isinstance(answered, Answered) and answered.provider == "loop"
        assert answered.trigger_at is not None
        latencies.append(remote.requests[-1]["received_at"] - answered.trigger_at)
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(f"\nfallback latency over {len(latencies)} runs: p50 {p50 * 1000:.1f} ms, "
          f"p95 {p95 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    record("fallback latency p95 (deadline to the remote request)", p95 * 1000, "ms",
           at_most=100)
    assert p95 <= 0.100
    provider.close()


def _bare(engine: LocalProvider, plan: PromptPlan, params: GenParams) -> float:
    first = last = None
    tokens = 0
    for item in engine.stream(params.request(plan), CancelToken()):
        if isinstance(item, TextDelta):
            last = time.perf_counter()
            first = first or last
        elif isinstance(item, StreamEnd):
            tokens = item.completion_tokens
    assert first is not None and last is not None and tokens > 10
    return (tokens - 1) / (last - first)


def test_router_overhead_on_a_local_answer(engine: LocalProvider, record: Record) -> None:
    plan = PromptPlan("", (ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello!")),
                      "Write a long story about a lighthouse keeper.")
    params = GenParams(max_tokens=160, temperature=0.8, seed=7)
    router = Router(lambda: engine, [], RoutingConfig())
    bare, routed = [], []
    for _ in range(6):
        bare.append(_bare(engine, plan, params))
        answered = list(router.run(plan, params, CancelToken()))[-1]
        assert isinstance(answered, Answered) and answered.tokens_per_s is not None
        routed.append(answered.tokens_per_s)
    ratio = statistics.median(routed) / statistics.median(bare)
    print(f"\nlocal tokens/s: bare {statistics.median(bare):.1f}, through the router "
          f"{statistics.median(routed):.1f}, ratio {ratio:.3f}")
    record("local tokens/s through the router ÷ bare provider", ratio, "×", at_least=0.98,
           baseline="the bare local provider, same prompt and seed")
    assert ratio >= 0.98
