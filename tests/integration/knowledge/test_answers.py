"""The facade answers from the indexed folders: a `sources` event before the
first delta, numbered passages in the prompt, fitted to the context window."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.assistant import AskOptions, Assistant
from app.core.events import Delta, Finished, Route, Sources, Started
from app.core.knowledge.base import KnowledgeBase
from app.paths import Paths
from app.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture
def indexed(paths: Paths, settings: Settings, tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "recipes.md").write_text(
        "# Pancakes\n\nMix 200 g flour, 2 eggs and 300 ml milk. Rest the batter for 30 "
        "minutes.\n\n# Omelette\n\nBeat three eggs with salt; cook in butter.\n")
    for i in range(8):
        (docs / f"notes-{i}.txt").write_text(" ".join(
            f"Pancake note {i}.{j}: batter, flour, eggs and milk are whisked until smooth."
            for j in range(12)))
    with KnowledgeBase(paths, settings, writer=True) as kb:
        kb.add_folder(docs, local_only=True)
        kb.reconcile()
    return docs


@pytest.fixture
def assistant(settings: Settings, paths: Paths) -> Iterator[Assistant]:
    a = Assistant(settings, paths)
    yield a
    a.close()


def test_sources_come_before_the_first_delta(assistant: Assistant, indexed: Path) -> None:
    events = list(assistant.ask("How much flour goes into pancake batter?", None,
                                AskOptions(max_tokens=16, temperature=0.0)))
    assert isinstance(events[0], Started) and isinstance(events[1], Sources)
    first_delta = next(i for i, e in enumerate(events) if isinstance(e, Delta))
    assert first_delta > 1
    sources = events[1].sources
    assert [s.number for s in sources] == list(range(1, len(sources) + 1))
    assert any(s.path == str(indexed / "recipes.md") and s.start_line == 1 for s in sources)
    assert all(s.path.startswith(str(indexed)) and s.snippet for s in sources)
    with_files = events[-1]
    assert isinstance(with_files, Finished)
    stored = assistant.store.messages(with_files.conversation_id)[-1]
    assert [src["path"] for src in stored.sources] == [s.path for s in sources]

    plain = list(assistant.ask("How much flour goes into pancake batter?", None,
                               AskOptions(max_tokens=16, temperature=0.0, use_files=False)))
    assert not any(isinstance(e, Sources) for e in plain)
    assert isinstance(plain[-1], Finished)
    assert with_files.usage.prompt_tokens > plain[-1].usage.prompt_tokens + 100


def test_retrieved_text_is_delimited_and_local_only_is_carried(assistant: Assistant,
                                                               indexed: Path) -> None:
    context, note = assistant._retrieve("pancake batter", AskOptions())
    assert note is None and context
    assert all(c.local_only for c in context)
    provider = assistant.local_provider()
    from app.core.prompting import PromptPlan

    prompt = provider.format_prompt(PromptPlan("sys", (), "q?", context).render())
    assert "Excerpt [1] from " in prompt and "never instructions" in prompt


def test_lowest_ranked_passages_are_dropped_to_fit(settings: Settings, paths: Paths,
                                                   indexed: Path) -> None:
    settings.override("model.context_size", 640)
    settings.override("knowledge.top_k", 8)
    a = Assistant(settings, paths)
    try:
        events = list(a.ask("pancake batter flour eggs milk", None,
                            AskOptions(max_tokens=8, temperature=0.0)))
        done = events[-1]
        assert isinstance(done, Finished), events[-1]
        stored = a.store.messages(done.conversation_id)[-1]
    finally:
        a.close()
    shown = [e.sources for e in events if isinstance(e, Sources)]
    # First everything retrieved, then the corrected list of what the model got.
    assert len(shown[0]) == 8
    sources = shown[-1]
    assert 1 <= len(sources) < 8
    assert [s.number for s in sources] == list(range(1, len(sources) + 1))
    assert any("passages from your files left out" in n for n in done.notes)
    assert len(stored.sources or []) == len(sources)
    assert done.usage.prompt_tokens + 16 <= 640


def test_local_only_folders_never_reach_a_remote_model(
        settings: Settings, paths: Paths, indexed: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two folders match the question: the local-only one (`indexed`) and a
    shared one. Answered by a remote server on loopback, the request carries
    the shared passages only; the sources and the stored message say the same."""
    from app.core.llm.registry import ProviderConfig, add_provider
    from app.core.secrets import env_var
    from tests.fault_server import FaultServer

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "crepes.md").write_text(
        "# Crepes\n\nCrepe batter: flour, eggs and milk, thinner than pancake batter.\n")
    with KnowledgeBase(paths, settings, writer=True) as kb:
        kb.add_folder(shared)
        kb.reconcile()
    server = FaultServer()
    try:
        add_provider(paths, ProviderConfig("loop", "openai", server.openai_url, "loop-model"))
        monkeypatch.setenv(env_var("loop"), "test-key")
        settings.override("knowledge.top_k", 8)
        a = Assistant(settings, paths)
        try:
            events = list(a.ask("crepe and pancake batter: flour, eggs, milk", None,
                                AskOptions(max_tokens=16, route="remote-first")))
            done = events[-1]
            assert isinstance(done, Finished), events[-1]
            stored = a.store.messages(done.conversation_id)[-1]
        finally:
            a.close()
    finally:
        server.close()
    assert done.provider == "loop"
    shown = [e.sources for e in events if isinstance(e, Sources)]
    retrieved = shown[0]
    assert any(s.path.startswith(str(indexed)) for s in retrieved)
    assert any(s.path.startswith(str(shared)) for s in retrieved)
    sent = server.requests[-1]["raw"]
    assert "Crepe batter" in sent
    assert "Pancake note" not in sent and "Rest the batter" not in sent
    final = shown[-1]
    assert final and all(s.path.startswith(str(shared)) for s in final)
    assert [src["path"] for src in stored.sources] == [s.path for s in final]
    route = next(e for e in events if isinstance(e, Route))
    assert route.local_only_dropped == len(retrieved) - len(final)
