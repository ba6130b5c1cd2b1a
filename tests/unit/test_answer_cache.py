"""The answer cache's parts without a model: the migration of a database an
older Hearth wrote, the names that keep look-alike questions apart, the
calibration of cache.min_similarity on labelled question pairs (the real
embedder), and `hearth cache` with nothing to clear."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from app import cli
from app.core.answer_cache import EMPTY_CLEAR, names, status_of
from app.core.conversations import MIGRATIONS, ConversationStore
from app.paths import Paths
from app.settings import lookup

PAIRS = Path(__file__).resolve().parent.parent / "data" / "cache_question_pairs.json"


def test_a_database_an_older_hearth_wrote_gains_the_cache_and_keeps_its_messages(
        tmp_path: Path) -> None:
    db = tmp_path / "conversations.sqlite3"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    for name, sql in MIGRATIONS[:3]:  # what the Hearth before the cache created
        for statement in sql.split(";"):
            if statement.strip():
                con.execute(statement)
        con.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
    con.execute("INSERT INTO conversations VALUES ('c1', 'old', 1, 1)")
    con.execute("INSERT INTO messages (id, conversation_id, role, content, created_at) "
                "VALUES ('m1', 'c1', 'assistant', 'an old answer', 1)")
    con.commit()
    con.close()
    store = ConversationStore(db)
    try:
        assert "0004_answer_cache" in store.applied_migrations()
        assert [m.content for m in store.messages("c1")] == ["an old answer"]
        assert status_of(store).entries == 0
        assert status_of(store).as_text() == "The answer cache is empty."
    finally:
        store.close()


def test_deleting_a_conversation_deletes_its_cached_answers(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    try:
        conv = store.create("q")
        msg = store.add_message(conv.id, "assistant", "a")
        with store.tx() as db:
            db.execute("INSERT INTO answer_cache (message_id, scope, question, vector, "
                       "provider, policy, files_json, created_at) VALUES "
                       "(?, 's', 'q', x'00', 'local', 'auto', '[]', 0)", (msg.id,))
        assert status_of(store).entries == 1
        store.delete(conv.id)
        assert status_of(store).entries == 0
    finally:
        store.close()


@pytest.mark.parametrize(("question", "expected"), [
    ("What is the deadline for the Atlas project?", {"atlas"}),
    ("When does Monday's team meeting start?", {"monday"}),
    ("Where can I find the office Wi-Fi password?", {"wi-fi"}),
    ("What was revenue in 2024?", {"2024"}),
    ("How do I install Hearth? I use Linux.", {"hearth", "linux"}),
    ("what is the deadline for atlas", set()),
])
def test_names_are_numbers_and_capitalised_words_inside_a_sentence(
        question: str, expected: set[str]) -> None:
    assert names(question) == expected


def test_the_default_similarity_serves_paraphrases_and_not_other_questions() -> None:
    from app.core.knowledge.base import shared_embedder

    pairs = json.loads(PAIRS.read_text())["pairs"]
    assert len(pairs) >= 40
    embedder = shared_embedder()
    a = embedder.embed([p["a"] for p in pairs])
    b = embedder.embed([p["b"] for p in pairs])
    minimum = float(lookup("cache.min_similarity").default)
    served = [float(x @ y) >= minimum and names(p["a"]) == names(p["b"])
              for p, x, y in zip(pairs, a, b, strict=True)]
    same = [s for p, s in zip(pairs, served, strict=True) if p["same"]]
    other = [s for p, s in zip(pairs, served, strict=True) if not p["same"]]
    hit_rate, false_rate = sum(same) / len(same), sum(other) / len(other)
    print(f"\ncache.min_similarity {minimum}: paraphrases served {hit_rate:.0%} "
          f"({sum(same)}/{len(same)}), other questions served {false_rate:.0%} "
          f"({sum(other)}/{len(other)})")
    # A wrong answer served costs more than a question answered again.
    assert false_rate == 0
    assert hit_rate >= 0.6


def test_clearing_an_empty_cache_says_so(paths: Paths,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert not paths.conversations_db.exists()
    assert cli.main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.strip() == EMPTY_CLEAR
    assert cli.main(["cache", "status"]) == 0
    assert capsys.readouterr().out.strip() == "The answer cache is empty."
    assert not paths.conversations_db.exists()
