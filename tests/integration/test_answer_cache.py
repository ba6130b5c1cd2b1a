"""The semantic answer cache end to end: the real bundled model, the real
embedder, real Chroma and SQLite, a real loopback server for the remote
provider. A paraphrase gets the earlier answer with no model run; a
different question, a changed or deleted file, a stopped answer and a
local-only question do not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import cli
from app.core import offline, stats
from app.core.answer_cache import EMPTY_CLEAR
from app.core.assistant import AskOptions, Assistant
from app.core.events import Delta, Error, Event, Finished
from app.core.knowledge.base import KnowledgeBase
from app.core.llm.provider import CancelToken
from app.core.llm.registry import ProviderConfig, add_provider
from app.paths import Paths
from app.settings import Settings
from tests.fault_server import ANSWER, FaultServer

pytestmark = pytest.mark.slow

FLOUR = "How much flour goes into the pancake batter?"
FLOUR_AGAIN = "How much flour is in the pancake batter?"  # cosine 0.97 with FLOUR
SUGAR = "How much sugar goes into the pancake batter?"  # cosine 0.83 with FLOUR
# A short, closed question the bundled model ends by itself (finish "stop"):
# only whole answers are kept.
OPTS = AskOptions(max_tokens=256, temperature=0.0, seed=1,
                  system_prompt="Answer in one short sentence.")


@pytest.fixture
def assistant(settings: Settings, paths: Paths) -> Iterator[Assistant]:
    a = Assistant(settings, paths)
    yield a
    a.close()
    offline.disable()


@pytest.fixture
def docs(tmp_path: Path, paths: Paths, settings: Settings) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "recipes.md").write_text("# Pancakes\n\nMix 200 g flour, 2 eggs and 300 ml "
                                       "milk. Rest the batter for 30 minutes.\n")
    (folder / "garden.md").write_text("# Tomatoes\n\nWater tomatoes every morning in "
                                      "summer.\n")
    reindex(paths, settings, folder)
    return folder


def reindex(paths: Paths, settings: Settings, folder: Path) -> None:
    with KnowledgeBase(paths, settings, writer=True) as kb:
        kb.add_folder(folder)
        kb.reconcile()


def ask(assistant: Assistant, question: str, opts: AskOptions = OPTS,
        conversation: str | None = None) -> Finished:
    events = list(assistant.ask(question, conversation, opts))
    done = events[-1]
    assert isinstance(done, Finished), done
    assert done.trace is not None
    return done


def first_answer(assistant: Assistant, question: str = FLOUR) -> Finished:
    done = ask(assistant, question)
    assert done.trace is not None and done.trace.cache == "miss"
    assert done.finish_reason == "stop", "the bundled model did not end its answer by itself"
    assert assistant.cache.status().entries == 1
    return done


def test_a_paraphrase_gets_the_earlier_answer_and_another_question_does_not(
        assistant: Assistant, docs: Path, paths: Paths,
        capsys: pytest.CaptureFixture[str]) -> None:
    first = first_answer(assistant)
    assert [Path(s.path).name for s in first.trace.passages if s.sent] == ["recipes.md"]
    earlier = assistant.store.messages(first.conversation_id)[-1]

    hit = ask(assistant, FLOUR_AGAIN)
    t = hit.trace
    assert t is not None and t.cache == "hit" and t.cache_source == earlier.id
    assert t.cache_similarity is not None and t.cache_similarity >= 0.93
    assert hit.answer == first.answer and hit.provider == "local"
    # No model ran: no attempt, no tokens, and it took a fraction of the first.
    assert t.attempts == () and (t.prompt_tokens, t.completion_tokens) == (0, 0)
    assert hit.timings.total_s < first.timings.total_s / 10
    assert [p.path for p in t.passages] == [p.path for p in first.trace.passages]
    # Stored in its own conversation, after its question: history stays whole.
    stored = assistant.store.messages(hit.conversation_id)
    assert [(m.role, m.content) for m in stored] == [("user", FLOUR_AGAIN),
                                                     ("assistant", first.answer)]
    assert stored[1].sources == earlier.sources and stored[1].trace["cache"] == "hit"

    other = ask(assistant, SUGAR)
    assert other.trace is not None and other.trace.cache == "miss"
    assert other.trace.attempts[0].outcome == "answered"

    figures = stats.collect(paths)["cache"]
    assert (figures["hits"], figures["lookups"]) == (1, 3)

    assert cli.main(["trace", stored[1].id]) == 0
    out = capsys.readouterr().out
    assert f"hit (from the earlier answer {earlier.id[:8]}, similarity" in out


def test_a_new_question_in_a_conversation_is_not_given_an_answer_made_for_another(
        assistant: Assistant, docs: Path) -> None:
    first_answer(assistant)
    conv = assistant.store.create("another conversation")
    assistant.store.add_message(conv.id, "user", "Tell me about tomatoes.")
    assistant.store.add_message(conv.id, "assistant", "Water them every morning.")
    later = ask(assistant, FLOUR_AGAIN, conversation=conv.id)
    assert later.trace is not None and later.trace.cache == "miss"


def test_editing_the_file_it_was_built_from_makes_a_miss_editing_another_does_not(
        assistant: Assistant, docs: Path, paths: Paths, settings: Settings) -> None:
    first_answer(assistant)
    garden = docs / "garden.md"
    garden.write_text(garden.read_text() + "\nTomatoes like sun.\n")
    reindex(paths, settings, docs)
    assert ask(assistant, FLOUR_AGAIN).trace.cache == "hit"  # type: ignore[union-attr]

    recipes = docs / "recipes.md"
    recipes.write_text(recipes.read_text().replace("200 g", "250 g"))
    reindex(paths, settings, docs)
    assert ask(assistant, FLOUR_AGAIN).trace.cache == "miss"  # type: ignore[union-attr]


def test_an_edit_not_yet_indexed_makes_a_miss(assistant: Assistant, docs: Path) -> None:
    first_answer(assistant)
    (docs / "recipes.md").write_text("# Pancakes\n\nMix 300 g flour.\n")
    assert ask(assistant, FLOUR_AGAIN).trace.cache == "miss"  # type: ignore[union-attr]


def test_an_entry_whose_file_was_deleted_is_a_miss_and_goes(
        assistant: Assistant, docs: Path, caplog: pytest.LogCaptureFixture) -> None:
    first_answer(assistant)
    (docs / "recipes.md").unlink()
    with caplog.at_level("INFO", logger="app.core.answer_cache"):
        again = ask(assistant, FLOUR_AGAIN)
    assert again.trace is not None and again.trace.cache == "miss"
    assert any("recipes.md was deleted" in r.getMessage() for r in caplog.records)
    # The dropped entry is gone; what remains is the new answer's (if whole).
    entries = assistant.store.query("SELECT question FROM answer_cache")
    assert [r[0] for r in entries] in ([], [FLOUR_AGAIN])


def test_a_remote_answer_is_never_given_to_a_local_only_question(
        assistant: Assistant, paths: Paths, remote: FaultServer) -> None:
    add_provider(paths, ProviderConfig("faulty", "openai", remote.openai_url, "m",
                                       timeout_s=5.0))
    # The local model cannot start in time, so the remote provider answers.
    assistant.settings.override("routing.ttft_timeout_s", 0.01)
    assistant.settings.override("routing.reading_allowance", 0.0)
    opts = AskOptions(max_tokens=8, use_files=False)
    first = ask(assistant, "Say hello.", opts)
    assert first.provider == "faulty" and first.answer == "".join(ANSWER)
    assert ask(assistant, "Say hello!", opts).trace.cache == "hit"  # type: ignore[union-attr]
    assistant.settings.override("routing.ttft_timeout_s", 60.0)

    # Remote fallback switched off: same policy, but the remote answer stays unused.
    assistant.settings.override("routing.remote_fallback", False)
    no_remote = ask(assistant, "Say hello!", opts)
    assert no_remote.provider == "local" and no_remote.trace is not None
    assert no_remote.trace.cache == "miss"
    assistant.settings.override("routing.remote_fallback", True)
    for local in (AskOptions(max_tokens=8, use_files=False, offline=True),
                  AskOptions(max_tokens=8, use_files=False, route="local-only")):
        done = ask(assistant, "Say hello!", local)
        assert done.provider == "local" and done.answer != "".join(ANSWER)
        # A hit may only be the local model's own answer to the first of these
        # (kept when it ended by itself within its 8 tokens), never the remote one.
        assert done.trace is not None
        assert done.trace.cache == "miss" or done.trace.cache_source != first.message_id
    assert len(remote.requests) == 1


def test_a_stopped_answer_is_never_kept(assistant: Assistant, docs: Path) -> None:
    cancel = CancelToken()
    events: list[Event] = []
    for event in assistant.ask(FLOUR, None, OPTS, cancel):
        events.append(event)
        if isinstance(event, Delta):
            cancel.cancel()
    assert isinstance(events[-1], (Finished, Error))
    assert assistant.cache.status().entries == 0
    again = ask(assistant, FLOUR_AGAIN)
    assert again.trace is not None and again.trace.cache == "miss"


def test_ask_again_answers_anew_and_replaces_the_cached_answer(
        assistant: Assistant, docs: Path) -> None:
    first = first_answer(assistant)
    fresh = ask(assistant, FLOUR_AGAIN, AskOptions(**{**OPTS.__dict__, "fresh": True}))
    assert fresh.trace is not None and fresh.trace.cache == "off"
    assert fresh.trace.attempts[0].outcome == "answered"
    kept = assistant.store.query("SELECT m.conversation_id FROM answer_cache c "
                                 "JOIN messages m ON m.id = c.message_id")
    assert first.conversation_id not in [r[0] for r in kept]


def test_the_cache_switched_off_is_not_looked_up_or_filled(
        assistant: Assistant, docs: Path) -> None:
    assistant.settings.override("cache.enabled", False)
    for question in (FLOUR, FLOUR):
        done = ask(assistant, question)
        assert done.trace is not None and done.trace.cache == "off"
    assert assistant.cache.status().entries == 0


def test_hearth_ask_says_the_answer_is_an_earlier_one_and_the_cache_commands(
        assistant: Assistant, docs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.strip() == EMPTY_CLEAR
    # The instructions are part of what an answer depends on: set them for both.
    assistant.settings.set("generation.system_prompt", OPTS.system_prompt or "")
    done = ask(assistant, FLOUR, AskOptions(max_tokens=256, temperature=0.0, seed=1))
    assert done.finish_reason == "stop" and assistant.cache.status().entries == 1
    capsys.readouterr()
    args = ["ask", FLOUR_AGAIN, "--max-tokens", "256", "--temperature", "0", "--seed", "1"]
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert "from earlier answer by local/" in captured.err and "--fresh" in captured.err
    assert cli.main(["cache", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"] == 1
    assert cli.main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.startswith("Cleared 1 cached answer;")
    assert assistant.cache.status().entries == 0


def test_the_real_watcher_seeing_an_edit_of_its_file_makes_a_miss_and_of_another_not(
        settings: Settings, paths: Paths, docs: Path) -> None:
    from app.core.knowledge import progress as ev
    from app.core.knowledge.watcher import Watcher
    from tests.kb_helpers import wait_for

    seen: list[object] = []

    def indexed(path: Path) -> int:
        return sum(isinstance(e, ev.FileDone) and e.path == str(path) for e in seen)

    with KnowledgeBase(paths, settings, writer=True) as kb:
        watcher = Watcher(kb, seen.append, debounce_s=0.2, reconcile_s=None)
        watcher.start()
        assert watcher.ready.wait(60)
        assistant = Assistant(settings, paths, knowledge=kb)
        try:
            first_answer(assistant)
            garden, recipes = docs / "garden.md", docs / "recipes.md"
            garden.write_text(garden.read_text() + "\nTomatoes like sun.\n")
            wait_for(lambda: indexed(garden) >= 1, what="the watcher re-indexing garden.md")
            assert ask(assistant, FLOUR_AGAIN).trace.cache == "hit"  # type: ignore[union-attr]
            recipes.write_text(recipes.read_text().replace("200 g", "250 g"))
            wait_for(lambda: indexed(recipes) >= 1, what="the watcher re-indexing recipes.md")
            assert ask(assistant, FLOUR_AGAIN).trace.cache == "miss"  # type: ignore[union-attr]
        finally:
            assistant.close()
            watcher.stop()
