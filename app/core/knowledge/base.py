"""The knowledge base of one process: opens the manifest, the vector store and
the embedder, holds the writer lock when it writes, and answers the questions
the CLI, the assistant and the window ask (folders, status, search)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from app.core.foreground import Yielder
from app.core.knowledge import progress as ev
from app.core.knowledge.chunker import CHUNKER_VERSION
from app.core.knowledge.embedder import MiniLMEmbedder
from app.core.knowledge.indexer import Indexer
from app.core.knowledge.location import has_folders as has_folders
from app.core.knowledge.retriever import Result, Retriever, search_pool
from app.core.knowledge.scan import normalise_folder
from app.core.knowledge.store import (
    FAILED,
    INDEXED,
    SKIPPED,
    Folder,
    IndexBusyError,
    KnowledgeIndexError,
    Manifest,
    VectorCache,
    VectorStore,
    compare,
    knowledge_dir,
    vector_cache_path,
)
from app.paths import Paths
from app.settings import Settings

log = logging.getLogger(__name__)

_embedders: dict[int, MiniLMEmbedder] = {}
_embedders_lock = threading.Lock()


def shared_embedder(threads: int = 0) -> MiniLMEmbedder:
    """One embedder (one ONNX session) per process and thread count."""
    with _embedders_lock:
        e = _embedders.get(threads)
        if e is None:
            e = _embedders[threads] = MiniLMEmbedder(threads=threads)
        return e


class Searcher(Protocol):
    """What the assistant needs of the index: a `KnowledgeBase`, or the
    window's index process, which searches on its behalf."""

    def search(self, question: str, k: int | None = None, *,
               folders: Sequence[str] | None = None, path_glob: str | None = None,
               mmr: bool | None = None, per_file: int = 1) -> list[Result]: ...


class KnowledgeBase:
    """Open with `writer=True` to change the index (takes the writer lock: one
    writing process at a time); readers never take it."""

    def __init__(self, paths: Paths, settings: Settings, *, writer: bool = False,
                 embedder: Any = None) -> None:
        self.paths = paths
        self.settings = settings
        # Threads for the keyword side of searches: made at the first search,
        # shut down by close().
        self._search_pool: ThreadPoolExecutor | None = None
        self._search_pool_lock = threading.Lock()
        self.dir = knowledge_dir(paths)
        self.writer = writer
        self._lock: Any = None
        self._client: Any = None  # Chroma's client, closed with this knowledge base
        self._cache: VectorCache | None = None  # the local copy of the vectors
        paths.ensure(paths.data_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if writer:
            self._take_lock()
        try:
            self.manifest = Manifest(self.dir / "manifest.sqlite3")
            self.embedder = embedder or shared_embedder(settings.snapshot().knowledge.embed_threads)
            self._open_vectors()
        except BaseException:
            if self._cache is not None:
                self._cache.close()
            self._close_client()
            self._release_lock()
            raise
        self._indexer: Indexer | None = None

    # -- opening and closing ---------------------------------------------------------

    def _take_lock(self) -> None:
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.dir / "writer.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise IndexBusyError(
                f"Another Hearth process{_pid_note(self.dir)} is updating the index; only one "
                "may write at a time. Stop it (or let it finish) and try again."
            ) from None
        self._lock = lock
        (self.dir / "writer.pid").write_text(str(os.getpid()))

    def _release_lock(self) -> None:
        if self._lock is not None:
            (self.dir / "writer.pid").unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    def _open_vectors(self) -> None:
        s = self.settings.snapshot().knowledge
        if self._client is None:
            self._client = VectorStore.open_client(self.paths, s.chroma_mode, s.chroma_url)
        client = self._client
        name = "hearth-" + self.embedder.id
        self.needs_repair = False
        if not self.writer:
            from chromadb.errors import NotFoundError

            try:
                self.vectors: VectorStore | None = VectorStore(client, name, create=False)
            except NotFoundError:
                self.vectors = None  # nothing indexed yet with this model
            else:
                self.vectors.cache = self._vector_cache(name)
            return
        previous = self.manifest.get_meta("embedder_id")
        if previous is not None and previous != self.embedder.id:
            # A different model gives different vectors: start a new collection
            # and embed everything again.
            log.warning("embedding model changed (%s -> %s): re-embedding", previous,
                        self.embedder.id)
            with contextlib.suppress(Exception):
                client.delete_collection("hearth-" + previous)
            old_cache = vector_cache_path(self.dir, "hearth-" + previous)
            for suffix in ("", "-wal", "-shm"):
                Path(str(old_cache) + suffix).unlink(missing_ok=True)
            with self.manifest.tx() as db:
                db.execute("DELETE FROM chunks")
                db.execute("UPDATE files SET status = 'pending', hash = NULL, chunk_count = 0")
        self.vectors = VectorStore(client, name, cache=self._vector_cache(name))
        self.manifest.set_meta("embedder_id", self.embedder.id)
        self.rechunking = self._upgrade_chunks()
        # "0" while a writer has the index open: finding it at start means the
        # last writer died mid-way, so the manifest and Chroma are compared.
        # A batch left "indexing" (an exception or Ctrl+C mid-way) needs the same.
        self.needs_repair = self.manifest.get_meta("writer_clean") == "0" or bool(
            self.manifest.query("SELECT 1 FROM files WHERE status = 'indexing' LIMIT 1"))
        self.manifest.set_meta("writer_clean", "0")

    def _vector_cache(self, collection_name: str) -> VectorCache:
        if self._cache is None:
            self._cache = VectorCache(vector_cache_path(self.dir, collection_name))
        return self._cache

    def _upgrade_chunks(self) -> int:
        """When passages are now cut differently, every indexed file is read
        again by the next reconcile; until then its old passages still answer,
        and passages that come out the same keep their vectors. Returns how
        many files were queued."""
        version = str(CHUNKER_VERSION)
        if self.manifest.get_meta("chunker_version") == version:
            return 0
        queued = self.manifest.mark_all_for_rereading()
        self.manifest.set_meta("chunker_version", version)
        if queued:
            log.info("passages are cut differently now (version %s): %d files will be read "
                     "again", version, queued)
        return queued

    def close(self) -> None:
        if self._indexer is not None:
            self._indexer.cancel.set()
        with self._search_pool_lock:
            pool, self._search_pool = self._search_pool, None
        if pool is not None:
            pool.shutdown(wait=True)  # a keyword search in flight ends first
        if self.writer and self._lock is not None:
            try:
                self.manifest.set_meta("writer_clean", "1")
            except Exception:
                log.exception("could not mark the index closed")
        self.manifest.close()
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        self._close_client()
        self._release_lock()

    def reopen(self, *, writer: bool) -> None:
        """Close, then open again as the writer or a reader: the fresh open
        loads what other processes wrote meanwhile. Left closed if the open
        fails (IndexBusyError when another process writes)."""
        self.close()
        self.writer = writer
        self._indexer = None
        if writer:
            self._take_lock()
        try:
            self.manifest = Manifest(self.dir / "manifest.sqlite3")
            self._open_vectors()
        except BaseException:
            self._close_client()
            self._release_lock()
            raise

    def _close_client(self) -> None:
        # An embedded Chroma keeps one state per folder and process while any
        # client of it is open. Closing the last one drops it, so the next
        # knowledge base of this process loads the index as it is on disk now —
        # with what another process wrote meanwhile, which Chroma would
        # otherwise neither see nor keep when writing. (A Chroma server keeps
        # the state itself; its client's close() would leave its HTTP session
        # open, so that one stays as it is.)
        client, self._client = self._client, None
        if client is not None and self.settings.snapshot().knowledge.chroma_mode == "embedded":
            try:
                client.close()
            except Exception:
                log.exception("could not close the vector index")

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------

    @property
    def indexer(self) -> Indexer:
        if not self.writer:
            raise KnowledgeIndexError("This knowledge base was opened for reading only.")
        if self._indexer is None:
            assert self.vectors is not None
            # Every writer (the CLI, the window's index process, the watcher)
            # pauses while any process of this data folder generates an answer.
            self._indexer = Indexer(self.manifest, self.vectors, self.embedder,
                                    self.settings.snapshot().knowledge.max_file_mb * 1024 * 1024,
                                    yielder=Yielder(self.paths))
        return self._indexer

    def add_folder(self, path: str | Path, include: Sequence[str] = (),
                   exclude: Sequence[str] = (), local_only: bool = False) -> Folder:
        """Record a folder to watch (indexing it is `reconcile`'s job)."""
        p = normalise_folder(path)
        if not os.path.isdir(p):
            raise KnowledgeIndexError(f"{p} is not a folder.")
        for f in self.manifest.folders():
            if f.path == p:
                continue
            if p.startswith(f.path.rstrip(os.sep) + os.sep):
                raise KnowledgeIndexError(f"{p} is inside {f.path}, which is already indexed; "
                                  "use --include/--exclude on that folder instead.")
            if f.path.startswith(p.rstrip(os.sep) + os.sep):
                raise KnowledgeIndexError(f"{p} contains {f.path}, which is already indexed; "
                                  f"remove it first (hearth index remove {f.path}).")
        return self.manifest.upsert_folder(p, include, exclude, local_only)

    def remove_folder(self, path: str | Path) -> int:
        folder = self.find_folder(path)
        return self.indexer.remove_folder(folder)

    def set_paused(self, path: str | Path, paused: bool) -> Folder:
        folder = self.find_folder(path)
        self.manifest.set_paused(folder.id, paused)
        return self.find_folder(path)

    def reindex_folder(self, path: str | Path, progress: ev.Progress = ev.ignore) -> ev.Stats:
        """Read every file of the folder again, e.g. after a loader learnt a
        format or a file that failed was fixed."""
        folder = self.find_folder(path)
        self.manifest.mark_for_rereading(folder.id)
        return self.reconcile([folder], progress)

    def reconcile(self, folders: Sequence[Folder] | None = None,
                  progress: ev.Progress = ev.ignore) -> ev.Stats:
        if self.needs_repair:
            self.indexer.repair()
            self.needs_repair = False
            assert self.vectors is not None
            self.vectors.fill_cache()
        elif self.vectors is not None and not self.vectors.cache_complete():
            # An index made before the local copy of its vectors existed.
            self.vectors.fill_cache()
        return self.indexer.reconcile(folders if folders is not None else self.folders(),
                                      progress)

    # -- reading -------------------------------------------------------------------

    def folders(self) -> list[Folder]:
        return self.manifest.folders()

    def find_folder(self, path: str | Path) -> Folder:
        p = normalise_folder(path)
        folder = self.manifest.folder(p)
        if folder is None:
            raise KnowledgeIndexError(
                f"{p} is not an indexed folder; `hearth index status` lists them.")
        return folder

    @property
    def retriever(self) -> Retriever:
        with self._search_pool_lock:
            if self._search_pool is None:
                self._search_pool = search_pool()
            pool = self._search_pool
        return Retriever(self.manifest, self.vectors, self.embedder, pool)

    def search(self, question: str, k: int | None = None, *,
               folders: Sequence[str] | None = None, kinds: Sequence[str] | None = None,
               path_glob: str | None = None, mmr: bool | None = None,
               per_file: int = 1) -> list[Result]:
        if self.vectors is None and not self.writer:
            # Nothing was indexed when this reader opened; a writer may have
            # created the collection since.
            self._open_vectors()
        folder_ids = None
        if folders is not None:
            folder_ids = [self.find_folder(f).id for f in folders]
        s = self.settings.snapshot().knowledge
        return self.retriever.search(
            question, k or s.top_k, folders=folder_ids, kinds=kinds,
            path_glob=path_glob, per_file=per_file, mmr=s.mmr if mmr is None else mmr)

    def status(self, errors: bool = False) -> dict[str, Any]:
        out_folders = []
        for f in self.folders():
            counts = {r[0]: r[1] for r in self.manifest.query(
                "SELECT status, COUNT(*) FROM files WHERE folder_id = ? GROUP BY status",
                (f.id,))}
            chunks = self.manifest.query(
                "SELECT COALESCE(SUM(chunk_count), 0) FROM files WHERE folder_id = ?",
                (f.id,))[0][0]
            item: dict[str, Any] = {
                "path": f.path, "include": list(f.include), "exclude": list(f.exclude),
                "local_only": f.local_only, "paused": f.paused, "state": f.state,
                "error": f.error, "scanned_at": f.scanned_at,
                "files": sum(counts.values()) - counts.get("ignored", 0),
                "indexed": counts.get(INDEXED, 0), "pending": counts.get("pending", 0)
                + counts.get("indexing", 0),
                "skipped": counts.get(SKIPPED, 0), "failed": counts.get(FAILED, 0),
                "chunks": chunks,
            }
            if errors:
                item["errors"] = [
                    {"path": r[0], "status": r[1], "reason": r[2]}
                    for r in self.manifest.query(
                        "SELECT path, status, error FROM files WHERE folder_id = ? AND status "
                        "IN (?, ?) ORDER BY path", (f.id, SKIPPED, FAILED))]
            out_folders.append(item)
        pid = writer_pid(self.dir)
        return {
            "to_repair": self._to_repair(pid),
            "folders": out_folders,
            "chunks": sum(f["chunks"] for f in out_folders),
            "vectors": self.vectors.count() if self.vectors is not None else 0,
            "embedding_model": self.embedder.id,
            "writer_pid": pid,
            "index_dir": str(self.dir),
        }


    def _to_repair(self, writer_pid: int | None) -> int:
        """Passages the next writer's start will repair (vectors deleted or
        their files read again): nonzero when the last writer died between
        writing Chroma and the manifest. Compared only when a writer died, so
        a status is cheap otherwise; nothing is changed."""
        if self.writer:
            died = self.needs_repair
        else:
            died = writer_pid is None and (
                self.manifest.get_meta("writer_clean") == "0" or bool(self.manifest.query(
                    "SELECT 1 FROM files WHERE status = 'indexing' LIMIT 1")))
        if not died:
            return 0
        if self.vectors is None and not self.writer:
            with contextlib.suppress(Exception):
                self._open_vectors()  # the collection a writer created since
        return compare(self.manifest, self.vectors).passages


def writer_pid(directory: Path) -> int | None:
    try:
        pid = int((directory / "writer.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    import psutil

    return pid if psutil.pid_exists(pid) else None


def _pid_note(directory: Path) -> str:
    pid = writer_pid(directory)
    return f" (pid {pid})" if pid else ""

