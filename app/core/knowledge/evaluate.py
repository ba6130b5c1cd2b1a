"""How well the index finds the right files: evaluation sets, the metrics
(nDCG@10, Recall@10/@100, MRR@10) and stored runs to compare.

A set is either a BEIR folder (`corpus.jsonl`, `queries.jsonl`, `qrels/*.tsv`),
indexed into a workspace of its own through the normal indexer, or a JSONL file
of questions with the files that answer them, searched in the user's own index.
Everything is searched through the normal retriever with the user's settings.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import HearthError
from app.paths import Paths

# The metrics a run reports, in the order they are shown; all "higher is better"
# but the latencies.
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
LATENCIES = ("latency_p50_ms", "latency_p95_ms")
# How many results each question asks for: enough for Recall@100.
DEPTH = 100


class EvalError(HearthError):
    reason = "eval"


@dataclass(frozen=True)
class Query:
    id: str
    text: str


@dataclass
class EvalSet:
    """Questions and, for each, the documents that answer it (gain > 0)."""

    name: str
    kind: str  # "beir" or "questions"
    source: Path
    queries: list[Query]
    qrels: dict[str, dict[str, int]]
    # beir: document id -> (title, text); questions: empty (the user's index)
    corpus: dict[str, tuple[str, str]] = field(default_factory=dict)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for q in self.queries:
            h.update(f"{q.id}\0{q.text}\0".encode())
        for qid in sorted(self.qrels):
            for doc, gain in sorted(self.qrels[qid].items()):
                h.update(f"{qid}\0{doc}\0{gain}\0".encode())
        h.update(str(len(self.corpus)).encode())
        return h.hexdigest()[:16]


# -- metrics -------------------------------------------------------------------------


def dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Normalised discounted cumulative gain with graded gains (BEIR's and
    trec_eval's definition: gain / log2(rank + 1), ideal from the judgements)."""
    if not relevant:
        return 0.0
    gains = [float(relevant.get(d, 0)) for d in ranked[:k]]
    ideal = sorted((float(g) for g in relevant.values() if g > 0), reverse=True)[:k]
    best = dcg(ideal)
    return dcg(gains) / best if best else 0.0


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    wanted = {d for d, g in relevant.items() if g > 0}
    if not wanted:
        return 0.0
    return len(wanted.intersection(ranked[:k])) / len(wanted)


def mrr_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k]):
        if relevant.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def first_per_document(keys: Sequence[str]) -> list[str]:
    """Results as documents: each one at the place of its first passage."""
    seen: set[str] = set()
    out = []
    for key in keys:
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[rank]


def score(ranked: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
          ) -> dict[str, float]:
    """Mean metrics over the questions that have judgements."""
    totals = dict.fromkeys(METRICS, 0.0)
    n = 0
    for qid, relevant in qrels.items():
        docs = ranked.get(qid, [])
        totals["ndcg@10"] += ndcg_at(docs, relevant, 10)
        totals["recall@10"] += recall_at(docs, relevant, 10)
        totals["recall@100"] += recall_at(docs, relevant, 100)
        totals["mrr@10"] += mrr_at(docs, relevant, 10)
        n += 1
    return {m: (v / n if n else 0.0) for m, v in totals.items()}


# -- loading sets --------------------------------------------------------------------


def load_set(path: str | Path, split: str | None = None) -> EvalSet:
    p = Path(path).expanduser()
    if not p.exists():
        raise EvalError(f"{p} does not exist.")
    if p.is_file():
        if p.suffix.lower() != ".jsonl":
            raise EvalError(f"{p} is not an evaluation set: give a BEIR folder (corpus.jsonl, "
                            "queries.jsonl, qrels/*.tsv) or a .jsonl file of questions.")
        return _load_questions(p)
    if not (p / "corpus.jsonl").is_file() or not (p / "queries.jsonl").is_file() or not (
            p / "qrels").is_dir():
        raise EvalError(f"{p} is not an evaluation set: a BEIR folder holds corpus.jsonl, "
                        "queries.jsonl and qrels/*.tsv.")
    return _load_beir(p, split)


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as fh:
        for no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalError(f"{path.name} line {no} is not valid JSON ({exc.msg}).") from None
            if not isinstance(item, dict):
                raise EvalError(f"{path.name} line {no} is not a JSON object.")
            yield no, item


def _load_beir(root: Path, split: str | None) -> EvalSet:
    qrel_files = sorted((root / "qrels").glob("*.tsv"))
    if not qrel_files:
        raise EvalError(f"{root / 'qrels'} holds no .tsv file of relevance judgements.")
    if split is None:
        chosen = next((f for f in qrel_files if f.stem == "test"), None)
        if chosen is None:
            if len(qrel_files) > 1:
                names = ", ".join(f.stem for f in qrel_files)
                raise EvalError(f"{root.name} has several splits ({names}); choose one with "
                                "--split.")
            chosen = qrel_files[0]
    else:
        chosen = root / "qrels" / f"{split}.tsv"
        if not chosen.is_file():
            names = ", ".join(f.stem for f in qrel_files)
            raise EvalError(f"{root.name} has no split '{split}' (it has {names}).")
    corpus: dict[str, tuple[str, str]] = {}
    for no, item in _jsonl(root / "corpus.jsonl"):
        doc_id = str(item.get("_id", "")).strip()
        if not doc_id:
            raise EvalError(f"corpus.jsonl line {no} has no _id.")
        corpus[doc_id] = (str(item.get("title") or "").strip(), str(item.get("text") or ""))
    all_queries: dict[str, str] = {}
    for no, item in _jsonl(root / "queries.jsonl"):
        qid = str(item.get("_id", "")).strip()
        if not qid:
            raise EvalError(f"queries.jsonl line {no} has no _id.")
        all_queries[qid] = str(item.get("text") or "")
    qrels = _read_qrels(chosen, corpus, all_queries)
    queries = [Query(qid, all_queries[qid]) for qid in qrels]
    return EvalSet(f"{root.name}/{chosen.stem}", "beir", root, queries, qrels, corpus)


def _read_qrels(path: Path, corpus: Mapping[str, Any], queries: Mapping[str, str]
                ) -> dict[str, dict[str, int]]:
    with open(path, encoding="utf-8") as fh:
        lines = [line.rstrip("\n") for line in fh]
    rows = [line.split("\t") for line in lines if line.strip()]
    if not rows:
        raise EvalError(f"qrels/{path.name} is empty.")
    header = [c.strip().lower() for c in rows[0]]
    if header[:2] != ["query-id", "corpus-id"]:
        raise EvalError(f"qrels/{path.name} has no header line; its first line must be "
                        "'query-id<TAB>corpus-id<TAB>score'.")
    qrels: dict[str, dict[str, int]] = {}
    for no, row in enumerate(rows[1:], start=2):
        if len(row) < 2:
            raise EvalError(f"qrels/{path.name} line {no} needs a query id and a corpus id.")
        qid, doc = row[0].strip(), row[1].strip()
        try:
            gain = int(row[2]) if len(row) > 2 and row[2].strip() else 1
        except ValueError:
            raise EvalError(f"qrels/{path.name} line {no}: the score '{row[2]}' is not a "
                            "whole number.") from None
        if qid not in queries:
            raise EvalError(f"qrels/{path.name} line {no} names query '{qid}', which is not "
                            "in queries.jsonl.")
        if doc not in corpus:
            raise EvalError(f"qrels/{path.name} line {no} names document '{doc}', which is "
                            "not in corpus.jsonl.")
        if not queries[qid].strip():
            raise EvalError(f"query '{qid}' in queries.jsonl is empty; give it a text or "
                            f"remove it from qrels/{path.name}.")
        if gain > 0:
            qrels.setdefault(qid, {})[doc] = gain
    if not qrels:
        raise EvalError(f"qrels/{path.name} judges no document relevant (no score above 0).")
    return qrels


def _load_questions(path: Path) -> EvalSet:
    """{"question": "...", "files": ["notes/a.md", ...]} a line; relative paths
    are taken from the JSONL file's folder."""
    queries: list[Query] = []
    qrels: dict[str, dict[str, int]] = {}
    for no, item in _jsonl(path):
        text = item.get("question")
        files = item.get("files")
        if not isinstance(text, str) or not text.strip():
            raise EvalError(f"{path.name} line {no} has no question.")
        if not isinstance(files, list) or not files or not all(
                isinstance(f, str) and f for f in files):
            raise EvalError(f"{path.name} line {no} needs \"files\": a list of the files that "
                            "answer the question.")
        qid = str(item.get("id") or no)
        queries.append(Query(qid, text))
        qrels[qid] = {os.path.normpath(str(path.parent / Path(f).expanduser())): 1
                      for f in files}
    if not queries:
        raise EvalError(f"{path.name} holds no questions.")
    return EvalSet(path.stem, "questions", path, queries, qrels)


# -- running -------------------------------------------------------------------------


@dataclass
class Run:
    id: str
    set: str
    set_fingerprint: str
    created: float
    queries: int
    metrics: dict[str, float]
    latency_p50_ms: float
    latency_p95_ms: float
    index_seconds: float | None
    settings: dict[str, Any]
    hearth_version: str
    answers: dict[str, Any] | None = None
    per_query: dict[str, list[str]] = field(default_factory=dict)

    def figures(self) -> dict[str, float]:
        out = dict(self.metrics)
        out["latency_p50_ms"] = self.latency_p50_ms
        out["latency_p95_ms"] = self.latency_p95_ms
        return out

    def as_dict(self, per_query: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not per_query:
            d.pop("per_query")
        return d


Search = Callable[[str, int], list[str]]


def workspace(paths: Paths, es: EvalSet) -> Path:
    """Where a BEIR set's files and index live (kept for the next run)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", es.name).strip("-") or "set"
    key = hashlib.sha256(str(es.source.resolve()).encode()).hexdigest()[:8]
    return paths.cache_dir / "eval" / f"{slug}-{key}"


def write_corpus(es: EvalSet, folder: Path) -> int:
    """Each document as `<id>.txt`: its title, a blank line, its text. Files
    already there with the same content are left alone (their index stays)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    wanted = set()
    for doc_id, (title, text) in es.corpus.items():
        name = _file_name(doc_id)
        wanted.add(name)
        body = f"{title}\n\n{text}\n" if title else f"{text}\n"
        target = folder / name
        try:
            if target.read_text(encoding="utf-8") == body:
                continue
        except OSError:
            pass
        target.write_text(body, encoding="utf-8")
        written += 1
    for stale in folder.glob("*.txt"):
        if stale.name not in wanted:
            stale.unlink()
    return written


def _file_name(doc_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", doc_id)
    if safe != doc_id or safe.startswith("."):
        safe = f"{safe}-{hashlib.sha256(doc_id.encode()).hexdigest()[:8]}"
    return f"{safe}.txt"


def doc_key_of_path(es: EvalSet) -> Callable[[str], str]:
    if es.kind == "questions":
        return os.path.normpath
    names = {_file_name(d): d for d in es.corpus}

    def key(path: str) -> str:
        return names.get(os.path.basename(path), path)

    return key


def run_queries(es: EvalSet, search: Search, depth: int = DEPTH,
                progress: Callable[[int, int], None] | None = None
                ) -> tuple[dict[str, list[str]], list[float]]:
    """Ask every question once; returns the ranked documents of each and the
    search times in milliseconds."""
    ranked: dict[str, list[str]] = {}
    times: list[float] = []
    for i, q in enumerate(es.queries):
        t0 = time.perf_counter()
        docs = search(q.text, depth)
        times.append((time.perf_counter() - t0) * 1000)
        ranked[q.id] = first_per_document(docs)
        if progress is not None:
            progress(i + 1, len(es.queries))
    return ranked, times


def make_run(es: EvalSet, ranked: dict[str, list[str]], times: Sequence[float],
             index_seconds: float | None, settings: Mapping[str, Any], version: str,
             answers: dict[str, Any] | None = None) -> Run:
    created = time.time()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", es.name).strip("-")[:40]
    run_id = time.strftime("%Y%m%d-%H%M%S", time.localtime(created)) + f"-{slug}"
    return Run(run_id, es.name, es.fingerprint(), created, len(es.queries),
               score(ranked, es.qrels), round(percentile(times, 50), 2),
               round(percentile(times, 95), 2), index_seconds, dict(settings), version,
               answers, {q: docs[:DEPTH] for q, docs in ranked.items()})


# -- stored runs ---------------------------------------------------------------------


def runs_dir(paths: Paths) -> Path:
    return paths.data_dir / "eval" / "runs"


def save_run(paths: Paths, run: Run) -> Path:
    folder = runs_dir(paths)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{run.id}.json"
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{run.id}-{n}.json"
    run.id = target.stem
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(run.as_dict(per_query=True), indent=1), encoding="utf-8")
    os.replace(tmp, target)
    return target


def list_runs(paths: Paths) -> list[Run]:
    folder = runs_dir(paths)
    runs = []
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            runs.append(_run_from(json.loads(f.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return sorted(runs, key=lambda r: r.created)


def load_run(paths: Paths, ref: str) -> Run:
    """A run by id, by "last", or from a JSON file written by `hearth eval`."""
    if ref == "last":
        runs = list_runs(paths)
        if not runs:
            raise EvalError("no evaluation has been run yet; run `hearth eval SET` first.")
        return runs[-1]
    candidates = [Path(ref).expanduser(), runs_dir(paths) / f"{ref}.json"]
    for c in candidates:
        if c.is_file():
            try:
                return _run_from(json.loads(c.read_text(encoding="utf-8")))
            except (ValueError, TypeError, KeyError):
                raise EvalError(f"{c} is not a run written by `hearth eval`.") from None
    raise EvalError(f"no evaluation run '{ref}'; `hearth eval --runs` lists them.")


def _run_from(d: dict[str, Any]) -> Run:
    return Run(**{k: d[k] for k in Run.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class Change:
    metric: str
    before: float
    after: float

    @property
    def delta(self) -> float:
        return self.after - self.before


def compare(a: Run, b: Run, threshold: float = 0.01) -> tuple[list[Change], list[str]]:
    """Metric changes from run A to run B, and the metrics that regressed by
    more than `threshold` (absolute, for the quality metrics)."""
    if a.set != b.set or a.set_fingerprint != b.set_fingerprint:
        raise EvalError(f"runs {a.id} and {b.id} were made on different sets ({a.set} and "
                        f"{b.set}); compare runs of one set.")
    fa, fb = a.figures(), b.figures()
    changes = [Change(m, fa[m], fb[m]) for m in (*METRICS, *LATENCIES)]
    regressions = [c.metric for c in changes if c.metric in METRICS
                   and c.delta < -threshold]
    return changes, regressions


def summary(run: Run) -> str:
    m = run.metrics
    return (f"nDCG@10 {m['ndcg@10']:.4f}  R@10 {m['recall@10']:.4f}  "
            f"R@100 {m['recall@100']:.4f}  MRR@10 {m['mrr@10']:.4f}  "
            f"search p50 {run.latency_p50_ms:.1f} ms  p95 {run.latency_p95_ms:.1f} ms")


def evaluate(es: EvalSet, paths: Paths, settings: Any, *, reindex: bool = False,
             limit: int | None = None, index_progress: Any = None,
             query_progress: Callable[[int, int], None] | None = None) -> tuple[Run, Any]:
    """Index the set if it brings its own documents, ask every question, and
    score. Returns the run (not yet saved) and the knowledge base it searched,
    still open, for the caller to close (answers may use it)."""
    import shutil

    from app import __version__
    from app.core.knowledge import progress as ev
    from app.core.knowledge.base import KnowledgeBase

    index_seconds: float | None = None
    if es.kind == "beir":
        ws = workspace(paths, es)
        home = ws / "index"
        if reindex and home.exists():
            shutil.rmtree(home)
        write_corpus(es, ws / "files")
        kb = KnowledgeBase(Paths.under(home), settings, writer=True)
        try:
            kb.add_folder(ws / "files")
            stats = kb.reconcile(progress=index_progress or ev.ignore)
        except BaseException:
            kb.close()
            raise
        if stats.indexed or stats.chunks_embedded:
            index_seconds = round(stats.seconds, 2)
    else:
        kb = KnowledgeBase(paths, settings, writer=False)
        if not kb.folders():
            kb.close()
            raise EvalError("no folders are indexed yet; add the folders these questions are "
                            "about with `hearth index add PATH`.")
    if limit is not None:
        es.queries = es.queries[:limit]
        es.qrels = {q.id: es.qrels[q.id] for q in es.queries}
    key = doc_key_of_path(es)

    def search(text: str, depth: int) -> list[str]:
        return [key(r.path) for r in kb.search(text, depth)]

    try:
        ranked, times = run_queries(es, search, progress=query_progress)
    except BaseException:
        kb.close()
        raise
    knowledge = {s.key: v for s, v in settings.items() if s.key.startswith("knowledge.")}
    return make_run(es, ranked, times, index_seconds, knowledge, __version__), kb


_CITATION = re.compile(r"\[(\d{1,3})\]")


def answer_questions(es: EvalSet, kb: Any, paths: Paths, settings: Any, *,
                     prompt: str | None = None, limit: int = 20, max_tokens: int = 160,
                     progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Ask the model the first `limit` questions with passages from `kb`, and
    report how many answers cite a passage they were given, how many cite a
    relevant file, and how long answers take. Conversations go to the
    evaluation's own store, never the user's. Offline: nothing is sent out."""
    from app.core.assistant import AskOptions, Assistant
    from app.core.conversations import ConversationStore
    from app.core.events import Error, Finished, Sources
    from app.core.prompts import load_prompt

    used = load_prompt(prompt)  # an unknown prompt fails before any question
    root = paths.cache_dir / "eval" / "answers"
    store_paths = Paths.under(root)
    store_paths.ensure(store_paths.data_dir)
    store = ConversationStore(store_paths.conversations_db)
    assistant = Assistant(settings, store_paths, store=store, knowledge=kb)
    key = doc_key_of_path(es)
    questions = es.queries[:limit]
    cited = cited_relevant = answered = with_sources = 0
    totals: list[float] = []
    firsts: list[float] = []
    failures: list[str] = []
    try:
        for i, q in enumerate(questions):
            sources: dict[int, str] = {}
            finished: Finished | None = None
            for event in assistant.ask(q.text, None, AskOptions(
                    prompt=used.ref, offline=True, max_tokens=max_tokens, temperature=0.0,
                    seed=0)):
                if isinstance(event, Sources):
                    sources = {s.number: key(s.path) for s in event.sources}
                elif isinstance(event, Finished):
                    finished = event
                elif isinstance(event, Error):
                    failures.append(f"{q.id}: {event.message}")
            if progress is not None:
                progress(i + 1, len(questions))
            if finished is None:
                continue
            answered += 1
            with_sources += bool(sources)
            numbers = {int(n) for n in _CITATION.findall(finished.answer)}
            hit = [sources[n] for n in numbers if n in sources]
            cited += bool(hit)
            cited_relevant += any(es.qrels[q.id].get(d, 0) > 0 for d in hit)
            totals.append(finished.timings.total_s)
            if finished.timings.ttft_s is not None:
                firsts.append(finished.timings.ttft_s)
    finally:
        assistant.close()  # closes the store too
    return {
        "prompt": used.ref, "questions": len(questions), "answered": answered,
        "with_sources": with_sources,
        "citation_rate": round(cited / answered, 4) if answered else 0.0,
        "relevant_citation_rate": round(cited_relevant / answered, 4) if answered else 0.0,
        "answer_p50_s": round(percentile(totals, 50), 2),
        "answer_p95_s": round(percentile(totals, 95), 2),
        "first_token_p50_s": round(percentile(firsts, 50), 2),
        "failures": failures[:10],
    }
