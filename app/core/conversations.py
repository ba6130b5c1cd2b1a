"""The conversation store: SQLite in WAL mode, schema changed only by named,
append-only migrations (a migration, once released, is never edited), run by
app.core.migrations."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

from app.core.db import SQLiteFile
from app.core.errors import HearthError
from app.core.migrations import Migration

MIGRATIONS: tuple[Migration, ...] = (
    (
        "0001_conversations_and_messages",
        """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE messages (
            id TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'complete',
            model TEXT,
            provider TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            ttft_s REAL,
            tokens_per_s REAL,
            total_s REAL,
            error TEXT,
            route_json TEXT,
            sources_json TEXT,
            created_at REAL NOT NULL
        );
        CREATE INDEX messages_by_conversation ON messages(conversation_id, created_at);
        """,
    ),
    (
        # local_only: the message holds text from a local-only folder (an
        # answer built from its passages), so it is never sent to a remote
        # provider. prompt_ref: the versioned prompt the answer was made with.
        "0002_message_local_only_and_prompt",
        """
        ALTER TABLE messages ADD COLUMN local_only INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE messages ADD COLUMN prompt_ref TEXT
        """,
    ),
    (
        # trace_json: how the answer was made (app.core.trace); NULL for
        # answers stored before traces were kept. The index serves the
        # statistics, which read answers by time.
        "0003_message_trace",
        """
        ALTER TABLE messages ADD COLUMN trace_json TEXT;
        CREATE INDEX messages_by_role_time ON messages(role, created_at)
        """,
    ),
    (
        # The semantic answer cache (app.core.answer_cache): one entry per
        # answer that later questions may be given, deleted with its message.
        # scope: digest of model, prompt, instructions, folders, policy and
        # the conversation before the question; files_json: the files the
        # answer was built from, as the index had read them.
        "0004_answer_cache",
        """
        CREATE TABLE answer_cache (
            message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
            scope TEXT NOT NULL,
            question TEXT NOT NULL,
            vector BLOB NOT NULL,
            provider TEXT NOT NULL,
            policy TEXT NOT NULL,
            files_json TEXT NOT NULL,
            created_at REAL NOT NULL,
            hits INTEGER NOT NULL DEFAULT 0,
            last_hit_at REAL
        );
        CREATE INDEX answer_cache_by_scope ON answer_cache(scope, created_at)
        """,
    ),
)


class ConversationNotFoundError(HearthError):
    reason = "conversation_not_found"


class MessageNotFoundError(HearthError):
    reason = "message_not_found"


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Message:
    id: str
    conversation_id: str
    role: str
    content: str
    status: str
    created_at: float
    model: str | None = None
    provider: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    total_s: float | None = None
    error: str | None = None
    route: Any = None
    sources: Any = None
    local_only: bool = False
    prompt_ref: str | None = None
    trace: Any = None


_MESSAGE_FIELDS = (
    "model", "provider", "prompt_tokens", "completion_tokens", "ttft_s", "tokens_per_s",
    "total_s", "error", "local_only", "prompt_ref",
)


class ConversationStore(SQLiteFile):
    """Thread-safe access to conversations.sqlite3."""

    NOT_A = "conversation database"
    NAME = "conversation store"
    FOLDER = "data folder"
    MIGRATIONS = MIGRATIONS

    # -- conversations -----------------------------------------------------------

    def create(self, title: str) -> Conversation:
        now = time.time()
        conv = Conversation(uuid.uuid4().hex, _title(title), now, now)
        with self.tx() as db:
            db.execute(
                "INSERT INTO conversations VALUES (?, ?, ?, ?)",
                (conv.id, conv.title, conv.created_at, conv.updated_at),
            )
        return conv

    def get(self, conversation_id: str) -> Conversation:
        """Look a conversation up by id or by a unique prefix of it."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM conversations WHERE id = ? OR id LIKE ? ESCAPE '\\' LIMIT 2",
                (conversation_id, _escape_like(conversation_id) + "%"),
            ).fetchall() if conversation_id else []
        exact = [r for r in rows if r["id"] == conversation_id]
        if exact:
            rows = exact
        if len(rows) != 1:
            raise ConversationNotFoundError(
                f"No conversation has the id {conversation_id!r}."
                if not rows else f"The id {conversation_id!r} matches several conversations."
            )
        return Conversation(**dict(rows[0]))

    def search(self, query: str | None = None) -> list[Conversation]:
        """Newest first; `query` matches titles and message text."""
        with self._lock:
            if query:
                like = "%" + _escape_like(query) + "%"
                rows = self._db.execute(
                    "SELECT * FROM conversations c WHERE c.title LIKE ? ESCAPE '\\' OR EXISTS "
                    "(SELECT 1 FROM messages m WHERE m.conversation_id = c.id "
                    "AND m.content LIKE ? ESCAPE '\\') ORDER BY updated_at DESC",
                    (like, like),
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT * FROM conversations ORDER BY updated_at DESC"
                ).fetchall()
        return [Conversation(**dict(r)) for r in rows]

    def rename(self, conversation_id: str, title: str) -> None:
        conv = self.get(conversation_id)
        with self.tx() as db:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (_title(title), conv.id))

    def delete(self, conversation_id: str) -> None:
        conv = self.get(conversation_id)
        with self.tx() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conv.id,))

    # -- messages ------------------------------------------------------------------

    def add_message(
        self, conversation_id: str, role: str, content: str, status: str = "complete",
        **fields: Any,
    ) -> Message:
        now = time.time()
        msg_id = uuid.uuid4().hex
        values = {k: fields.get(k) for k in _MESSAGE_FIELDS}
        values["local_only"] = int(bool(values["local_only"]))
        route = json.dumps(fields["route"]) if fields.get("route") is not None else None
        sources = json.dumps(fields["sources"]) if fields.get("sources") is not None else None
        trace = json.dumps(fields["trace"]) if fields.get("trace") is not None else None
        with self.tx() as db:
            db.execute(
                "INSERT INTO messages (id, conversation_id, role, content, status, "
                + ", ".join(_MESSAGE_FIELDS)
                + ", route_json, sources_json, trace_json, created_at) VALUES ("
                + ", ".join("?" * (9 + len(_MESSAGE_FIELDS)))
                + ")",
                (msg_id, conversation_id, role, content, status,
                 *values.values(), route, sources, trace, now),
            )
            db.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
            )
        return self.message(msg_id)

    def delete_messages_from(self, conversation_id: str, message_id: str) -> int:
        """Delete `message_id` and every later message of the conversation (to
        answer a question again, or send an edited one); returns how many."""
        with self.tx() as db:
            row = db.execute(
                "SELECT created_at, rowid FROM messages WHERE id = ? AND conversation_id = ?",
                (message_id, conversation_id),
            ).fetchone()
            if row is None:
                raise HearthError(f"No message has the id {message_id!r} in this conversation.")
            cur = db.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND "
                "(created_at > ? OR (created_at = ? AND rowid >= ?))",
                (conversation_id, row[0], row[0], row[1]),
            )
            return cur.rowcount

    def message(self, message_id: str) -> Message:
        with self._lock:
            row = self._db.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise HearthError(f"No message has the id {message_id!r}.")
        return _message(row)

    def answer(self, message_id: str) -> Message:
        """An assistant message by id or unique prefix, or "last" for the newest
        answer (raises MessageNotFoundError, one sentence, when there is none)."""
        with self._lock:
            if message_id == "last":
                rows = self._db.execute(
                    "SELECT * FROM messages WHERE role = 'assistant' "
                    "ORDER BY created_at DESC, rowid DESC LIMIT 1").fetchall()
                if not rows:
                    raise MessageNotFoundError("There are no answers yet; ask something first.")
                return _message(rows[0])
            rows = self._db.execute(
                "SELECT * FROM messages WHERE role = 'assistant' AND (id = ? OR id LIKE ? "
                "ESCAPE '\\') LIMIT 2",
                (message_id, _escape_like(message_id) + "%"),
            ).fetchall() if message_id else []
        exact = [r for r in rows if r["id"] == message_id]
        if exact:
            rows = exact
        if len(rows) != 1:
            raise MessageNotFoundError(
                f"No answer has the id {message_id!r}." if not rows
                else f"The id {message_id!r} matches several answers; give more of it.")
        return _message(rows[0])

    def messages(self, conversation_id: str) -> list[Message]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM messages WHERE conversation_id = ? ORDER BY created_at, rowid",
                (conversation_id,),
            ).fetchall()
        return [_message(r) for r in rows]


def _message(row: sqlite3.Row) -> Message:
    data = dict(row)
    route = data.pop("route_json")
    sources = data.pop("sources_json")
    trace = data.pop("trace_json", None)
    data["local_only"] = bool(data.get("local_only"))
    return Message(
        **data,
        route=json.loads(route) if route else None,
        sources=json.loads(sources) if sources else None,
        trace=_json_or_none(trace),
    )


def _json_or_none(text: str | None) -> Any:
    # A damaged trace must not make its conversation unreadable.
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _title(text: str) -> str:
    line = " ".join(text.split())
    return (line[:77] + "…") if len(line) > 80 else (line or "New conversation")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
