"""Incremental indexing: new and changed files are chunked and only their new
chunks embedded; stale chunks and deleted files leave the index; a renamed
file reuses its vectors. Work is committed in batches of at most a few
seconds, so that a crash (even kill -9) leaves little to redo, which the next
start does. While an answer is being generated, indexing pauses.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.core.foreground import Yielder
from app.core.knowledge import progress as ev
from app.core.knowledge.chunker import Chunk, chunk_document, document_title
from app.core.knowledge.embedder import Embedder
from app.core.knowledge.loaders import LoadError, NotTextError, kind_of, load
from app.core.knowledge.scan import Entry, FolderRules, Problem
from app.core.knowledge.store import (
    FAILED,
    IGNORED,
    INDEXED,
    INDEXING,
    PENDING,
    SKIPPED,
    FileRecord,
    Folder,
    Manifest,
    VectorStore,
    compare,
)

log = logging.getLogger(__name__)

# Files prepared before their new chunks are embedded and written together:
# bigger batches embed faster; a crash redoes at most one batch.
BATCH_CHUNKS = 256
BATCH_FILES = 200
# A batch is also committed once it holds about this many seconds of work,
# so that a writer killed early on a slow or busy machine has kept something.
COMMIT_EVERY_S = 2.0
# The first batch, before the embedding speed of this run is known.
FIRST_BATCH_CHUNKS = 16
# Texts given to the embedder at once; the indexer checks between them (and
# the embedder between its model runs) whether an answer wants the CPU.
EMBED_STEP = 128


def chunk_ids(path: str, chunks: Sequence[Chunk]) -> list[str]:
    """Stable ids: the file's path and the chunk's text (and which repeat of
    that text in the file), so an unchanged chunk keeps its id and vector."""
    seen: dict[str, int] = {}
    out = []
    for c in chunks:
        h = c.hash
        n = seen.get(h, 0)
        seen[h] = n + 1
        key = f"{path}\0{h}\0{n}".encode("utf-8", "surrogateescape")
        out.append(hashlib.sha256(key).hexdigest()[:32])
    return out


def safe_text(path: str) -> str:
    """A path as text SQLite and Chroma accept (names that are not valid UTF-8)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass
class _Prepared:
    folder: Folder
    path: str
    kind: str
    size: int
    mtime_ns: int
    hash: str
    chunks: list[Chunk]
    ids: list[str]
    record: FileRecord | None
    title: str = ""
    body: str = ""
    old_ids: set[str] = field(default_factory=set)


class Indexer:
    """The writing side. Use one per process, while holding the writer lock."""

    def __init__(self, manifest: Manifest, vectors: VectorStore, embedder: Embedder,
                 max_file_bytes: int, yielder: Yielder | None = None,
                 commit_every_s: float = COMMIT_EVERY_S) -> None:
        self.manifest = manifest
        self.vectors = vectors
        self.embedder = embedder
        self.max_file_bytes = max_file_bytes
        self.yielder = yielder
        self.commit_every_s = commit_every_s
        self.cancel = threading.Event()
        self._lock = threading.RLock()  # one batch at a time (watcher and reconcile)
        self._rate: float | None = None  # passages embedded per second (pauses excluded)

    def _yield(self) -> float:
        """Step aside while an answer is being generated; seconds paused."""
        if self.yielder is None:
            return 0.0
        return self.yielder.wait_for_turn(self.cancel)

    def _batch_chunks(self, seconds: float) -> int:
        """How many new passages can be embedded in `seconds` (at most
        BATCH_CHUNKS: bigger batches gain little)."""
        if seconds <= 0:
            return 0
        if self._rate is None:
            return FIRST_BATCH_CHUNKS
        return max(8, min(BATCH_CHUNKS, int(self._rate * seconds)))

    # -- consistency ---------------------------------------------------------------

    def repair(self) -> tuple[int, int]:
        """Make the manifest and Chroma agree (after a crash): vectors nobody
        lists are deleted, files whose vectors are missing are queued again.
        Returns (vectors deleted, files queued)."""
        with self._lock:
            with self.manifest.tx() as db:
                db.execute("UPDATE files SET status = ?, hash = NULL WHERE status = ?",
                           (PENDING, INDEXING))
            found = compare(self.manifest, self.vectors)
            extra, missing = found.stray, found.missing
            self.vectors.delete(extra)
            queued = 0
            if missing:
                ids = list(missing)
                with self.manifest.tx() as db:
                    for k in range(0, len(ids), 500):
                        part = ids[k:k + 500]
                        cur = db.execute(
                            "UPDATE files SET status = ?, hash = NULL WHERE id IN (SELECT "
                            f"file_id FROM chunks WHERE id IN ({','.join('?' * len(part))}))",
                            [PENDING, *part])
                        queued += cur.rowcount
            if extra or missing:
                log.warning("index repaired: %d stray vectors deleted, %d files queued",
                            len(extra), queued)
            return len(extra), queued

    # -- whole folders -------------------------------------------------------------

    def reconcile(self, folders: Iterable[Folder], progress: ev.Progress = ev.ignore
                  ) -> ev.Stats:
        """Bring the index in line with the disk for these folders."""
        total = ev.Stats()
        started = time.perf_counter()
        for folder in folders:
            if self.cancel.is_set():
                break
            if folder.paused:
                continue
            total.add(self._reconcile_folder(folder, progress))
        total.seconds = time.perf_counter() - started
        progress(ev.RunDone(total))
        return total

    def _reconcile_folder(self, folder: Folder, progress: ev.Progress) -> ev.Stats:
        stats = ev.Stats()
        progress(ev.Scanning(folder.path))
        known = self.manifest.file_map(folder.id)
        problem = self._unavailable(folder, known)
        if problem:
            self.manifest.set_folder_state(folder.id, "missing", problem)
            progress(ev.FolderUnavailable(folder.path, problem))
            stats.problems.append((folder.path, problem))
            return stats
        rules = FolderRules(folder)
        todo: list[Entry] = []
        seen: set[str] = set()
        problems: list[Problem] = []
        for item in rules.walk():
            if isinstance(item, Problem):
                problems.append(item)
                seen.add(safe_text(item.path))
                continue
            path = safe_text(item.path)
            seen.add(path)
            stats.files_seen += 1
            rec = known.get(path)
            if (rec is not None and rec.size == item.size and rec.mtime_ns == item.mtime_ns
                    and rec.status in (INDEXED, SKIPPED, IGNORED)):
                stats.unchanged += 1
                continue
            todo.append(item)
        progress(ev.Scanned(folder.path, stats.files_seen, len(todo)))
        if problems:
            with self.manifest.tx() as db:
                for p in problems:
                    self.manifest.record_file(db, folder.id, safe_text(p.path), status=FAILED,
                                              error=p.reason, kind="folder")
            for p in problems:
                stats.failed += 1
                stats.problems.append((p.path, p.reason))
                progress(ev.FileFailed(p.path, FAILED, p.reason))
        # New and changed files first, deletions after: a renamed file then
        # still finds its old vectors to reuse.
        stats.add(self.index_paths([(folder, e.path) for e in todo], progress))
        gone = [rec for path, rec in known.items() if path not in seen]
        if gone:
            stats.add(self.remove_records(gone, progress))
        self.manifest.set_folder_state(folder.id, "ok", None, scanned=True)
        return stats

    @staticmethod
    def _unavailable(folder: Folder, known: dict[str, FileRecord]) -> str | None:
        try:
            if not os.path.isdir(folder.path):
                return "the folder is not there (an unmounted drive?); its index is kept"
            if known and not _has_entries(folder.path):
                # An empty mount point where a drive used to be: keep the index.
                return "the folder is empty but held files before (an unmounted drive?); " \
                       "its index is kept"
        except OSError as exc:
            return f"the folder cannot be read ({exc.strerror or exc}); its index is kept"
        return None

    def remove_folder(self, folder: Folder) -> int:
        with self._lock:
            ids = self.manifest.chunk_ids_of_folder(folder.id)
            self.vectors.delete(ids)
            self.manifest.delete_folder(folder.id)
            return len(ids)

    # -- single files ----------------------------------------------------------------

    def remove_paths(self, paths: Iterable[str], progress: ev.Progress = ev.ignore
                     ) -> ev.Stats:
        """Forget these files (and, for a folder path, every file under it)."""
        records: list[FileRecord] = []
        for p in paths:
            p = safe_text(p)
            rec = self.manifest.file(p)
            if rec is not None:
                records.append(rec)
            # Everything under it, if it was a folder ('0' sorts right after '/',
            # so this is a range scan of the path index).
            base = p.rstrip(os.sep)
            records += [FileRecord(**dict(r)) for r in self.manifest.query(
                "SELECT * FROM files WHERE path > ? AND path < ?", (base + "/", base + "0"))]
        return self.remove_records(records, progress)

    def remove_records(self, records: Sequence[FileRecord], progress: ev.Progress = ev.ignore
                       ) -> ev.Stats:
        stats = ev.Stats()
        if not records:
            return stats
        with self._lock:
            ids: list[str] = []
            for rec in records:
                ids += self.manifest.chunk_ids_of_file(rec.id)
            # Vectors first: a crash in between leaves manifest rows whose
            # vectors are gone, which repair() queues again; never the reverse.
            self.vectors.delete(ids)
            with self.manifest.tx() as db:
                self.manifest.delete_files(db, [r.id for r in records])
        for rec in records:
            progress(ev.FileRemoved(rec.path))
        stats.removed = len(records)
        stats.chunks_removed = len(ids)
        return stats

    def index_paths(self, items: Sequence[tuple[Folder, str]], progress: ev.Progress = ev.ignore
                    ) -> ev.Stats:
        """Index these files (each belongs to the folder given with it)."""
        stats = ev.Stats()
        # The same path twice (a folder event and a file event) is read once.
        items = list({safe_text(p): (f, p) for f, p in items}.values())
        batch: list[_Prepared] = []
        pending_chunks = 0
        embed_total = [0, 0]  # done, total: for progress across batches
        batch_started = time.monotonic()
        for folder, raw_path in items:
            if self.cancel.is_set():
                break
            # Reading and cutting files costs CPU too (the tokenizer uses every core).
            batch_started += self._yield()
            if self.cancel.is_set():
                break
            path = safe_text(raw_path)
            progress(ev.FileStarted(path))
            try:
                prepared = self._prepare(folder, raw_path, path, stats, progress)
            except Exception as exc:  # one bad file never stops the rest
                log.exception("indexing %s failed", path)
                self._record_problem(folder, path, FAILED, f"unexpected error: {exc}",
                                     stats, progress)
                continue
            if prepared is None:
                continue
            if not batch:
                batch_started = time.monotonic()
            batch.append(prepared)
            pending_chunks += len(prepared.chunks)
            # What reading the files took leaves less time for embedding.
            left = self.commit_every_s - (time.monotonic() - batch_started)
            if pending_chunks >= self._batch_chunks(left) or len(batch) >= BATCH_FILES:
                self._commit(batch, stats, progress, embed_total)
                batch, pending_chunks = [], 0
        if batch:
            self._commit(batch, stats, progress, embed_total)
        return stats

    def _prepare(self, folder: Folder, raw_path: str, path: str, stats: ev.Stats,
                 progress: ev.Progress) -> _Prepared | None:
        rec = self.manifest.file(path)
        kind = kind_of(raw_path)
        if kind is None:
            return None
        if path != raw_path:
            self._record_problem(folder, path, SKIPPED,
                                 "the file name is not valid UTF-8", stats, progress)
            return None
        try:
            st = os.stat(raw_path)
            if st.st_size > self.max_file_bytes:
                mb = self.max_file_bytes / 1024 / 1024
                self._record_problem(
                    folder, path, SKIPPED,
                    f"the file is {st.st_size / 1024 / 1024:,.0f} MB, over the {mb:,.0f} MB "
                    "limit (knowledge.max_file_mb)", stats, progress,
                    size=st.st_size, mtime_ns=st.st_mtime_ns)
                return None
            if st.st_size == 0:
                self._record_problem(folder, path, SKIPPED, "the file is empty", stats, progress,
                                     size=0, mtime_ns=st.st_mtime_ns)
                return None
            with open(raw_path, "rb") as fh:
                data = fh.read(self.max_file_bytes + 1)
            after = os.stat(raw_path)
        except FileNotFoundError:
            # Deleted between the event (or scan) and the read: forget it.
            if rec is not None:
                stats.add(self.remove_records([rec], progress))
            return None
        except PermissionError:
            self._record_problem(folder, path, FAILED, "permission denied: the file cannot be "
                                 "read", stats, progress)
            return None
        except OSError as exc:
            reason = ("symlink loop: the link never reaches a file"
                      if exc.errno == 40 else f"the file cannot be read ({exc.strerror or exc})")
            self._record_problem(folder, path, FAILED, reason, stats, progress)
            return None
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns) or len(
                data) != after.st_size:
            self._record_problem(folder, path, FAILED, "the file changed while it was being "
                                 "read; it will be read again", stats, progress)
            return None
        digest = hashlib.sha256(data).hexdigest()
        if rec is not None and rec.hash == digest and rec.status in (INDEXED, SKIPPED, IGNORED):
            with self.manifest.tx() as db:  # touched, not changed
                self.manifest.record_file(db, folder.id, path, size=after.st_size,
                                          mtime_ns=after.st_mtime_ns)
            stats.unchanged += 1
            return None
        try:
            doc = load(path, data, kind)
            chunks = chunk_document(doc, self.embedder)
        except NotTextError as exc:
            status = IGNORED if kind == "unknown" else SKIPPED
            self._record_problem(folder, path, status, str(exc), stats, progress,
                                 size=after.st_size, mtime_ns=after.st_mtime_ns, hash=digest)
            return None
        except LoadError as exc:
            self._record_problem(folder, path, SKIPPED, str(exc), stats, progress,
                                 size=after.st_size, mtime_ns=after.st_mtime_ns, hash=digest)
            return None
        # A passage repeated within a file is indexed once (its first place):
        # identical vectors add nothing and crowd out other results.
        unique: dict[str, Chunk] = {}
        for c in chunks:
            unique.setdefault(c.hash, c)
        chunks = list(unique.values())
        if not chunks:
            self._record_problem(folder, path, SKIPPED, "the file has no text", stats, progress,
                                 size=after.st_size, mtime_ns=after.st_mtime_ns, hash=digest)
            return None
        return _Prepared(folder, path, doc.kind, after.st_size, after.st_mtime_ns, digest,
                         chunks, chunk_ids(path, chunks), rec, document_title(chunks),
                         "\n".join(seg.text for seg in doc.segments))

    def _record_problem(self, folder: Folder, path: str, status: str, reason: str,
                        stats: ev.Stats, progress: ev.Progress, **fields: Any) -> None:
        with self._lock:
            rec = self.manifest.file(path)
            old = self.manifest.chunk_ids_of_file(rec.id) if rec is not None else []
            self.vectors.delete(old)  # a file that became unreadable leaves the index
            with self.manifest.tx() as db:
                file_id = self.manifest.record_file(
                    db, folder.id, path, status=status, error=reason, chunk_count=0,
                    kind=kind_of(path), indexed_at=time.time(), **fields)
                self.manifest.replace_chunks(db, file_id, [], [])
                self.manifest.set_document(db, file_id, None, None)
        if status == IGNORED:
            return
        if status == SKIPPED:
            stats.skipped += 1
        else:
            stats.failed += 1
        stats.problems.append((path, reason))
        progress(ev.FileFailed(path, status, reason))

    # Complex on purpose: the steps of one write transaction, in order.
    def _commit(self, batch: list[_Prepared], stats: ev.Stats, progress: ev.Progress,  # noqa: C901
                embed_total: list[int]) -> None:
        with self._lock:
            for p in batch:
                if p.record is not None:
                    p.old_ids = set(self.manifest.chunk_ids_of_file(p.record.id))
            # Mark the batch first: if the process dies before the end, the next
            # start sees "indexing" and redoes these files.
            with self.manifest.tx() as db:
                for p in batch:
                    self.manifest.record_file(db, p.folder.id, p.path, status=INDEXING,
                                              kind=p.kind)
            new: list[tuple[_Prepared, int]] = []
            moved: list[tuple[str, dict[str, Any]]] = []
            for p in batch:
                old_rows = ({r.id: r for r in self.manifest.chunk_rows(p.record.id)}
                            if p.record is not None else {})
                for i, (cid, ch) in enumerate(zip(p.ids, p.chunks, strict=True)):
                    if cid not in p.old_ids:
                        new.append((p, i))
                    else:
                        r = old_rows[cid]
                        if (r.start_line, r.end_line, r.page) != (ch.start_line, ch.end_line,
                                                                  ch.page):
                            moved.append((cid, _meta(p, ch)))
            # Vectors for text already indexed elsewhere (a renamed or copied
            # file, a chunk repeated) are copied, not computed again.
            known = self.manifest.ids_with_hashes(p.chunks[i].hash for p, i in new)
            reuse = self.vectors.vectors(list(set(known.values()))) if known else {}
            vectors = np.zeros((len(new), self.embedder.dim), dtype=np.float32)
            to_embed: list[int] = []
            for row, (p, i) in enumerate(new):
                src = known.get(p.chunks[i].hash)
                if src is not None and src in reuse:
                    vectors[row] = reuse[src]
                else:
                    to_embed.append(row)
            embed_total[1] += len(to_embed)
            paused = [0.0]

            def between_runs() -> None:
                # Once cancelled, the wait ends at once and the batch is
                # finished (it is small), so the index closes cleanly.
                paused[0] += self._yield()

            started = time.perf_counter()
            for k in range(0, len(to_embed), EMBED_STEP):
                rows = to_embed[k:k + EMBED_STEP]
                # A passage the chunker made a little longer than the model
                # reads (a table whose joined rows tokenise longer than their
                # parts) is embedded from its head; its whole text is still
                # stored, shown and found by keyword. Refusing it would stop
                # the whole run over one file.
                texts = [new[r][0].chunks[new[r][1]].text for r in rows]
                vectors[rows] = self.embedder.embed(texts, between_runs, from_head=True)
                embed_total[0] += len(rows)
                progress(ev.Embedding(embed_total[0], embed_total[1]))
            busy = time.perf_counter() - started - paused[0]
            if to_embed and busy > 0:
                rate = len(to_embed) / busy
                # Smoothed: one batch of short passages should not triple the next.
                self._rate = rate if self._rate is None else 0.5 * self._rate + 0.5 * rate
            if new:
                between_runs()  # Chroma's insert is CPU work too
                self.vectors.add(
                    [p.ids[i] for p, i in new], vectors,
                    [p.chunks[i].text for p, i in new],
                    [_meta(p, p.chunks[i]) for p, i in new])
            if moved:
                self.vectors.update_metadata([m[0] for m in moved], [m[1] for m in moved])
            stale = [cid for p in batch for cid in p.old_ids - set(p.ids)]
            self.vectors.delete(stale)
            now = time.time()
            with self.manifest.tx() as db:
                for p in batch:
                    file_id = self.manifest.record_file(
                        db, p.folder.id, p.path, kind=p.kind, size=p.size, mtime_ns=p.mtime_ns,
                        hash=p.hash, status=INDEXED, error=None, chunk_count=len(p.chunks),
                        indexed_at=now)
                    self.manifest.replace_chunks(db, file_id, p.ids, p.chunks)
                    self.manifest.set_document(db, file_id, p.title, p.body)
        embedded_per_file: dict[str, int] = {}
        for row in to_embed:
            embedded_per_file[new[row][0].path] = embedded_per_file.get(new[row][0].path, 0) + 1
        for p in batch:
            stats.indexed += 1
            progress(ev.FileDone(p.path, len(p.chunks), embedded_per_file.get(p.path, 0)))
        stats.chunks_embedded += len(to_embed)
        stats.chunks_reused += len(new) - len(to_embed)
        stats.chunks_removed += len(stale)


def _has_entries(directory: str) -> bool:
    with os.scandir(directory) as it:
        return any(True for _ in it)


def _meta(p: _Prepared, ch: Chunk) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "path": p.path, "folder_id": p.folder.id, "kind": p.kind,
        "start_line": ch.start_line, "end_line": ch.end_line,
    }
    if ch.page is not None:
        meta["page"] = ch.page
    return meta
