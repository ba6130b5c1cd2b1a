"""Privacy benchmarks (run with `pytest tests/bench/test_privacy_bench.py -s`):

- redaction recall on the seeded secrets and false-positive rate on ordinary
  prose and code (tests/secret_corpus.py);
- the cost per request of redaction plus control-token escaping for a
  4,000-token prompt, cold (nothing cached), against the cost of tokenising
  the same prompt measured in the same run. Target: under 5 ms.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core import privacy
from app.core.llm.local import LocalModelConfig, LocalProvider
from app.core.llm.provider import ChatMessage
from app.core.privacy import find_secrets, prepare_outbound, redact
from app.core.prompting import ContextChunk, PromptPlan
from tests.bench.figures import Record
from tests.secret_corpus import ordinary_passages, secrets

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
def engine(model_path: Path) -> Iterator[LocalProvider]:
    provider = LocalProvider(LocalModelConfig(path=model_path, context_size=8192, threads=1))
    provider.load()
    yield provider
    provider.close()


def test_recall_and_false_positive_rate(record: Record) -> None:
    seeded = secrets()
    caught = [s for s in seeded if s.secret not in redact(s.text)]
    kinds = len({s.kind for s in seeded})
    passages = ordinary_passages()
    flagged = [p for p in passages if find_secrets(p)]
    lines = sum(p.count("\n") + 1 for p in passages)
    spans = sum(len(find_secrets(p)) for p in passages)
    print(f"\nRedaction recall: {len(caught)} of {len(seeded)} seeded secrets "
          f"({kinds} kinds) caught = {len(caught) / len(seeded):.1%}")
    print(f"False positives: {len(flagged)} of {len(passages)} ordinary passages "
          f"({len(flagged) / len(passages):.2%}); {spans} spans in {lines:,} lines "
          f"({spans / lines * 1000:.2f} per 1,000 lines)")
    record("redaction recall on the seeded secrets", len(caught) / len(seeded) * 100, "%",
           at_least=100, note=f"{len(seeded)} secrets, {kinds} kinds")
    record("redaction false positives on ordinary passages", len(flagged) / len(passages) * 100,
           "%", at_most=0.5, note=f"{len(passages)} passages")
    assert len(caught) == len(seeded)
    assert len(flagged) / len(passages) <= 0.005


def _prompt(engine: LocalProvider, tokens: int = 4000) -> PromptPlan:
    passages = ordinary_passages()
    seeded = secrets()
    context: list[ContextChunk] = []
    history = (ChatMessage("user", "How do I configure the database?"),
               ChatMessage("assistant", "Set DATABASE_URL in the .env file, then restart."))
    i = 0
    while True:
        text = passages[(i * 7) % len(passages)]
        if i % 3 == 0:
            text += "\n" + seeded[i % len(seeded)].text
        context.append(ContextChunk(i + 1, f"docs/file{i}.md", text, 1, 30))
        plan = PromptPlan("Be brief.", history, "What do these files say?", tuple(context))
        if engine.count_tokens(plan.render()) >= tokens:
            return plan
        i += 1


def test_redaction_and_escaping_overhead_per_request(engine: LocalProvider,
                                                     record: Record) -> None:
    plan = _prompt(engine)
    n_tokens = engine.count_tokens(plan.render())
    controls = engine.control_tokens()
    overhead, tokenise = [], []
    for _ in range(30):
        privacy._find_cached.cache_clear()
        started = time.perf_counter()
        outbound = prepare_outbound(plan)
        for m in plan.render():
            controls.escape(m.content)
        overhead.append(time.perf_counter() - started)
        started = time.perf_counter()
        engine.prompt_tokens(plan.render())
        tokenise.append(time.perf_counter() - started)
    cost = statistics.median(overhead) * 1000
    base = statistics.median(tokenise) * 1000
    print(f"\nRedaction + escaping for a {n_tokens:,}-token prompt: median {cost:.2f} ms "
          f"(cold cache); tokenising it: {base:.2f} ms; ratio {cost / base:.2f}; "
          f"{sum(outbound.redactions.values())} secrets redacted")
    record(f"redaction + escaping for a {n_tokens:,}-token prompt", cost, "ms", at_most=5.0,
           threads=1, note=f"tokenising it: {base:.2f} ms")
    assert outbound.redactions
    assert cost < 5.0
