"""`hearth eval`: how well the index finds the right files, measured on a set
of questions with known answers, stored as runs that can be compared."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.cli_common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, fail, load_settings
from app.cli_knowledge import Reporter


def add_parsers(sub: Any) -> None:
    ev = sub.add_parser(
        "eval", help="measure how well search finds the right files",
        description="Index an evaluation set (a BEIR folder: corpus.jsonl, queries.jsonl, "
                    "qrels/*.tsv) or take a .jsonl of questions about your indexed folders "
                    "({\"question\": …, \"files\": […]} a line), search every question and "
                    "report nDCG@10, Recall@10/@100, MRR@10 and search latency. Runs are kept; "
                    "--compare shows what changed.")
    ev.add_argument("set", nargs="?", help="the evaluation set (folder or .jsonl file)")
    ev.add_argument("--split", metavar="NAME", help="which qrels/NAME.tsv to use (default: test, "
                    "or the only one)")
    ev.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    ev.add_argument("--reindex", action="store_true",
                    help="index the set's documents again from scratch")
    ev.add_argument("--json", action="store_true", help="print the run as JSON")
    ev.add_argument("--compare", nargs=2, metavar=("A", "B"),
                    help="compare two stored runs (ids, 'last', or files)")
    ev.add_argument("--threshold", type=float, default=0.01, metavar="X",
                    help="with --compare: a drop larger than this in any quality metric is a "
                         "regression (exit status 1); default 0.01")
    ev.add_argument("--runs", action="store_true", help="list the stored runs")
    ev.add_argument("--answers", nargs="?", type=int, const=20, default=None, metavar="N",
                    help="also ask the local model the first N questions (default 20), offline, "
                         "and report how often answers cite a passage and how long they take")
    ev.add_argument("--prompt", metavar="ID@VERSION",
                    help="with --answers: frame the questions with this versioned prompt")


def cmd_eval(args: argparse.Namespace) -> int:
    from app.core.errors import HearthError
    from app.paths import DataDirError, get_paths

    paths = get_paths()
    try:
        if args.runs:
            return _list_runs(paths, args.json)
        if args.compare:
            return _compare(paths, args)
        if not args.set:
            return fail("give an evaluation set, e.g. hearth eval ~/eval/scifact "
                         "(or --compare A B, or --runs).", EXIT_USAGE)
        if args.limit is not None and args.limit < 1:
            return fail("--limit must be 1 or more.", EXIT_USAGE)
        if args.answers is not None and args.answers < 1:
            return fail("--answers must be 1 or more.", EXIT_USAGE)
        if args.prompt and args.answers is None:
            return fail("--prompt is for --answers: it frames the questions the model answers.",
                         EXIT_USAGE)
        return _run(paths, args)
    except (HearthError, DataDirError) as exc:
        return fail(str(exc))


def _run(paths: Any, args: argparse.Namespace) -> int:
    from app.core.knowledge import evaluate as E

    es = E.load_set(args.set, args.split)
    settings = load_settings()
    quiet = args.json or not sys.stderr.isatty()
    print(f"Evaluating {es.name}: {len(es.queries)} questions"
          + (f", {len(es.corpus)} documents" if es.corpus else ""), file=sys.stderr)

    def query_progress(done: int, total: int) -> None:
        if not quiet and (done == total or done % 25 == 0):
            print(f"\r  searched {done}/{total}", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)

    with Reporter() as reporter:
        run, kb = E.evaluate(es, paths, settings, reindex=args.reindex, limit=args.limit,
                             index_progress=reporter, query_progress=query_progress)
    try:
        if args.answers is not None:
            def answer_progress(done: int, total: int) -> None:
                if not quiet:
                    print(f"\r  answered {done}/{total}", end="" if done < total else "\n",
                          file=sys.stderr, flush=True)

            run.answers = E.answer_questions(es, kb, paths, settings, prompt=args.prompt,
                                             limit=args.answers, progress=answer_progress)
    finally:
        kb.close()
    where = E.save_run(paths, run)
    if args.json:
        print(json.dumps(run.as_dict(), indent=2))
        return EXIT_OK
    indexed = (f"  indexed in {run.index_seconds:.1f} s" if run.index_seconds is not None
               else "  index reused")
    print(f"{run.set}  ({run.queries} questions){indexed}")
    print(f"  {E.summary(run)}")
    if run.answers:
        a = run.answers
        print(f"  answers ({a['prompt']}, {a['answered']}/{a['questions']}): cite a passage "
              f"{a['citation_rate']:.0%}, cite a relevant file {a['relevant_citation_rate']:.0%}, "
              f"answer p50 {a['answer_p50_s']:.1f} s, p95 {a['answer_p95_s']:.1f} s")
    print(f"  run {run.id}  ({where})")
    return EXIT_OK


def _list_runs(paths: Any, as_json: bool) -> int:
    from app.core.knowledge import evaluate as E

    runs = E.list_runs(paths)
    if as_json:
        print(json.dumps([r.as_dict() for r in runs], indent=2))
        return EXIT_OK
    if not runs:
        print("No evaluation runs yet; run `hearth eval SET`.")
    for r in runs:
        print(f"{r.id}  {r.set}  nDCG@10 {r.metrics['ndcg@10']:.4f}  "
              f"R@100 {r.metrics['recall@100']:.4f}")
    return EXIT_OK


def _compare(paths: Any, args: argparse.Namespace) -> int:
    from app.core.knowledge import evaluate as E

    if args.threshold < 0:
        return fail("--threshold must be 0 or more.", EXIT_USAGE)
    a, b = (E.load_run(paths, ref) for ref in args.compare)
    changes, regressions = E.compare(a, b, args.threshold)
    rates = [(k, a.answers.get(k), b.answers.get(k)) for k in ("citation_rate",
             "relevant_citation_rate", "answer_p50_s") if a.answers and b.answers]
    if args.json:
        print(json.dumps({"a": a.id, "b": b.id, "set": a.set, "changes": [
            {"metric": c.metric, "a": c.before, "b": c.after, "delta": c.delta}
            for c in changes], "regressions": regressions}, indent=2))
    else:
        print(f"{a.set}: {a.id} → {b.id}")
        for c in changes:
            mark = "  ← regression" if c.metric in regressions else ""
            print(f"  {c.metric:<15} {c.before:10.4f} {c.after:10.4f} {c.delta:+10.4f}{mark}")
        if rates:
            print(f"  answers: {a.answers['prompt']} → {b.answers['prompt']}")  # type: ignore[index]
            for name, x, y in rates:
                print(f"  {name:<23} {x:10.4f} {y:10.4f}")
    if regressions:
        print(f"hearth: {', '.join(regressions)} fell by more than {args.threshold}.",
              file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK
