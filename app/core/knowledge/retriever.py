"""Hybrid retrieval: vector similarity from Chroma and BM25 keywords from
SQLite FTS5, fused by reciprocal rank, optionally diversified with MMR, then
returned with path, lines/page and scores for citing."""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.knowledge.embedder import Embedder
from app.core.knowledge.store import Manifest, VectorStore

RRF_K = 60
MMR_LAMBDA = 0.7
_WORD = re.compile(r"\w+", re.UNICODE)
# Words too common to say anything as keywords (the vectors still see them).
STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "do", "does", "for", "from",
    "has", "have", "how", "i", "in", "is", "it", "its", "of", "on", "or", "so", "than", "that",
    "the", "their", "them", "then", "there", "these", "they", "this", "to", "was", "we",
    "were", "what", "when", "where", "which", "who", "why", "will", "with", "you", "your",
    "my", "me", "about", "into", "not", "no",
))


@dataclass(frozen=True)
class Result:
    id: str
    path: str
    text: str
    start_line: int | None
    end_line: int | None
    page: int | None
    score: float  # fused score (higher is better)
    vector_score: float | None  # cosine similarity, when found by vector
    keyword_score: float | None  # BM25 (higher is better), when found by keyword
    folder_id: int
    local_only: bool

    def snippet(self, chars: int = 200) -> str:
        text = " ".join(self.text.split())
        return text if len(text) <= chars else text[: chars - 1] + "…"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "start_line": self.start_line, "end_line": self.end_line,
            "page": self.page, "score": round(self.score, 6),
            "vector_score": None if self.vector_score is None else round(self.vector_score, 4),
            "keyword_score": None if self.keyword_score is None else round(self.keyword_score,
                                                                            4),
            "snippet": self.snippet(), "text": self.text, "local_only": self.local_only,
        }


# Keywords found in more than this share of all chunks are dropped from the
# keyword query: their BM25 weight is small, but scoring every chunk that holds
# them is most of a keyword search's time on a large index.
COMMON_SHARE = 0.10


def keywords(question: str) -> list[str]:
    words: list[str] = []
    for w in _WORD.findall(question.lower()):
        if w not in STOPWORDS and w not in words and (len(w) > 1 or w.isdigit()):
            words.append(w)
    return words[:32]


def fts_query(words: Sequence[str]) -> str | None:
    """Keywords as an FTS5 query (any of them, ranked by BM25)."""
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


class Retriever:
    def __init__(self, manifest: Manifest, vectors: VectorStore | None, embedder: Embedder
                 ) -> None:
        self.manifest = manifest
        self.vectors = vectors
        self.embedder = embedder

    def embed_query(self, question: str) -> np.ndarray:
        # A question longer than the model reads is embedded by its start; the
        # keyword side still sees all of it.
        pieces = self.embedder.split(question, self.embedder.max_tokens - 2)
        return self.embedder.embed([pieces[0] if pieces else question])[0]

    def search(self, question: str, k: int = 8, *, folders: Sequence[int] | None = None,
               kinds: Sequence[str] | None = None, path_glob: str | None = None,
               mmr: bool = True) -> list[Result]:
        question = question.strip()
        if not question or k < 1:
            return []
        n = max(4 * k, 24) * (5 if path_glob else 1)
        vecs: dict[str, np.ndarray] = {}
        # The keyword search (SQLite) runs beside the query's embedding and the
        # vector search (onnxruntime, Chroma); all three release the GIL.
        keyword_job = _pool().submit(self._keyword, question, n, folders, kinds)
        qv: np.ndarray | None = None
        try:
            if self.vectors is not None:
                qv = self.embed_query(question)
                ids, _dists, embs = self.vectors.query(qv, n, _where(folders, kinds))
                vecs.update(zip(ids, embs, strict=True))
        finally:
            keyword = keyword_job.result()
        if self.vectors is not None:
            # Keyword hits the vector index did not return get their vectors
            # too, and the vector ranking is made by exact cosine over both: an
            # approximate (HNSW) search can miss a close chunk, e.g. next to
            # thousands of near-duplicate ones, and this puts it back.
            missing = [cid for cid, _ in keyword if cid not in vecs]
            if missing:
                vecs.update(self.vectors.vectors(missing))
        sims = {cid: float(v @ qv) for cid, v in vecs.items()} if qv is not None else {}
        fused: dict[str, float] = {}
        for rank, cid in enumerate(sorted(sims, key=lambda c: sims[c], reverse=True)[:n]):
            fused[cid] = 1.0 / (RRF_K + rank + 1)
        kw_score: dict[str, float] = {}
        for rank, (cid, bm25) in enumerate(keyword):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
            kw_score[cid] = -bm25
        if not fused:
            return []
        ranked = sorted(fused, key=lambda c: fused[c], reverse=True)
        hits = self.manifest.hits(ranked)
        ranked = [c for c in ranked if c in hits]
        if path_glob:
            ranked = [c for c in ranked if _glob_match(hits[c].path, path_glob)]
        if mmr and qv is not None and len(ranked) > k:
            ranked = _mmr(ranked, fused, vecs, k)
        out = []
        for cid in ranked[:k]:
            h = hits[cid]
            out.append(Result(cid, h.path, h.text, h.start_line, h.end_line, h.page, fused[cid],
                              sims.get(cid), kw_score.get(cid), h.folder_id, h.local_only))
        return out


    def _keyword(self, question: str, n: int, folders: Sequence[int] | None,
                 kinds: Sequence[str] | None) -> list[tuple[str, float]]:
        words = keywords(question)
        if not words:
            return []
        total, freqs = self.manifest.doc_freqs(words)
        kept = [w for w in words if 0 < freqs[w] <= COMMON_SHARE * total]
        if not kept:  # only common words: the rarest one still says something
            kept = sorted((w for w in words if freqs[w]), key=lambda w: freqs[w])[:1]
        q = fts_query(kept)
        return self.manifest.keyword_search(q, n, folders, kinds) if q else []


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ThreadPoolExecutor"
                                           "-hearth-keywords")
        return _executor


def _where(folders: Sequence[int] | None, kinds: Sequence[str] | None) -> dict[str, Any] | None:
    parts: list[dict[str, Any]] = []
    if folders is not None:
        parts.append({"folder_id": {"$in": list(folders)}})
    if kinds is not None:
        parts.append({"kind": {"$in": list(kinds)}})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _glob_match(path: str, pattern: str) -> bool:
    if "/" not in pattern:
        return fnmatch.fnmatch(path.rsplit("/", 1)[-1], pattern)
    return fnmatch.fnmatch(path, pattern if pattern.startswith(("/", "*")) else "*/" + pattern)


def _mmr(ranked: list[str], fused: dict[str, float], vecs: dict[str, np.ndarray], k: int
         ) -> list[str]:
    """Maximal marginal relevance: each pick trades relevance against
    similarity to what was already picked."""
    cands = [c for c in ranked if c in vecs]
    rest = [c for c in ranked if c not in vecs]
    if len(cands) <= 1:
        return ranked
    top = fused[ranked[0]]
    rel = np.array([fused[c] / top for c in cands])
    mat = np.stack([vecs[c] for c in cands])
    sims = mat @ mat.T
    chosen: list[int] = []
    max_sim = np.full(len(cands), -np.inf)
    left = np.ones(len(cands), dtype=bool)
    for _ in range(min(k, len(cands))):
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        score = MMR_LAMBDA * rel - (1 - MMR_LAMBDA) * penalty
        score[~left] = -np.inf
        i = int(np.argmax(score))
        chosen.append(i)
        left[i] = False
        max_sim = np.maximum(max_sim, sims[i])
    picked = [cands[i] for i in chosen]
    return picked + [c for c in ranked if c not in picked and c not in rest] + rest
