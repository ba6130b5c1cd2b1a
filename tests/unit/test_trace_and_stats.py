"""Traces and statistics over a real SQLite store: a trace is built from what
an answer knows and read back exactly; statistics over a seeded history equal
figures worked out by hand; an empty history, an unknown answer id and a
history an older Hearth wrote each get one clear sentence."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from pathlib import Path

import pytest

from app import cli
from app.core import stats, trace
from app.core.conversations import MIGRATIONS, ConversationStore, MessageNotFoundError
from app.core.events import Attempt, Route, Timings, Usage
from app.core.prompting import ContextChunk
from app.paths import Paths


def _chunks() -> tuple[ContextChunk, ...]:
    return (
        ContextChunk(1, "/d/a.md", "alpha", 1, 4, None, 0.9, False, 0.71, 3.2, 1),
        ContextChunk(2, "/d/b.pdf", "beta", None, None, 3, 0.5, True, 0.55, None, 3),
        ContextChunk(3, "/d/c.txt", "gamma", 7, 7, None, 0.2, False, None, 1.5, 4),
    )


def _fallback_route() -> Route:
    return Route("auto", (
        Attempt("local", "smol", 0.5, None, 20.5, "failed", "ttft_timeout",
                "local model timed out after 20 s"),
        Attempt("groq", "llama", 20.6, 21.0, 23.0, "answered", None, "", 300, 40, 0.00012),
    ), "answered by groq/llama — local model timed out after 20 s", {"openai_key": 2}, 1,
        0.00012, 2)


def test_a_trace_holds_every_attempt_passage_and_what_was_withheld() -> None:
    t = trace.build(
        prompt_ref="hearth-answer@3", route=_fallback_route(), question="What is alpha?",
        context=_chunks(), used=(1, 3), answer="Alpha is first [1]; see also [2, 3].",
        status="answered", provider="groq", model="llama", usage=Usage(300, 40),
        timings=Timings(ttft_s=20.5, total_s=23.4, tokens_per_s=19.5), finish_reason="stop")
    assert (t.prompt_id, t.prompt_version, t.policy) == ("hearth-answer", 3, "auto")
    local, remote = t.attempts
    assert (local.queue_s, local.first_token_s, local.generation_s, local.total_s) == (
        0.5, None, None, 20.0)
    assert (remote.queue_s, remote.first_token_s, remote.generation_s, remote.total_s) == (
        20.6, 0.4, 2.0, 2.4)
    assert (remote.prompt_tokens, remote.completion_tokens, remote.cost_usd) == (300, 40,
                                                                                  0.00012)
    assert t.fell_back and trace.fallback_reason(t.attempts) == "ttft_timeout"
    # [2] was cited but never reached the model (withheld as local-only): not a citation.
    assert [(p.number, p.sent, p.cited) for p in t.passages] == [
        (1, True, True), (2, False, False), (3, True, True)]
    a = t.passages[0]
    assert (a.vector_score, a.keyword_score, a.fused_score, a.fused_rank) == (0.71, 3.2, 0.9, 1)
    assert (t.redactions, t.local_only_withheld, t.history_withheld) == ({"openai_key": 2}, 1, 2)
    assert (t.prompt_tokens, t.completion_tokens, t.tokens_per_s, t.cost_usd) == (
        300, 40, 19.5, 0.00012)
    assert t.cache == "off" and not t.legacy
    again = trace.Trace.from_dict(json.loads(json.dumps(t.to_dict())))
    assert again == t
    text = trace.as_text(t, "abc")
    assert "hearth-answer@3" in text and "ttft_timeout" in text and "/d/b.pdf" in text


def test_a_trace_from_a_later_hearth_or_a_damaged_one_still_reads() -> None:
    t = trace.build(prompt_ref="p@1", route=None, question="q", context=(), used=None,
                    answer="", status="failed", provider="local", model="m")
    data = {**t.to_dict(), "some_future_field": 1}
    assert trace.Trace.from_dict(data) == t
    with pytest.raises(ValueError, match="not a trace"):
        trace.Trace.from_dict({"attempts": []})


@pytest.fixture
def store(paths: Paths) -> ConversationStore:
    paths.ensure(paths.data_dir)
    s = ConversationStore(paths.conversations_db)
    yield s  # type: ignore[misc]
    s.close()


def test_the_trace_is_stored_with_its_answer_and_found_by_id_or_last(
        store: ConversationStore) -> None:
    with pytest.raises(MessageNotFoundError, match="There are no answers yet"):
        store.answer("last")
    conv = store.create("q")
    store.add_message(conv.id, "user", "q")
    t = trace.build(prompt_ref="p@2", route=_fallback_route(), question="q", context=_chunks(),
                    used=(1,), answer="[1]", status="answered", provider="groq", model="llama")
    first = store.add_message(conv.id, "assistant", "[1]", trace=t.to_dict())
    second = store.add_message(conv.id, "assistant", "later")
    assert trace.from_message(store.answer(first.id[:10])) == t
    assert store.answer("last").id == second.id
    with pytest.raises(MessageNotFoundError) as err:
        store.answer("0123abc")
    assert str(err.value) == "No answer has the id '0123abc'."


def _old_store(path: Path) -> None:
    """A conversation store as the Hearth before traces wrote it."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    for name, sql in MIGRATIONS:
        if name.startswith("0003"):
            break
        for statement in sql.split(";"):
            if statement.strip():
                con.execute(statement)
        con.execute("INSERT INTO migrations VALUES (?, ?)", (name, 0.0))
    con.execute("INSERT INTO conversations VALUES ('c1', 'old', 1.0, 1.0)")
    route = {"policy": "auto", "summary": "answered by local/smol", "attempts": [
        {"provider": "local", "model": "smol", "started_s": 0.0, "first_token_s": 0.3,
         "ended_s": 1.3, "outcome": "answered", "prompt_tokens": 50, "completion_tokens": 9}]}
    con.execute(
        "INSERT INTO messages (id, conversation_id, role, content, status, model, provider, "
        "prompt_tokens, completion_tokens, ttft_s, tokens_per_s, total_s, route_json, "
        "sources_json, created_at, prompt_ref) VALUES ('m1', 'c1', 'assistant', 'See [1].', "
        "'complete', 'smol', 'local', 50, 9, 0.3, 8.0, 1.4, ?, ?, ?, 'hearth-answer@2')",
        (json.dumps(route), json.dumps([{"number": 1, "path": "/d/a.md", "start_line": 1}]),
         time.time()))
    con.commit()
    con.close()


def test_a_history_from_an_older_hearth_has_stats_and_a_rebuilt_trace(paths: Paths) -> None:
    paths.ensure(paths.data_dir)
    _old_store(paths.conversations_db)
    # Statistics read it as it is (the store is not migrated by reading figures) ...
    figures = stats.collect(paths)
    assert figures["answers"] == 1 and figures["legacy_answers"] == 1
    assert figures["citations"] == {"answers": 1, "with_files": 1, "citing": 1, "share": 1.0}
    assert figures["by_model"][0]["ttft_p50_s"] == 0.3
    # ... and opening it as a store adds the trace column, leaving the answer without one.
    s = ConversationStore(paths.conversations_db)
    try:
        msg = s.answer("last")
        assert msg.trace is None
        t = trace.from_message(msg)
    finally:
        s.close()
    assert t.legacy and (t.prompt_id, t.prompt_version) == ("hearth-answer", 2)
    assert [(a.provider, a.first_token_s, a.generation_s) for a in t.attempts] == [
        ("local", 0.3, 1.0)]
    assert t.passages[0].cited and t.passages[0].vector_score is None
    assert trace.LEGACY_NOTE in trace.as_text(t)


# -- statistics over a seeded history --------------------------------------------------


DAY1 = dt.datetime(2025, 3, 1, 10, 0).timestamp()
DAY2 = dt.datetime(2025, 3, 2, 15, 30).timestamp()


def _seed(store: ConversationStore) -> None:
    """Five answers: three local (one cites), one fallback to groq (priced), one
    failure; then cache lookups in the traces (one hit, two misses)."""
    conv = store.create("seed")
    local = [(0.2, 40.0), (0.4, 30.0), (1.0, 20.0)]
    rows: list[tuple[float, dict[str, object]]] = []
    for i, (ttft, tps) in enumerate(local):
        route = Route("auto", (Attempt("local", "smol", 0.0, ttft, ttft + 1, "answered", None,
                                       "", 100, 10),), "answered by local/smol")
        t = trace.build(prompt_ref="p@1", route=route, question="q", context=_chunks()[:1],
                        used=(1,), answer="yes [1]" if i == 0 else "no", status="answered",
                        provider="local", model="smol", usage=Usage(100, 10),
                        cache="hit" if i == 0 else "miss")
        rows.append((DAY1 + i, dict(model="smol", provider="local", prompt_tokens=100,
                                    completion_tokens=10, ttft_s=ttft, tokens_per_s=tps,
                                    route=_asdict(route), trace=t.to_dict())))
    fb = _fallback_route()
    t = trace.build(prompt_ref="p@1", route=fb, question="q", context=(), used=(),
                    answer="x", status="answered", provider="groq", model="llama",
                    cache="miss")
    rows.append((DAY2, dict(model="llama", provider="groq", prompt_tokens=300,
                            completion_tokens=40, ttft_s=20.5, tokens_per_s=19.5,
                            route=_asdict(fb), trace=t.to_dict())))
    for created, fields in rows:
        msg = store.add_message(conv.id, "assistant", "yes [1]" if created == DAY1 else "x",
                                **fields)
        _backdate(store, msg.id, created)
    failed = store.add_message(conv.id, "assistant", "", status="error", model="smol",
                               provider="local", error="boom")
    _backdate(store, failed.id, DAY2 + 60)


def _asdict(route: Route) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(route)


def _backdate(store: ConversationStore, message_id: str, when: float) -> None:
    with store.tx() as db:
        db.execute("UPDATE messages SET created_at = ? WHERE id = ?", (when, message_id))


def test_stats_over_a_seeded_history_equal_the_figures_worked_by_hand(
        store: ConversationStore, paths: Paths) -> None:
    _seed(store)
    s = stats.collect(paths)
    assert s["answers"] == 5 and s["message"] is None
    smol, llama = s["by_model"]
    # ttft of the completed local answers: 0.2, 0.4, 1.0 -> nearest rank p50 = 0.4, p95 = 1.0
    assert smol == {"provider": "local", "model": "smol", "answers": 4, "failed": 1,
                    "ttft_p50_s": 0.4, "ttft_p95_s": 1.0,
                    "tokens_per_s_p50": 30.0, "tokens_per_s_p95": 40.0}
    assert llama["answers"] == 1 and llama["ttft_p50_s"] == 20.5
    # Four answers have a route; one of them fell back, because local timed out.
    assert s["fallback"] == {"answers": 1, "routed": 4, "rate": 0.25,
                             "reasons": {"ttft_timeout": 1}}
    tok = s["tokens"]
    assert tok["by_provider"] == [
        {"provider": "groq", "prompt_tokens": 300, "completion_tokens": 40, "cost_usd": 0.00012},
        {"provider": "local", "prompt_tokens": 300, "completion_tokens": 30, "cost_usd": None},
    ]
    assert tok["total"] == {"prompt_tokens": 600, "completion_tokens": 70, "cost_usd": 0.00012}
    assert [(d["day"], d["provider"], d["prompt_tokens"]) for d in tok["by_day"]] == [
        ("2025-03-01", "local", 300), ("2025-03-02", "groq", 300), ("2025-03-02", "local", 0)]
    assert s["cache"] == {"lookups": 4, "hits": 1, "hit_rate": 0.25}
    # Completed answers: 4; given passages: the three local ones; citing: one.
    assert s["citations"] == {"answers": 4, "with_files": 3, "citing": 1, "share": 0.25}
    text = stats.as_text(s)
    assert "ttft_timeout" in text and "$0.0001" in text

    since = stats.collect(paths, since=dt.datetime(2025, 3, 2).timestamp())
    assert since["answers"] == 2 and since["cache"]["lookups"] == 1


def test_stats_over_an_empty_history_say_so(paths: Paths,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    s = stats.collect(paths)
    assert s["answers"] == 0
    assert s["message"] == "No answers yet; ask something first, then look again."
    assert cli.main(["stats", "--since", "7d"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("No answers yet since ") and "ask something first" in out
    assert cli.main(["stats", "--since", "soon"]) == 2
    assert capsys.readouterr().err == (
        "hearth: --since must be a span like 7d, 24h, 30m or 2w, or a date like 2025-01-31; "
        "got 'soon'.\n")


def test_parse_since() -> None:
    assert stats.parse_since("7d", now=1_000_000.0) == 1_000_000.0 - 7 * 86400
    assert stats.parse_since("1.5h", now=10_000.0) == 10_000.0 - 5400
    assert stats.parse_since("2025-03-02") == dt.datetime(2025, 3, 2).timestamp()
    assert stats.percentile([], 50) is None
    assert stats.percentile([5.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert stats.percentile([5.0, 1.0, 3.0, 2.0], 95) == 5.0


def test_trace_command_for_an_unknown_id_and_for_no_history(
        store: ConversationStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["trace"]) == 1
    assert capsys.readouterr().err == "hearth: There are no answers yet; ask something first.\n"
    _seed(store)
    assert cli.main(["trace", "feedface"]) == 1
    assert capsys.readouterr().err == "hearth: No answer has the id 'feedface'.\n"
    assert cli.main(["trace", "last", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["provider"] == "local" and data["status"] == "failed" and data["legacy"]
