"""`hearth eval` end to end: a small BEIR set built here is indexed through the
normal indexer, searched through the normal retriever and scored; runs are
kept and compared; broken sets get one sentence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_hearth

pytestmark = pytest.mark.slow

DOCS = {
    "d1": ("Sourdough bread", "Feed the starter, mix flour, water and salt, fold and bake."),
    "d2": ("Bicycle repair", "A puncture is fixed by patching the inner tube of the tyre."),
    "d3": ("Tax return", "The tax return is due in April; keep the receipts for expenses."),
    "d4": ("Tomato garden", "Tomatoes need sun, water every evening and a stake to climb."),
    "d5": ("Car service", "The oil change and the brake pads are due at 90,000 km."),
    "d6": ("Python logging", "Configure logging with a file handler and a formatter."),
    "d7": ("Guitar strings", "Tune the guitar after changing the strings; they stretch."),
    "d8": ("Coffee brewing", "Grind the beans coarse for a French press; steep four minutes."),
}
QUERIES = {
    "q1": ("How do I fix a flat tyre on my bike?", "d2"),
    "q2": ("When is the tax return due?", "d3"),
    "q3": ("How long should coffee steep in a French press?", "d8"),
    "q4": ("What does the starter need before baking bread?", "d1"),
}


def _set(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in DOCS.items()))
    (root / "queries.jsonl").write_text("".join(
        json.dumps({"_id": q, "text": t}) + "\n" for q, (t, _) in QUERIES.items()))
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t1\n" for q, (_, d) in QUERIES.items()))
    return root


def test_eval_indexes_searches_scores_and_compares(tmp_path: Path) -> None:
    env = {"HEARTH_HOME": str(tmp_path / "home")}
    root = _set(tmp_path / "tiny")
    first = run_hearth("eval", str(root), "--json", env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    run = json.loads(first.stdout)
    assert run["set"] == "tiny/test" and run["queries"] == 4
    assert run["index_seconds"] is not None  # indexed this time
    assert run["metrics"]["ndcg@10"] >= 0.9 and run["metrics"]["recall@10"] == 1.0
    assert run["latency_p95_ms"] >= run["latency_p50_ms"] > 0
    assert run["settings"]["knowledge.top_k"] == 6
    # The index is kept and reused; the same search gives the same figures.
    second = run_hearth("eval", str(root), env=env, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "index reused" in second.stdout and "nDCG@10" in second.stdout
    listed = run_hearth("eval", "--runs", "--json", env=env)
    ids = [r["id"] for r in json.loads(listed.stdout)]
    assert len(ids) == 2
    same = run_hearth("eval", "--compare", ids[0], ids[1], env=env)
    assert same.returncode == 0, same.stderr
    assert "ndcg@10" in same.stdout and "regression" not in same.stdout
    # A run that found nothing is a regression: exit status 1, one sentence.
    worse = json.loads((tmp_path / "home" / "data" / "eval" / "runs" / f"{ids[0]}.json")
                       .read_text())
    worse["metrics"] = dict.fromkeys(worse["metrics"], 0.0)
    worse_file = tmp_path / "worse.json"
    worse_file.write_text(json.dumps(worse))
    bad = run_hearth("eval", "--compare", ids[0], str(worse_file), env=env)
    assert bad.returncode == 1
    assert "fell by more than 0.01" in bad.stderr and "← regression" in bad.stdout
    # Runs of another set are not compared.
    other = _set(tmp_path / "other")
    (other / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "Bike tyre?"}) + "\n"
                                         + "".join(json.dumps({"_id": q, "text": t}) + "\n"
                                                   for q, (t, _) in list(QUERIES.items())[1:]))
    assert run_hearth("eval", str(other), env=env, timeout=300).returncode == 0
    mixed = run_hearth("eval", "--compare", ids[0], "last", env=env)
    assert mixed.returncode == 1 and "were made on different sets" in mixed.stderr


def test_answers_are_scored_offline_with_a_chosen_prompt(tmp_path: Path) -> None:
    env = {"HEARTH_HOME": str(tmp_path / "home")}
    root = _set(tmp_path / "tiny")
    out = run_hearth("eval", str(root), "--answers", "1", "--prompt", "hearth-answer@3",
                     "--json", env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    answers = json.loads(out.stdout)["answers"]
    assert answers["prompt"] == "hearth-answer@3" and answers["questions"] == 1
    assert answers["answered"] == 1 and answers["with_sources"] == 1
    assert 0.0 <= answers["citation_rate"] <= 1.0 and answers["answer_p50_s"] > 0
    unknown = run_hearth("eval", str(root), "--answers", "1", "--prompt", "nope@9", env=env,
                         timeout=300)
    assert unknown.returncode == 1 and "nope@9" in unknown.stderr


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: (r / "qrels" / "test.tsv").write_text("q1\td2\t1\n"), "has no header line"),
    (lambda r: (r / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\tnope\t1\n"), "names document 'nope'"),
    (lambda r: (r / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": ""}) + "\n"),
     "is empty"),
    (lambda r: (r / "corpus.jsonl").unlink(), "is not an evaluation set"),
])
def test_broken_sets_fail_with_one_sentence(tmp_path: Path, change, message: str) -> None:
    root = _set(tmp_path / "tiny")
    change(root)
    out = run_hearth("eval", str(root), env={"HEARTH_HOME": str(tmp_path / "home")})
    assert out.returncode == 1
    assert message in out.stderr and out.stderr.count("\n") == 1  # one sentence
