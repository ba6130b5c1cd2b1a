"""The semantic answer cache: a question close enough to an earlier one, asked
over the same files, model, prompt, instructions, conversation and route
policy, gets the earlier answer at once instead of a model run.

Entries live in the conversation database (table `answer_cache`), one per
answer message, and go with it when its conversation is deleted. An entry
is checked when it is found, not kept fresh by a watcher, so it holds
across processes: it is dropped when a file it was built from has changed
on disk or in the index, or is gone."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.core.conversations import ConversationStore, Message
from app.core.knowledge.location import knowledge_dir
from app.paths import Paths

if TYPE_CHECKING:
    import numpy as np

    from app.settings import Settings

log = logging.getLogger(__name__)

# Bumped when what goes into a scope changes: older entries then never match.
SCOPE_VERSION = 1
# The line a cached answer carries in the window, quick-ask and `hearth ask`.
CACHE_NOTE = "From earlier answer"
ASK_AGAIN = "Ask again"
EMPTY_CLEAR = "The answer cache is already empty; there was nothing to clear."

# Numbers, and capitalised words inside a sentence (names, places, weekdays,
# products): two questions worded alike that differ in one of these ask about
# different things ("the Atlas deadline" / "the Borealis deadline"), however
# close their embeddings are (measured: 0.95 for Monday/Thursday, 0.93 for
# Linux/Windows, above most paraphrases).
_NAME = re.compile(r"(?<![\w'’])(\d[\d.,:/-]*|[A-Z][\w-]*)")
_NOT_NAMES = frozenset({"i", "i'm", "i've", "i'd", "i'll", "ok"})
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+|\n)\s*[\"'(\[]*$")


def names(text: str) -> frozenset[str]:
    """The numbers and names in `text`, lower-cased, without a possessive 's."""
    out = set()
    for m in _NAME.finditer(text):
        word = m.group(1).rstrip(".,:/-")
        if word[:1].isupper() and _SENTENCE_START.search(text[:m.start()]):
            continue  # any word starts a sentence with a capital
        out.add(re.sub(r"['’]s$", "", word).lower())
    return frozenset(w for w in out if w and w not in _NOT_NAMES)


def scope_key(**parts: Any) -> str:
    """One digest of everything besides the question that the answer depends on."""
    blob = json.dumps({"v": SCOPE_VERSION, **parts}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class Hit:
    message: Message
    similarity: float


@dataclass(frozen=True)
class Status:
    entries: int
    hits: int
    newest: float | None

    def as_text(self) -> str:
        if not self.entries:
            return "The answer cache is empty."
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.newest or 0))
        return (f"The answer cache holds {self.entries} answer{'s' if self.entries != 1 else ''}"
                f", served {self.hits} time{'s' if self.hits != 1 else ''}; newest {when}.")


class AnswerCache:
    """Lookups and entries over one conversation store. Questions are
    embedded by `embed_question` when given (the window's index process, so
    the window never loads the ONNX model), else by this process's shared
    embedder, loaded on the first question."""

    def __init__(self, store: ConversationStore, paths: Paths, settings: Settings,
                 embed_question: Callable[[str], Sequence[float]] | None = None) -> None:
        self.store = store
        self.paths = paths
        self.settings = settings
        self._embedder: Any = None
        self._embed_question = embed_question

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from app.core.knowledge.base import shared_embedder

            self._embedder = shared_embedder(self.settings.snapshot().knowledge.embed_threads)
        return self._embedder

    def embed(self, question: str) -> np.ndarray:
        import numpy as np

        if self._embed_question is not None:
            return np.asarray(self._embed_question(question), dtype=np.float32)
        return np.asarray(embed_question(self.embedder, question), dtype=np.float32)

    # -- lookups -----------------------------------------------------------------

    def lookup(self, question: str, vector: np.ndarray, scope: str, *,
               allow_remote: bool) -> Hit | None:
        """The closest valid earlier answer at least `cache.min_similarity`
        close, or None. Entries found invalid on the way are dropped.
        `allow_remote`: False for a question that must stay on this computer,
        which is never given an answer a remote model wrote."""
        import numpy as np

        minimum = self.settings.snapshot().cache.min_similarity
        rows = self.store.query(
            "SELECT c.message_id, c.question, c.vector, c.provider, c.files_json "
            "FROM answer_cache c JOIN messages m ON m.id = c.message_id "
            "WHERE c.scope = ? AND m.status = 'complete' ORDER BY c.created_at DESC", (scope,))
        if not rows:
            return None
        vectors = np.stack([np.frombuffer(r["vector"], dtype=np.float32) for r in rows])
        sims = vectors @ vector
        wanted = names(question)
        for i in np.argsort(-sims, kind="stable"):
            sim = float(sims[i])
            if sim < minimum:
                break
            row = rows[int(i)]
            if row["provider"] != "local" and not allow_remote:
                continue
            if names(row["question"]) != wanted:
                continue
            why = self._invalid(json.loads(row["files_json"] or "[]"))
            if why is not None:
                log.info("cached answer %s dropped: %s", row["message_id"][:8], why)
                self.forget(row["message_id"])
                continue
            return Hit(self.store.message(row["message_id"]), sim)
        return None

    def served(self, hit: Hit) -> None:
        with self.store.tx() as db:
            db.execute("UPDATE answer_cache SET hits = hits + 1, last_hit_at = ? "
                       "WHERE message_id = ?", (time.time(), hit.message.id))

    def _invalid(self, files: Sequence[dict[str, Any]]) -> str | None:
        """Why an entry built from `files` may no longer be served, or None."""
        if not files:
            return None
        with _manifest(self.paths) as manifest:
            for f in files:
                path = str(f.get("path") or "")
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    return f"{path} was deleted"
                except OSError as exc:
                    return f"{path} cannot be read ({exc.strerror or exc})"
                if f.get("size") is not None and (st.st_size != f["size"]
                                                  or st.st_mtime_ns != f.get("mtime_ns")):
                    return f"{path} changed"
                if manifest is None:
                    return "the index is gone"
                row = manifest.execute("SELECT hash FROM files WHERE path = ?",
                                       (path,)).fetchone()
                if row is None:
                    return f"{path} is no longer indexed"
                if row[0] != f.get("hash"):
                    return f"{path} was indexed again with other content"
        return None

    # -- entries -----------------------------------------------------------------

    def remember(self, message_id: str, question: str, vector: np.ndarray, scope: str,
                 provider: str, policy: str, source_paths: Sequence[str], *,
                 replace: bool = False) -> None:
        """Keep the answer `message_id` for later questions. `replace`: the
        user asked again, so the entries this one answers anew are dropped."""
        import numpy as np

        files = self._fingerprints(source_paths)
        with self.store.tx() as db:
            if replace:
                minimum = self.settings.snapshot().cache.min_similarity
                for r in db.execute("SELECT message_id, vector FROM answer_cache "
                                    "WHERE scope = ?", (scope,)).fetchall():
                    if float(np.frombuffer(r[1], dtype=np.float32) @ vector) >= minimum:
                        db.execute("DELETE FROM answer_cache WHERE message_id = ?", (r[0],))
            db.execute(
                "INSERT OR REPLACE INTO answer_cache (message_id, scope, question, vector, "
                "provider, policy, files_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (message_id, scope, question, np.asarray(vector, np.float32).tobytes(),
                 provider, policy, json.dumps(files), time.time()))

    def _fingerprints(self, source_paths: Sequence[str]) -> list[dict[str, Any]]:
        """Each file as the index read it: its content hash, size and mtime
        from the manifest (so an edit not yet indexed also makes a miss)."""
        out: list[dict[str, Any]] = []
        with _manifest(self.paths) as manifest:
            for path in dict.fromkeys(source_paths):
                row = manifest.execute(
                    "SELECT hash, size, mtime_ns FROM files WHERE path = ?", (path,)
                ).fetchone() if manifest is not None else None
                out.append({"path": path, "hash": row[0] if row else None,
                            "size": row[1] if row else None,
                            "mtime_ns": row[2] if row else None})
        return out

    def forget(self, message_id: str) -> None:
        with self.store.tx() as db:
            db.execute("DELETE FROM answer_cache WHERE message_id = ?", (message_id,))

    def clear(self) -> int:
        return clear_store(self.store)

    def status(self) -> Status:
        return status_of(self.store)


def clear_store(store: ConversationStore) -> int:
    """Forget every cached answer (the conversations keep them); how many."""
    with store.tx() as db:
        return int(db.execute("DELETE FROM answer_cache").rowcount)


def status_of(store: ConversationStore) -> Status:
    row = store.query("SELECT COUNT(*), COALESCE(SUM(hits), 0), MAX(created_at) "
                      "FROM answer_cache")[0]
    return Status(int(row[0]), int(row[1]), row[2])


def folder_scope(paths: Paths) -> list[Any]:
    """The indexed folders and how each is read: answers over other folders
    (or other rules) are other answers."""
    with _manifest(paths) as manifest:
        if manifest is None:
            return []
        try:
            return [list(r) for r in manifest.execute(
                "SELECT path, include_json, exclude_json, local_only, paused FROM folders "
                "ORDER BY path")]
        except sqlite3.DatabaseError:
            return []


@contextmanager
def _manifest(paths: Paths) -> Iterator[sqlite3.Connection | None]:
    # Read-only, and never through the index's own objects: a lookup must
    # not wait for a process that is writing the index, nor create one.
    db = knowledge_dir(paths) / "manifest.sqlite3"
    if not db.exists():
        yield None
        return
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2.0)
    try:
        yield con
    finally:
        con.close()


def embed_question(embedder: Any, question: str) -> list[float]:
    """A question's vector for the cache, by `embedder` (a MiniLMEmbedder)."""
    # A longer question is still the same question, and its vector only has
    # to be compared: it is embedded by its start.
    return [float(x) for x in embedder.embed([question], from_head=True)[0]]
