"""Every answer is stored with a complete trace: a local answer from the
user's files, one the local model could not start in time (the remote
provider answered), and a remote answer cut off with nothing to fall back
to. The real bundled model, real Chroma, a real loopback server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import cli
from app.core import offline, trace
from app.core.assistant import AskOptions, Assistant
from app.core.events import Error, Finished
from app.core.knowledge.base import KnowledgeBase
from app.core.llm.registry import ProviderConfig, add_provider
from app.paths import Paths
from app.settings import Settings
from tests.fault_server import ANSWER, FaultServer
from tests.helpers import LONG_QUESTION

pytestmark = pytest.mark.slow


@pytest.fixture
def assistant(settings: Settings, paths: Paths) -> Iterator[Assistant]:
    a = Assistant(settings, paths)
    yield a
    a.close()
    offline.disable()


def test_a_local_answer_from_files_has_a_complete_trace(
        assistant: Assistant, paths: Paths, settings: Settings, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "recipes.md").write_text("# Pancakes\n\nMix 200 g flour, 2 eggs and 300 ml milk. "
                                     "Rest the batter for 30 minutes.\n")
    (docs / "garden.md").write_text("# Tomatoes\n\nWater tomatoes every morning in summer.\n")
    with KnowledgeBase(paths, settings, writer=True) as kb:
        kb.add_folder(docs)
        kb.reconcile()
    settings.override("knowledge.min_relevance", 0.0)  # both files reach the prompt
    events = list(assistant.ask("How much flour goes into pancake batter?", None,
                                AskOptions(max_tokens=24, temperature=0.0)))
    done = events[-1]
    assert isinstance(done, Finished) and done.trace is not None
    t = done.trace
    assert (t.prompt_id, f"{t.prompt_id}@{t.prompt_version}") == ("hearth-answer", done.prompt)
    assert (t.provider, t.status, t.policy, t.cache) == ("local", "answered", "auto", "miss")
    (attempt,) = t.attempts
    assert attempt.outcome == "answered" and attempt.first_token_s is not None
    assert attempt.total_s == pytest.approx(attempt.first_token_s + attempt.generation_s,
                                            abs=2e-4)
    assert (t.prompt_tokens, t.completion_tokens) == (done.usage.prompt_tokens,
                                                      done.usage.completion_tokens)
    assert t.tokens_per_s == round(done.timings.tokens_per_s, 4) and t.cost_usd is None
    assert t.query == "How much flour goes into pancake batter?"
    by_file = {Path(p.path).name: p for p in t.passages}
    assert set(by_file) == {"recipes.md", "garden.md"}
    recipes = by_file["recipes.md"]
    assert recipes.fused_rank == 1 and recipes.sent and recipes.start_line == 1
    assert recipes.vector_score is not None and recipes.keyword_score is not None
    assert by_file["garden.md"].fused_rank == 2
    cited = trace.cited_numbers(done.answer)
    assert {p.number for p in t.passages if p.cited} == cited & {p.number for p in t.passages}
    stored = assistant.store.messages(done.conversation_id)[-1]
    assert trace.from_message(stored) == t

    assert cli.main(["trace", stored.id[:12], "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["message_id"] == stored.id and len(data["passages"]) == 2
    assert cli.main(["trace"]) == 0
    text = capsys.readouterr().out
    assert f"Answer {stored.id}" in text and "recipes.md" in text and "Route attempts" in text


def test_a_fallback_answer_traces_both_attempts_with_cost(
        assistant: Assistant, paths: Paths, remote: FaultServer) -> None:
    paths.ensure(paths.config_dir)
    (paths.config_dir / "prices.toml").write_text(
        '[models."m"]\ninput = 1.0\noutput = 2.0\n')
    add_provider(paths, ProviderConfig("faulty", "openai", remote.openai_url, "m",
                                       timeout_s=5.0))
    assistant.settings.override("routing.ttft_timeout_s", 0.05)
    assistant.settings.override("routing.reading_allowance", 0.0)
    events = list(assistant.ask(LONG_QUESTION, None, AskOptions(max_tokens=16)))
    done = events[-1]
    assert isinstance(done, Finished) and done.provider == "faulty", done
    t = done.trace
    assert t is not None and t.fell_back
    local, answered = t.attempts
    assert (local.provider, local.outcome, local.reason) == ("local", "failed", "ttft_timeout")
    assert local.first_token_s is None and local.total_s > 0
    assert (answered.provider, answered.outcome) == ("faulty", "answered")
    assert answered.queue_s >= local.queue_s + local.total_s - 1e-3
    assert answered.first_token_s is not None and answered.generation_s is not None
    assert answered.cost_usd == pytest.approx(
        (answered.prompt_tokens * 1.0 + answered.completion_tokens * 2.0) / 1e6)
    assert t.cost_usd == pytest.approx(answered.cost_usd)
    assert trace.fallback_reason(t.attempts) == "ttft_timeout"
    stored = assistant.store.messages(done.conversation_id)[-1]
    assert trace.from_message(stored) == t and stored.content == "".join(ANSWER)


def test_a_cut_off_remote_answer_is_stored_with_its_trace(
        assistant: Assistant, paths: Paths, remote: FaultServer) -> None:
    add_provider(paths, ProviderConfig("faulty", "openai", remote.openai_url, "m",
                                       timeout_s=5.0))
    conv = assistant.store.create("kept")
    remote.queue("early_end")
    events = list(assistant.ask("Hello?", conv.id, AskOptions(route="faulty",
                                                               use_files=False)))
    err = events[-1]
    assert isinstance(err, Error) and err.reason == "cut_off" and err.trace is not None
    t = err.trace
    assert (t.status, t.error_reason, t.provider, t.policy) == (
        "failed", "cut_off", "faulty", "faulty")
    assert t.prompt_id == "hearth-answer" and t.prompt_version is not None
    (attempt,) = t.attempts
    assert (attempt.outcome, attempt.reason) == ("abandoned", "cut_off")
    assert attempt.first_token_s is not None
    stored = assistant.store.messages(conv.id)[-1]
    assert stored.status == "error" and stored.content == "".join(ANSWER[:2])
    assert trace.from_message(stored) == t and not t.legacy
