from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.core.conversations import MIGRATIONS, ConversationNotFoundError, ConversationStore
from app.core.errors import HearthError
from app.paths import DataDirError


@pytest.fixture
def store(tmp_path: Path):
    s = ConversationStore(tmp_path / "c.sqlite3")
    yield s
    s.close()


def test_wal_and_migrations_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    s = ConversationStore(path)
    assert s.applied_migrations() == [name for name, _ in MIGRATIONS]
    s.close()
    s = ConversationStore(path)  # re-opening applies nothing twice
    assert s.applied_migrations() == [name for name, _ in MIGRATIONS]
    s.close()
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_messages_keep_their_fields_and_order(store: ConversationStore) -> None:
    conv = store.create("What is a GGUF file?")
    store.add_message(conv.id, "user", "What is a GGUF file?")
    store.add_message(conv.id, "assistant", "A model file.", model="m", provider="local",
                      prompt_tokens=10, completion_tokens=4, ttft_s=0.1, tokens_per_s=50.0,
                      total_s=0.3, route={"policy": "local"})
    msgs = store.messages(conv.id)
    assert [m.role for m in msgs] == ["user", "assistant"]
    a = msgs[1]
    assert (a.model, a.provider, a.prompt_tokens, a.completion_tokens) == ("m", "local", 10, 4)
    assert a.tokens_per_s == 50.0 and a.route == {"policy": "local"}


def test_lookup_by_prefix_rename_search_delete(store: ConversationStore) -> None:
    a = store.create("Notes about llamas")
    b = store.create("Shopping list")
    store.add_message(b.id, "user", "buy oat milk")
    assert store.get(a.id[:6]).id == a.id
    store.rename(a.id, "Llama notes")
    assert store.get(a.id).title == "Llama notes"
    assert [c.id for c in store.search("oat")] == [b.id]
    assert [c.id for c in store.search("llama")] == [a.id]
    assert store.search("100%") == []  # LIKE wildcards are literal
    store.delete(b.id)
    assert store.messages(b.id) == []
    with pytest.raises(ConversationNotFoundError, match="No conversation has the id"):
        store.get(b.id)


def test_long_titles_are_shortened(store: ConversationStore) -> None:
    conv = store.create("word " * 100)
    assert len(conv.title) <= 80 and conv.title.endswith("…")


def test_a_file_that_is_not_a_database_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    path.write_bytes(b"my precious notes " * 100)
    with pytest.raises(DataDirError, match="not a Hearth conversation database"):
        ConversationStore(path)
    assert path.read_bytes() == b"my precious notes " * 100


def test_delete_messages_from_drops_that_message_and_later_ones(store: ConversationStore) -> None:
    conv = store.create("q")
    other = store.create("other")
    q1 = store.add_message(conv.id, "user", "first question")
    store.add_message(conv.id, "assistant", "first answer")
    q2 = store.add_message(conv.id, "user", "second question")
    store.add_message(conv.id, "assistant", "second answer")
    store.add_message(other.id, "user", "untouched")
    assert store.delete_messages_from(conv.id, q2.id) == 2
    assert [m.content for m in store.messages(conv.id)] == ["first question", "first answer"]
    assert [m.content for m in store.messages(other.id)] == ["untouched"]
    with pytest.raises(HearthError, match="No message has the id"):
        store.delete_messages_from(other.id, q1.id)


def test_an_old_store_gains_the_local_only_mark_and_prompt(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    name, sql = MIGRATIONS[0]
    db.executescript(sql)
    db.execute("INSERT INTO migrations VALUES (?, 0)", (name,))
    db.execute("INSERT INTO conversations VALUES ('c1', 'old', 0, 0)")
    db.execute("INSERT INTO messages (id, conversation_id, role, content, created_at) "
               "VALUES ('m1', 'c1', 'assistant', 'an old answer', 0)")
    db.commit()
    db.close()
    s = ConversationStore(path)
    old = s.messages("c1")[0]
    assert old.content == "an old answer" and old.local_only is False and old.prompt_ref is None
    new = s.add_message("c1", "assistant", "quotes a diary", local_only=True,
                        prompt_ref="hearth-answer@2")
    assert (new.local_only, new.prompt_ref) == (True, "hearth-answer@2")
    s.close()
