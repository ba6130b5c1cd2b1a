"""Evaluation metrics against hand-computed values, and every way an
evaluation set can be wrong."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from app.core.knowledge import evaluate as E


def test_ndcg_matches_hand_computed_values() -> None:
    rel = {"a": 1, "b": 1}
    # a at rank 1, b at rank 3: DCG = 1 + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3)
    assert E.ndcg_at(["a", "x", "b"], rel, 10) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert E.ndcg_at(["a", "b"], rel, 10) == pytest.approx(1.0)
    assert E.ndcg_at(["x", "y"], rel, 10) == 0.0
    # Only the first k count.
    assert E.ndcg_at(["x", "a"], {"a": 1}, 1) == 0.0
    # Graded gains: 2 at rank 2, ideal puts it first.
    assert E.ndcg_at(["a", "b"], {"a": 1, "b": 2}, 10) == pytest.approx(
        (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))


def test_recall_and_mrr_match_hand_computed_values() -> None:
    rel = {"a": 1, "b": 1, "c": 1, "d": 1}
    ranked = ["x", "a", "y", "b"] + [f"z{i}" for i in range(100)] + ["c"]
    assert E.recall_at(ranked, rel, 10) == pytest.approx(0.5)
    assert E.recall_at(ranked, rel, 100) == pytest.approx(0.5)
    assert E.recall_at(ranked, rel, 200) == pytest.approx(0.75)
    assert E.mrr_at(ranked, rel, 10) == pytest.approx(0.5)
    assert E.mrr_at(["x"] * 10 + ["a"], rel, 10) == 0.0


def test_score_averages_over_judged_questions_and_documents_count_once() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    ranked = {"q1": E.first_per_document(["a", "a", "c"]), "q2": ["c", "b"]}
    assert ranked["q1"] == ["a", "c"]
    m = E.score(ranked, qrels)
    assert m["ndcg@10"] == pytest.approx((1.0 + 1 / math.log2(3)) / 2)
    assert m["mrr@10"] == pytest.approx(0.75)
    assert m["recall@10"] == pytest.approx(1.0)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert E.percentile(values, 50) == 50.0
    assert E.percentile(values, 95) == 95.0
    assert E.percentile([], 95) == 0.0


def _beir(root: Path, qrels: str = "query-id\tcorpus-id\tscore\nq1\td1\t1\n",
          queries: list[dict[str, str]] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(
        json.dumps({"_id": "d1", "title": "T", "text": "alpha"}) + "\n"
        + json.dumps({"_id": "d2", "title": "", "text": "beta"}) + "\n")
    qs = queries if queries is not None else [{"_id": "q1", "text": "alpha?"}]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / "test.tsv").write_text(qrels)
    return root


def test_a_beir_folder_loads(tmp_path: Path) -> None:
    es = E.load_set(_beir(tmp_path / "set"))
    assert es.kind == "beir" and es.name == "set/test"
    assert [q.id for q in es.queries] == ["q1"] and es.qrels == {"q1": {"d1": 1}}
    assert es.corpus["d1"] == ("T", "alpha")


@pytest.mark.parametrize(("qrels", "queries", "message"), [
    ("query-id\tcorpus-id\tscore\nq1\tnope\t1\n", None,
     "names document 'nope', which is not in corpus.jsonl"),
    ("query-id\tcorpus-id\tscore\nq9\td1\t1\n", None,
     "names query 'q9', which is not in queries.jsonl"),
    ("q1\td1\t1\n", None, "has no header line"),
    ("query-id\tcorpus-id\tscore\nq1\td1\t1\n", [{"_id": "q1", "text": "  "}],
     "query 'q1' in queries.jsonl is empty"),
    ("query-id\tcorpus-id\tscore\nq1\td1\tmany\n", None, "is not a whole number"),
    ("query-id\tcorpus-id\tscore\nq1\td1\t0\n", None, "judges no document relevant"),
])
def test_broken_sets_are_refused_with_one_sentence(tmp_path: Path, qrels: str,
                                                   queries: list[dict[str, str]] | None,
                                                   message: str) -> None:
    root = _beir(tmp_path / "set", qrels, queries)
    with pytest.raises(E.EvalError, match=message):
        E.load_set(root)


def test_a_folder_that_is_not_a_set_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("hi")
    with pytest.raises(E.EvalError, match="is not an evaluation set"):
        E.load_set(tmp_path / "notes")
    with pytest.raises(E.EvalError, match="is not an evaluation set"):
        E.load_set(tmp_path / "notes" / "a.md")
    with pytest.raises(E.EvalError, match="does not exist"):
        E.load_set(tmp_path / "missing")


def test_several_splits_need_a_choice(tmp_path: Path) -> None:
    root = _beir(tmp_path / "set")
    (root / "qrels" / "test.tsv").rename(root / "qrels" / "train.tsv")
    (root / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\n")
    with pytest.raises(E.EvalError, match="several splits"):
        E.load_set(root)
    assert E.load_set(root, "dev").qrels == {"q1": {"d2": 1}}
    with pytest.raises(E.EvalError, match="no split 'test'"):
        E.load_set(root, "test")


def test_a_questions_file_takes_paths_from_its_folder(tmp_path: Path) -> None:
    f = tmp_path / "qs.jsonl"
    f.write_text(json.dumps({"question": "Where is the key?", "files": ["notes/a.md"]}) + "\n")
    es = E.load_set(f)
    assert es.kind == "questions"
    assert es.qrels == {"1": {str(tmp_path / "notes" / "a.md"): 1}}
    f.write_text(json.dumps({"question": "", "files": ["a.md"]}) + "\n")
    with pytest.raises(E.EvalError, match="line 1 has no question"):
        E.load_set(f)
    f.write_text(json.dumps({"question": "x"}) + "\n")
    with pytest.raises(E.EvalError, match="needs \"files\""):
        E.load_set(f)
    f.write_text("{not json\n")
    with pytest.raises(E.EvalError, match="line 1 is not valid JSON"):
        E.load_set(f)


def _run(es: E.EvalSet, ranked: dict[str, list[str]]) -> E.Run:
    return E.make_run(es, ranked, [1.0, 2.0], None, {}, "test")


def test_compare_finds_regressions_and_refuses_different_sets(tmp_path: Path) -> None:
    es = E.load_set(_beir(tmp_path / "set"))
    good, bad = _run(es, {"q1": ["d1"]}), _run(es, {"q1": ["d2", "d1"]})
    changes, regressions = E.compare(good, bad, 0.01)
    assert "ndcg@10" in regressions and "mrr@10" in regressions
    assert "recall@10" not in regressions
    assert E.compare(bad, good, 0.01)[1] == []
    assert {c.metric for c in changes} >= {"ndcg@10", "latency_p95_ms"}
    other = E.load_set(_beir(tmp_path / "other", queries=[{"_id": "q1", "text": "beta?"}]))
    with pytest.raises(E.EvalError, match="different sets"):
        E.compare(good, _run(other, {"q1": ["d1"]}))


def test_runs_are_stored_and_found_again(tmp_path: Path) -> None:
    from app.paths import Paths

    paths = Paths(tmp_path / "c", tmp_path / "d", tmp_path / "k", tmp_path / "l")
    es = E.load_set(_beir(tmp_path / "set"))
    first = _run(es, {"q1": ["d1"]})
    E.save_run(paths, first)
    second = _run(es, {"q1": ["d2"]})
    E.save_run(paths, second)
    assert first.id != second.id
    assert E.load_run(paths, "last").id == second.id
    assert E.load_run(paths, first.id).metrics == first.metrics
    with pytest.raises(E.EvalError, match="no evaluation run 'nope'"):
        E.load_run(paths, "nope")
    (tmp_path / "junk.json").write_text("[1, 2]")
    with pytest.raises(E.EvalError, match="is not a run"):
        E.load_run(paths, str(tmp_path / "junk.json"))
