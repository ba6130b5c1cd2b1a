"""Where the index lives: the manifest (SQLite: folders, files, chunks and an
FTS5 keyword index over the chunk text) and the vectors (Chroma, embedded or
a server). The manifest is the source of truth; Chroma holds one vector per
chunk id the manifest lists, and the reconcile scan makes them agree again
after a crash.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from app.core.db import SQLiteFile
from app.core.errors import HearthError
from app.core.knowledge.location import knowledge_dir as knowledge_dir
from app.core.migrations import Migration
from app.paths import Paths

MIGRATIONS: tuple[Migration, ...] = (
    (
        "0001_folders_files_chunks",
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE folders (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            include_json TEXT NOT NULL DEFAULT '[]',
            exclude_json TEXT NOT NULL DEFAULT '[]',
            local_only INTEGER NOT NULL DEFAULT 0,
            paused INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'ok',
            error TEXT,
            added_at REAL NOT NULL,
            scanned_at REAL
        );
        CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            path TEXT NOT NULL UNIQUE,
            kind TEXT,
            size INTEGER,
            mtime_ns INTEGER,
            hash TEXT,
            status TEXT NOT NULL,
            error TEXT,
            chunk_count INTEGER NOT NULL DEFAULT 0,
            indexed_at REAL
        );
        CREATE INDEX files_by_folder ON files(folder_id);
        CREATE INDEX files_by_status ON files(status);
        CREATE TABLE chunks (
            rowid INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            ord INTEGER NOT NULL,
            hash TEXT NOT NULL,
            text TEXT NOT NULL,
            start_line INTEGER,
            end_line INTEGER,
            page INTEGER,
            tokens INTEGER NOT NULL
        );
        CREATE INDEX chunks_by_file ON chunks(file_id);
        CREATE INDEX chunks_by_hash ON chunks(hash);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, content='chunks', content_rowid='rowid', tokenize='porter unicode61'
        );
        CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, text) VALUES (new.rowid, new.text);
        END;
        CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
        END;
        CREATE TRIGGER chunks_au AFTER UPDATE OF text ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
            INSERT INTO chunks_fts(rowid, text) VALUES (new.rowid, new.text);
        END
        """,
    ),
    (
        "0002_documents_fts",
        # Whole documents for keyword ranking of files (BM25 over a title and a
        # body field): one passage rarely holds all of a question's words.
        """
        CREATE VIRTUAL TABLE documents_fts USING fts5(
            title, body, tokenize='porter unicode61'
        );
        CREATE TRIGGER files_ad AFTER DELETE ON files BEGIN
            DELETE FROM documents_fts WHERE rowid = old.id;
        END
        """,
    ),
)
# A match in a document's title counts this many times one in its body.
TITLE_WEIGHT = 3.0

# File states. `skipped`: this content cannot be indexed (binary, empty, too
# large, damaged); `failed`: something that may pass (permissions, a file
# being written) — retried by every reconcile; `ignored`: an unknown type that
# turned out to be binary, not worth a line in `index status --errors`.
INDEXED, PENDING, INDEXING, SKIPPED, FAILED, IGNORED = (
    "indexed", "pending", "indexing", "skipped", "failed", "ignored")


class KnowledgeIndexError(HearthError):
    """Something about the index of the user's folders, in one sentence."""

    reason = "index"


class IndexBusyError(KnowledgeIndexError):
    reason = "index_busy"


@dataclass(frozen=True)
class Folder:
    id: int
    path: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    local_only: bool
    paused: bool
    state: str
    error: str | None
    added_at: float
    scanned_at: float | None

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> Folder:
        return cls(r["id"], r["path"], tuple(json.loads(r["include_json"])),
                   tuple(json.loads(r["exclude_json"])), bool(r["local_only"]),
                   bool(r["paused"]), r["state"], r["error"], r["added_at"], r["scanned_at"])


@dataclass(frozen=True)
class FileRecord:
    id: int
    folder_id: int
    path: str
    kind: str | None
    size: int | None
    mtime_ns: int | None
    hash: str | None
    status: str
    error: str | None
    chunk_count: int
    indexed_at: float | None


@dataclass(frozen=True)
class ChunkRow:
    id: str
    ord: int
    hash: str
    text: str
    start_line: int | None
    end_line: int | None
    page: int | None
    tokens: int


@dataclass(frozen=True)
class ChunkHit:
    """A chunk with its file and folder, as retrieval returns it."""

    id: str
    path: str
    folder_id: int
    text: str
    start_line: int | None
    end_line: int | None
    page: int | None
    local_only: bool


class Manifest(SQLiteFile):
    """manifest.sqlite3: thread-safe; several processes may open it (WAL)."""

    NOT_A = "index manifest"
    NAME = "index manifest"
    FOLDER = "index folder"
    BUSY_TIMEOUT_MS = 10000
    SYNCHRONOUS = "NORMAL"
    MIGRATIONS = MIGRATIONS

    def __init__(self, path: Path) -> None:
        self._df_cache: dict[str, int] = {}
        self._df_total = 0
        self._df_time = -1e9
        super().__init__(path)

    def data_version(self) -> int:
        """Changes whenever another connection (another process) has written."""
        return int(self.query("PRAGMA data_version")[0][0])

    # -- meta ------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- folders -----------------------------------------------------------------

    def folders(self) -> list[Folder]:
        return [Folder.from_row(r) for r in self.query("SELECT * FROM folders ORDER BY path")]

    def folder(self, path: str) -> Folder | None:
        rows = self.query("SELECT * FROM folders WHERE path = ?", (path,))
        return Folder.from_row(rows[0]) if rows else None

    def upsert_folder(self, path: str, include: Sequence[str], exclude: Sequence[str],
                      local_only: bool) -> Folder:
        with self.tx() as db:
            db.execute(
                "INSERT INTO folders (path, include_json, exclude_json, local_only, added_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
                "include_json = excluded.include_json, exclude_json = excluded.exclude_json, "
                "local_only = excluded.local_only",
                (path, json.dumps(list(include)), json.dumps(list(exclude)), int(local_only),
                 time.time()),
            )
        folder = self.folder(path)
        assert folder is not None
        return folder

    def set_folder_state(self, folder_id: int, state: str, error: str | None = None,
                         scanned: bool = False) -> None:
        with self.tx() as db:
            db.execute("UPDATE folders SET state = ?, error = ? WHERE id = ?",
                       (state, error, folder_id))
            if scanned:
                db.execute("UPDATE folders SET scanned_at = ? WHERE id = ?",
                           (time.time(), folder_id))

    def set_paused(self, folder_id: int, paused: bool) -> None:
        with self.tx() as db:
            db.execute("UPDATE folders SET paused = ? WHERE id = ?", (int(paused), folder_id))

    def mark_for_rereading(self, folder_id: int) -> int:
        """Make the next reconcile read every file of the folder again (failed
        and skipped ones included); unchanged passages keep their vectors."""
        with self.tx() as db:
            cur = db.execute("UPDATE files SET status = ? WHERE folder_id = ? AND status IN "
                             "(?, ?, ?)", (PENDING, folder_id, INDEXED, SKIPPED, FAILED))
            return int(cur.rowcount)

    def mark_all_for_rereading(self) -> int:
        """Queue every indexed file of every folder for the next reconcile
        (passages are cut differently now); their passages stay until then."""
        with self.tx() as db:
            cur = db.execute("UPDATE files SET status = ? WHERE status = ?", (PENDING, INDEXED))
            return int(cur.rowcount)

    def delete_folder(self, folder_id: int) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM chunks WHERE file_id IN "
                       "(SELECT id FROM files WHERE folder_id = ?)", (folder_id,))
            db.execute("DELETE FROM files WHERE folder_id = ?", (folder_id,))
            db.execute("DELETE FROM folders WHERE id = ?", (folder_id,))

    # -- files -------------------------------------------------------------------

    def files(self, folder_id: int | None = None, statuses: Iterable[str] = ()) -> list[
            FileRecord]:
        sql, params = "SELECT * FROM files WHERE 1=1", list[Any]()
        if folder_id is not None:
            sql += " AND folder_id = ?"
            params.append(folder_id)
        st = list(statuses)
        if st:
            sql += f" AND status IN ({','.join('?' * len(st))})"
            params += st
        return [FileRecord(**dict(r)) for r in self.query(sql + " ORDER BY path", params)]

    def file(self, path: str) -> FileRecord | None:
        rows = self.query("SELECT * FROM files WHERE path = ?", (path,))
        return FileRecord(**dict(rows[0])) if rows else None

    def file_map(self, folder_id: int) -> dict[str, FileRecord]:
        return {f.path: f for f in self.files(folder_id)}

    def chunk_rows(self, file_id: int) -> list[ChunkRow]:
        rows = self.query("SELECT id, ord, hash, text, start_line, end_line, page, tokens "
                          "FROM chunks WHERE file_id = ? ORDER BY ord", (file_id,))
        return [ChunkRow(**dict(r)) for r in rows]

    def chunk_ids_of_file(self, file_id: int) -> list[str]:
        return [r[0] for r in self.query("SELECT id FROM chunks WHERE file_id = ?", (file_id,))]

    def chunk_ids_of_folder(self, folder_id: int) -> list[str]:
        return [r[0] for r in self.query(
            "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.folder_id = ?",
            (folder_id,))]

    def all_chunk_ids(self) -> set[str]:
        return {r[0] for r in self.query("SELECT id FROM chunks")}

    def ids_with_hashes(self, hashes: Iterable[str]) -> dict[str, str]:
        """Some existing chunk id for each content hash already indexed."""
        out: dict[str, str] = {}
        hs = list(set(hashes))
        for i in range(0, len(hs), 500):
            part = hs[i:i + 500]
            for r in self.query(
                f"SELECT hash, id FROM chunks WHERE hash IN ({','.join('?' * len(part))})",
                part,
            ):
                out.setdefault(r[0], r[1])
        return out

    def record_file(self, db: sqlite3.Connection, folder_id: int, path: str, **fields: Any
                    ) -> int:
        """Insert or update a file row inside a transaction; returns its id."""
        row = db.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        if row is None:
            fields.setdefault("status", PENDING)
            cols = ["folder_id", "path", *fields]
            cur = db.execute(
                f"INSERT INTO files ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                (folder_id, path, *fields.values()),
            )
            return int(cur.lastrowid or 0)
        if fields:
            db.execute(
                f"UPDATE files SET {', '.join(f'{k} = ?' for k in fields)}, folder_id = ? "
                "WHERE id = ?", (*fields.values(), folder_id, row[0]))
        return int(row[0])

    def replace_chunks(self, db: sqlite3.Connection, file_id: int, ids: Sequence[str],
                       chunks: Sequence[Any]) -> None:
        """The chunks of one file, replaced inside a transaction (FTS follows)."""
        old = {r[0]: (r[1], r[2], r[3], r[4]) for r in db.execute(
            "SELECT id, ord, start_line, end_line, page FROM chunks WHERE file_id = ?",
            (file_id,))}
        keep = set(ids)
        gone = [i for i in old if i not in keep]
        for k in range(0, len(gone), 500):
            part = gone[k:k + 500]
            db.execute(f"DELETE FROM chunks WHERE id IN ({','.join('?' * len(part))})", part)
        for ordinal, (cid, ch) in enumerate(zip(ids, chunks, strict=True)):
            if cid in old:
                if old[cid] != (ordinal, ch.start_line, ch.end_line, ch.page):
                    db.execute("UPDATE chunks SET ord = ?, start_line = ?, end_line = ?, "
                               "page = ? WHERE id = ?",
                               (ordinal, ch.start_line, ch.end_line, ch.page, cid))
                continue
            db.execute(
                "INSERT INTO chunks (id, file_id, ord, hash, text, start_line, end_line, page, "
                "tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (cid, file_id, ordinal, ch.hash, ch.text, ch.start_line, ch.end_line, ch.page,
                 ch.tokens),
            )

    def set_document(self, db: sqlite3.Connection, file_id: int, title: str | None,
                     body: str | None) -> None:
        """A file's whole text for document-level keyword search (None: none)."""
        db.execute("DELETE FROM documents_fts WHERE rowid = ?", (file_id,))
        if body is not None:
            db.execute("INSERT INTO documents_fts (rowid, title, body) VALUES (?, ?, ?)",
                       (file_id, title or "", body))

    def delete_files(self, db: sqlite3.Connection, file_ids: Sequence[int]) -> None:
        for k in range(0, len(file_ids), 500):
            part = list(file_ids[k:k + 500])
            marks = ",".join("?" * len(part))
            db.execute(f"DELETE FROM chunks WHERE file_id IN ({marks})", part)
            db.execute(f"DELETE FROM files WHERE id IN ({marks})", part)

    # -- reading -----------------------------------------------------------------

    def hits(self, ids: Sequence[str]) -> dict[str, ChunkHit]:
        out: dict[str, ChunkHit] = {}
        for k in range(0, len(ids), 500):
            part = list(ids[k:k + 500])
            rows = self.query(
                "SELECT c.id, f.path, f.folder_id, c.text, c.start_line, c.end_line, c.page, "
                "d.local_only FROM chunks c JOIN files f ON f.id = c.file_id "
                "JOIN folders d ON d.id = f.folder_id "
                f"WHERE c.id IN ({','.join('?' * len(part))})", part)
            for r in rows:
                out[r[0]] = ChunkHit(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]))
        return out

    def keyword_search(self, fts_query: str, limit: int, folder_ids: Sequence[int] | None = None,
                       kinds: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(chunk id, bm25 score: lower is better) for an FTS5 query."""
        return self._ranked(
            "chunks_fts", "rank", "SELECT c.id, {score} FROM {source} "
            "JOIN chunks c ON c.rowid = {rowid}", "JOIN files f ON f.id = c.file_id",
            fts_query, limit, folder_ids, kinds)

    def document_search(self, fts_query: str, limit: int,
                        folder_ids: Sequence[int] | None = None,
                        kinds: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(file path, bm25 score: lower is better) of whole documents, a match
        in the title counting TITLE_WEIGHT times."""
        return self._ranked(
            "documents_fts", f"bm25(documents_fts, {TITLE_WEIGHT}, 1.0)",
            "SELECT f.path, {score} FROM {source} JOIN files f ON f.id = {rowid}", "",
            fts_query, limit, folder_ids, kinds)

    def _ranked(self, table: str, rank: str, select: str, join_files: str, fts_query: str,
                limit: int, folder_ids: Sequence[int] | None, kinds: Sequence[str] | None
                ) -> list[tuple[str, float]]:
        """The best rows of an FTS5 table for a query, as (key, score). Without
        filters, FTS5 ranks and limits first and only the best rows are looked
        up; with filters, the rows are joined to their files first."""
        params: list[Any] = [fts_query]
        if folder_ids is None and kinds is None:
            sql = select.format(
                score="m.score",
                source=f"(SELECT rowid, {rank} AS score FROM {table} WHERE {table} MATCH ? "
                       "ORDER BY score LIMIT ?) m", rowid="m.rowid") + " ORDER BY m.score"
        else:
            where = [f"{table} MATCH ?"]
            if folder_ids is not None:
                where.append(f"f.folder_id IN ({','.join('?' * len(folder_ids))})")
                params += list(folder_ids)
            if kinds is not None:
                where.append(f"f.kind IN ({','.join('?' * len(kinds))})")
                params += list(kinds)
            sql = (select.format(score=f"{rank} AS score", source=table, rowid=f"{table}.rowid")
                   + f" {join_files} WHERE " + " AND ".join(where) + " ORDER BY score LIMIT ?")
        params.append(limit)
        try:
            return [(r[0], r[1]) for r in self.query(sql, params)]
        except sqlite3.OperationalError:
            return []  # a query FTS5 cannot parse finds nothing by keyword

    def chunk_ids_of_paths(self, paths: Sequence[str]) -> dict[str, list[str]]:
        """The chunk ids of each of these files, in their order in the file."""
        out: dict[str, list[str]] = {}
        for k in range(0, len(paths), 500):
            part = list(paths[k:k + 500])
            for r in self.query(
                    "SELECT f.path, c.id FROM chunks c JOIN files f ON f.id = c.file_id "
                    f"WHERE f.path IN ({','.join('?' * len(part))}) ORDER BY c.ord", part):
                out.setdefault(r[0], []).append(r[1])
        return out

    def doc_freqs(self, words: Sequence[str]) -> tuple[int, dict[str, int]]:
        """How many chunks there are and how many hold each word (as FTS5
        matches it). Cached for a while: they change slowly, and an estimate
        is all the keyword search needs."""
        now = time.monotonic()
        with self._lock:
            if now - self._df_time > 30:
                self._df_cache.clear()
                self._df_total = self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
                self._df_time = now
            out = {}
            for w in words:
                n = self._df_cache.get(w)
                if n is None:
                    try:
                        n = self._db.execute(
                            "SELECT COUNT(*) FROM chunks_fts WHERE chunks_fts MATCH ?",
                            ('"' + w.replace('"', '""') + '"',)).fetchone()[0]
                    except sqlite3.OperationalError:
                        n = 0
                    self._df_cache[w] = n
                out[w] = n
            return int(self._df_total), out

    def counts(self) -> dict[str, int]:
        out = {r[0]: r[1] for r in self.query("SELECT status, COUNT(*) FROM files GROUP BY status")}
        out["chunks"] = self.query("SELECT COUNT(*) FROM chunks")[0][0]
        return out


@dataclass(frozen=True)
class Disagreement:
    """Where the manifest and Chroma differ: vectors the manifest does not
    list (a writer died between the two writes) and listed passages without
    a vector."""

    stray: frozenset[str]
    missing: frozenset[str]

    @property
    def passages(self) -> int:
        return len(self.stray) + len(self.missing)


def compare(manifest: Manifest, vectors: VectorStore | None) -> Disagreement:
    """Compare the passages the manifest lists with the vectors Chroma holds
    (reads only)."""
    listed = manifest.all_chunk_ids()
    stored = vectors.all_ids() if vectors is not None else set()
    return Disagreement(frozenset(stored - listed), frozenset(listed - stored))


class VectorCache(SQLiteFile):
    """A local copy of a collection's vectors by chunk id (SQLite, beside the
    manifest), so a search reads the vectors of the passages it found by
    keyword without a round trip through Chroma. Only a copy: an id it lacks
    is asked of Chroma, and it can be filled again from Chroma at any time. A
    chunk id comes from the chunk's content, so the vector under an id never
    changes, and an id left over after a crash is harmless."""

    NOT_A = "vector cache"
    NAME = "vector cache"
    FOLDER = "index folder"
    BUSY_TIMEOUT_MS = 10000
    SYNCHRONOUS = "NORMAL"

    def _migrate(self) -> None:
        # Rows with their own rowid (not WITHOUT ROWID): a 1.5 kB vector beside
        # its id in the key's b-tree would spread the ids over many pages.
        # Read through mmap: a search looks up a few hundred scattered rows.
        self._db.execute(f"PRAGMA mmap_size={1 << 30}")
        with self.tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (id TEXT PRIMARY KEY, "
                       "vector BLOB NOT NULL)")

    def put(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        rows = np.ascontiguousarray(vectors, dtype=np.float32)
        with self.tx() as db:
            db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                           ((i, rows[k].tobytes()) for k, i in enumerate(ids)))

    def get(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for k in range(0, len(ids), 500):
            part = list(ids[k:k + 500])
            rows = self.query(
                f"SELECT id, vector FROM vectors WHERE id IN ({','.join('?' * len(part))})", part)
            for r in rows:
                out[r[0]] = np.frombuffer(r[1], dtype=np.float32)
        return out

    def delete(self, ids: Sequence[str]) -> None:
        with self.tx() as db:
            for k in range(0, len(ids), 500):
                part = list(ids[k:k + 500])
                db.execute(f"DELETE FROM vectors WHERE id IN ({','.join('?' * len(part))})",
                           part)

    def ids(self) -> set[str]:
        return {r[0] for r in self.query("SELECT id FROM vectors")}

    def count(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM vectors")[0][0])


def vector_cache_path(directory: Path, collection_name: str) -> Path:
    return directory / f"{collection_name}.vectors.sqlite3"


class VectorStore:
    """One Chroma collection of chunk vectors; embeddings are always given by
    Hearth (the collection has no embedding function, so Chroma never tries to
    download one). With a `cache`, every vector written is also kept there,
    and vectors are read from it first."""

    def __init__(self, client: Any, collection_name: str, create: bool = True,
                 cache: VectorCache | None = None) -> None:
        self.client = client
        self.name = collection_name
        self.cache = cache
        if create:
            self.collection = client.get_or_create_collection(
                collection_name, embedding_function=None,
                # Denser graph and wider search than Chroma's defaults (M 16, ef
                # 100/100): better recall when many chunks are near-duplicates
                # (logs, boilerplate), for a few ms per query at 50k chunks.
                metadata={"hnsw:space": "cosine", "hnsw:M": 32, "hnsw:construction_ef": 200,
                          "hnsw:search_ef": 200, "created_by": "hearth"},
            )
        else:
            self.collection = client.get_collection(collection_name, embedding_function=None)
        try:
            self.max_batch = int(client.get_max_batch_size())
        except Exception:  # noqa: BLE001  an older or remote Chroma may not say; 1000 is safe
            self.max_batch = 1000

    @staticmethod
    def open_client(paths: Paths, mode: str = "embedded", url: str = "") -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False)
        try:
            if mode == "server":
                u = urlparse(url if "://" in url else f"http://{url}")
                return chromadb.HttpClient(
                    host=u.hostname or "localhost", port=u.port or 8000,
                    ssl=u.scheme == "https", settings=settings)
            where = knowledge_dir(paths) / "chroma"
            where.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(where), settings=settings)
        except HearthError:
            raise
        except Exception as exc:
            target = url if mode == "server" else "the index in the data folder"
            raise KnowledgeIndexError(
                f"Hearth cannot open the vector index ({target}): {exc}.") from exc

    def count(self) -> int:
        return int(self.collection.count())

    def all_ids(self) -> set[str]:
        out: set[str] = set()
        offset, page = 0, 20000
        while True:
            got = self.collection.get(include=[], limit=page, offset=offset)["ids"]
            out.update(got)
            if len(got) < page:
                return out
            offset += page

    def add(self, ids: Sequence[str], vectors: np.ndarray, documents: Sequence[str],
            metadatas: Sequence[dict[str, Any]]) -> None:
        """Add chunks; an id already present is left as it is (ids come from the
        content, so its vector is the same). `add`, not `upsert`: in chromadb
        1.5 a query in the writing process can miss records written by upsert
        until the index is reopened."""
        for k in range(0, len(ids), self.max_batch):
            self.collection.add(
                ids=list(ids[k:k + self.max_batch]), embeddings=vectors[k:k + self.max_batch],
                documents=list(documents[k:k + self.max_batch]),
                metadatas=list(metadatas[k:k + self.max_batch]))
        if self.cache is not None:
            # After Chroma: a crash in between leaves the copy short (read from
            # Chroma instead), never holding a vector Chroma lacks for long.
            self.cache.put(ids, vectors)

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        for k in range(0, len(ids), self.max_batch):
            self.collection.update(ids=list(ids[k:k + self.max_batch]),
                                   metadatas=list(metadatas[k:k + self.max_batch]))

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if self.cache is not None and ids:
            self.cache.delete(ids)
        for k in range(0, len(ids), self.max_batch):
            self.collection.delete(ids=ids[k:k + self.max_batch])

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        out = self.cache.get(ids) if self.cache is not None else {}
        rest = [i for i in ids if i not in out] if out else list(ids)
        for k in range(0, len(rest), self.max_batch):
            got = self.collection.get(ids=list(rest[k:k + self.max_batch]),
                                      include=["embeddings"])
            for i, v in zip(got["ids"], got["embeddings"], strict=True):
                out[i] = np.asarray(v, dtype=np.float32)
        return out

    def fill_cache(self) -> int:
        """Make the local copy hold exactly Chroma's vectors (after a crash, or
        for an index made before there was a copy). Returns how many vectors
        were copied."""
        if self.cache is None:
            return 0
        have = self.cache.ids()
        stored = self.all_ids()
        self.cache.delete(list(have - stored))
        missing = sorted(stored - have)
        for k in range(0, len(missing), self.max_batch):
            got = self.collection.get(ids=missing[k:k + self.max_batch], include=["embeddings"])
            if len(got["ids"]):
                self.cache.put(got["ids"], np.asarray(got["embeddings"], dtype=np.float32))
        return len(missing)

    def cache_complete(self) -> bool:
        """Whether the local copy holds as many vectors as Chroma (a cheap check)."""
        return self.cache is None or self.cache.count() == self.count()

    def query(self, vector: np.ndarray, n: int, where: dict[str, Any] | None = None,
              embeddings: bool = True) -> tuple[list[str], list[float], np.ndarray | None]:
        """Nearest chunk ids, their cosine distances and (when asked) their vectors."""
        # n_results past the collection's size returns what there is.
        res = self.collection.query(
            query_embeddings=vector.reshape(1, -1), n_results=n, where=where,
            include=["distances", "embeddings"] if embeddings else ["distances"])
        ids = res["ids"][0]
        dists = [float(d) for d in res["distances"][0]]
        if not embeddings:
            return ids, dists, None
        embs = res.get("embeddings")
        vecs = (np.asarray(embs[0], dtype=np.float32) if embs is not None and len(ids)
                else np.zeros((0, vector.shape[-1]), dtype=np.float32))
        return ids, dists, vecs
