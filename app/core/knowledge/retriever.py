"""Hybrid retrieval: vector similarity from Chroma and BM25 keywords from
SQLite FTS5, fused per file, then returned as each file's best passages with
path, lines/page and scores for citing.

Files, not passages, are ranked: a file's vector score is its best passage's
cosine, its keyword score its best passage's BM25. Each side's scores are
scaled to 0..1 over its candidates and the two are mixed (a convex
combination, which keeps how far apart two files are where rank fusion keeps
only their order). Each file then brings its best passages.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.knowledge.embedder import Embedder
from app.core.knowledge.store import Manifest, VectorStore

# The vector side's share of a file's fused score (the keyword side has the rest).
VECTOR_WEIGHT = 0.5
# Passages each side brings at least, so that up to k = CANDIDATES / 4 the
# ranking is the same whatever k. A larger k brings 4k a side, and since each
# side is scaled over what it brought, the first results can move a little
# (SciFact train, nDCG@10: 0.7487 at k = 10, 0.7496 at k = 100).
CANDIDATES = 50
MMR_LAMBDA = 0.7
# See _scaled. BM25 differences below KEYWORD_MIN_SPAN say little: when every
# file holds the question's words, BM25 gives them all next to nothing.
SCALE_FLOOR = 0.25
KEYWORD_MIN_SPAN = 1.0
# Passages a document found only as a whole brings at least (see search).
UNSEEN_PASSAGES = 3
# See Result.relevant (calibrated on a scientific-claims benchmark and on small talk).
BACKGROUND_RANK = 20
RELEVANCE_MARGIN = 0.04
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
    score: float  # its file's fused score, 0..1 (higher is better)
    vector_score: float | None  # cosine similarity, when found by vector
    keyword_score: float | None  # BM25 (higher is better), when found by keyword
    folder_id: int
    local_only: bool
    # The cosine of the file in BACKGROUND_RANK place by vector: how similar
    # files that merely share the question's subject are. A passage that does
    # not stand out from it does not answer the question.
    background: float | None = None

    def relevant(self, minimum: float) -> bool:
        """Whether the passage is close enough to the question to be given to
        a model: similar enough (cosine), and clearly more similar than the
        files around it (small talk is about as close to everything)."""
        if minimum <= 0:
            return True
        if self.vector_score is None:
            return False
        return self.vector_score >= minimum and (
            self.background is None or self.vector_score - self.background >= RELEVANCE_MARGIN)

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


# BM25 hits: (chunk id, score) among passages, (path, score) among documents.
_KeywordHits = tuple[list[tuple[str, float]], list[tuple[str, float]]]


def search_pool() -> ThreadPoolExecutor:
    """Threads for the keyword side of searches, beside the vector side. Its
    owner (the knowledge base) shuts it down when it closes."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="hearth-search-keywords")


class Retriever:
    """Searches the manifest (keywords) and the vectors; the keyword search
    runs on `pool` (its owner's, see search_pool) beside the vector search."""

    def __init__(self, manifest: Manifest, vectors: VectorStore | None, embedder: Embedder,
                 pool: Executor) -> None:
        self.manifest = manifest
        self.vectors = vectors
        self.embedder = embedder
        self.pool = pool

    def embed_query(self, question: str) -> np.ndarray:
        # A question longer than the model reads is embedded by its start; the
        # keyword side still sees all of it.
        vector: np.ndarray = self.embedder.embed([question], from_head=True)[0]
        return vector

    # Complex on purpose: the ranking steps in order, each with its early exit.
    def search(self, question: str, k: int = 8, *, folders: Sequence[int] | None = None,  # noqa: C901
               kinds: Sequence[str] | None = None, path_glob: str | None = None,
               mmr: bool = False, per_file: int = 1) -> list[Result]:
        """The best files for the question, each with up to `per_file` of its
        passages (best first); at most `k` passages in all."""
        question = question.strip()
        if not question or k < 1:
            return []
        n = max(4 * k, CANDIDATES) * (5 if path_glob else 1)
        vecs: dict[str, np.ndarray] = {}
        sims: dict[str, float] = {}
        # The keyword search (SQLite) runs beside the query's embedding and the
        # vector search (onnxruntime, Chroma); all three release the GIL.
        keyword_job = self.pool.submit(self._keyword, question, n, folders, kinds)
        qv: np.ndarray | None = None
        vector_ids: list[str] = []
        try:
            if self.vectors is not None:
                qv = self.embed_query(question)
                # Chroma's distances are exact for what it returns (1 - cosine);
                # vectors are only fetched where they are needed.
                vector_ids, dists, embs = self.vectors.query(qv, n, _where(folders, kinds),
                                                             embeddings=mmr)
                sims = {c: 1.0 - d for c, d in zip(vector_ids, dists, strict=True)}
                if embs is not None:
                    vecs.update(zip(vector_ids, embs, strict=True))
        finally:
            keyword, documents = keyword_job.result()
        doc_score = {path: -bm25 for path, bm25 in documents}
        kw_score = {cid: -bm25 for cid, bm25 in keyword}
        hits = self.manifest.hits(list({**dict.fromkeys(vector_ids), **kw_score}))
        # Documents found as a whole, none of whose passages was found, bring
        # their passages (the best is chosen by cosine below).
        seen = {h.path for h in hits.values()}
        # (Only those that could rank among the first results: the rest adds
        # time, not answers.)
        unseen = [p for p in doc_score if p not in seen][:max(2 * k, BACKGROUND_RANK)]
        if unseen:
            of_path = self.manifest.chunk_ids_of_paths(unseen)
            keep = max(per_file, UNSEEN_PASSAGES)
            if qv is not None and self.vectors is not None and any(
                    len(ids) > keep for ids in of_path.values()):
                # A long document brings only its passages closest to the
                # question: none of its passages matched by keyword, so these
                # decide both its vector score and which passages it shows,
                # and reading all of them is most of a search's time.
                vecs.update(self.vectors.vectors(
                    [c for ids in of_path.values() if len(ids) > keep for c in ids]))
                for path, ids in of_path.items():
                    if len(ids) > keep:
                        of_path[path] = sorted(
                            ids, key=lambda c: float(vecs[c] @ qv) if c in vecs else 2.0,
                            reverse=True)[:keep]
            hits.update(self.manifest.hits([c for ids in of_path.values() for c in ids]))
        candidates = list(hits)
        if self.vectors is not None:
            # Keyword hits the vector index did not return get their vectors
            # too, and the vector side is scored by exact cosine over all: an
            # approximate (HNSW) search can miss a close chunk, e.g. next to
            # thousands of near-duplicate ones, and this puts it back.
            missing = [cid for cid in candidates if cid not in sims and cid not in vecs]
            if missing:
                vecs.update(self.vectors.vectors(missing))
        if qv is not None:
            sims.update((cid, float(v @ qv)) for cid, v in vecs.items() if cid not in sims)
        if path_glob:
            hits = {c: h for c, h in hits.items() if _glob_match(h.path, path_glob)}
        if not hits:
            return []
        # Passages scored by the same mix, to choose and order each file's own.
        p_vec = _scaled({c: sims.get(c) for c in hits}, vector_ids)
        p_kw = _scaled({c: kw_score.get(c) for c in hits}, min_span=KEYWORD_MIN_SPAN)
        passage = {c: VECTOR_WEIGHT * p_vec.get(c, 0.0) + (1 - VECTOR_WEIGHT) * p_kw.get(c, 0.0)
                   for c in hits}
        by_file: dict[str, list[str]] = {}
        for c in sorted(hits, key=lambda c: passage[c], reverse=True):
            by_file.setdefault(hits[c].path, []).append(c)
        # The vector side is scaled over the files its own search found; a file
        # found only by keyword is placed on that scale by its exact cosine.
        found = {hits[c].path for c in vector_ids if c in hits}
        f_vec = _scaled({f: max((sims[c] for c in cs if c in sims), default=None)
                         for f, cs in by_file.items()}, found)
        # Keywords rank whole documents; an index cut before documents were
        # kept whole ranks files by their best passage instead.
        f_kw = _scaled({f: doc_score.get(f) for f in by_file} if doc_score else
                       {f: max((kw_score[c] for c in cs if c in kw_score), default=None)
                        for f, cs in by_file.items()}, min_span=KEYWORD_MIN_SPAN)
        by_vector = sorted((max((sims[c] for c in cs if c in sims), default=-1.0)
                            for cs in by_file.values()), reverse=True)
        # (Too few files to tell what is background: the cosine alone decides.)
        background = (by_vector[BACKGROUND_RANK - 1] if len(by_vector) >= BACKGROUND_RANK
                      else None)
        fused = {f: VECTOR_WEIGHT * f_vec.get(f, 0.0) + (1 - VECTOR_WEIGHT) * f_kw.get(f, 0.0)
                 for f in by_file}
        files = sorted(by_file, key=lambda f: fused[f], reverse=True)
        if mmr and qv is not None and len(files) > 1:
            best = {f: by_file[f][0] for f in files}
            order = _mmr([best[f] for f in files], {best[f]: fused[f] for f in files}, vecs,
                         len(files))
            files = [hits[c].path for c in order]
        out: list[Result] = []
        for f in files:
            for cid in by_file[f][:max(1, per_file)]:
                h = hits[cid]
                out.append(Result(cid, h.path, h.text, h.start_line, h.end_line, h.page,
                                  fused[f], sims.get(cid), kw_score.get(cid), h.folder_id,
                                  h.local_only, background))
                if len(out) >= k:
                    return out
        return out

    def _keyword(self, question: str, n: int, folders: Sequence[int] | None,
                 kinds: Sequence[str] | None) -> _KeywordHits:
        """BM25 hits among passages (chunk ids) and among whole documents
        (file paths)."""
        words = keywords(question)
        if not words:
            return [], []
        total, freqs = self.manifest.doc_freqs(words)
        kept = [w for w in words if 0 < freqs[w] <= COMMON_SHARE * total]
        if not kept:  # only common words: the rarest one still says something
            kept = sorted((w for w in words if freqs[w]), key=lambda w: freqs[w])[:1]
        q = fts_query(kept)
        if not q:
            return [], []
        return (self.manifest.keyword_search(q, n, folders, kinds),
                self.manifest.document_search(q, n, folders, kinds))


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


def _scaled(scores: Mapping[str, float | None], over: Collection[str] | None = None,
            min_span: float = 0.0) -> dict[str, float]:
    """Scores scaled to 0..1 (min-max, with a floor under the range) over the
    candidates in `over` (all that have a score when None); others are placed
    on that scale and clipped."""
    vals = {c: v for c, v in scores.items() if v is not None}
    ref = [v for c, v in vals.items() if over is None or c in over] or list(vals.values())
    if not ref:
        return {}
    lo, hi = min(ref), max(ref)
    # Scores that hardly differ (a word every file holds) must not be spread
    # over the whole 0..1: the range is at least SCALE_FLOOR of the best one,
    # reaching down from the best, which always scores 1 (a single match, the
    # only file holding a rare word, is the best one, not the worst).
    span = max(hi - lo, SCALE_FLOOR * hi, min_span)
    if span <= 0:
        return {c: 1.0 if v >= hi else 0.0 for c, v in vals.items()}
    return {c: min(1.0, max(0.0, 1.0 - (hi - v) / span)) for c, v in vals.items()}


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
