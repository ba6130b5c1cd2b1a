"""A long document found only as a whole (by its keywords, none of its
passages by themselves) brings only its passages closest to the question, and
search gives the same files and scores as when it brought them all. Real
Chroma, the real model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.core.knowledge import retriever
from app.core.knowledge.base import KnowledgeBase

TOPICS = ("volcano lava eruption crater", "sourdough starter flour yeast",
          "tides moon ocean gravity", "violin bow strings rosin")
# Two made-up words per long document, in passages of their own; short files
# hold one of them, so their passages outrank the long document's by keyword
# while the long document, which holds both, ranks first as a whole.
PAIRS = (("zorblax", "quiffle"), ("brandock", "tellimar"), ("vostrin", "plumeck"),
         ("gandrel", "mirthow"))


def _long(topic: str, pair: tuple[str, str], paragraphs: int = 40) -> str:
    words = topic.split()
    body = []
    for i in range(paragraphs):
        special = pair[0] if i in (5, 15, 25) else pair[1] if i in (10, 20, 30) else "plain"
        body.append(f"In part {i} these notes on the {words[i % 4]} and the {words[(i + 1) % 4]} "
                    f"say something {special} about the {words[(i + 2) % 4]} once more.")
    return "\n\n".join(body) + "\n"


def test_long_documents_bring_their_closest_passages_with_the_same_results(
        kb: KnowledgeBase, docs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i, (topic, pair) in enumerate(zip(TOPICS, PAIRS, strict=True)):
        (docs / f"long{i}.txt").write_text(_long(topic, pair), encoding="utf-8")
        (docs / f"other{i}.txt").write_text(_long(topic, ("plain", "plain")), encoding="utf-8")
        for j, word in enumerate(pair * 2):
            (docs / f"short{i}-{j}.txt").write_text(
                f"The word {word} is written here in a short note.\n",
                encoding="utf-8")
    kb.add_folder(docs)
    kb.reconcile()
    assert min(f.chunk_count for f in kb.manifest.files() if Path(f.path).name.startswith("long")
               ) > retriever.UNSEEN_PASSAGES
    # Few candidates from each side, so most files are found only as documents.
    monkeypatch.setattr(retriever, "CANDIDATES", 2)
    brought: list[int] = []
    real_hits = kb.manifest.hits

    def hits(ids: Any) -> Any:  # a spy on the real manifest
        brought.append(len(ids))
        return real_hits(ids)

    monkeypatch.setattr(kb.manifest, "hits", hits)

    def run(k: int, per_file: int) -> list[tuple[str, float, float]]:
        out = []
        for q in [" ".join(p) for p in PAIRS]:
            out += [(r.path, round(r.score, 6), r.vector_score or 0.0)
                    for r in kb.search(q, k, per_file=per_file)]
        return out

    for k, per_file in ((1, 1), (1, 2)):
        trimmed = run(k, per_file)
        trimmed_rows = sum(brought)
        brought.clear()
        monkeypatch.setattr(retriever, "UNSEEN_PASSAGES", 10_000)
        whole = run(k, per_file)
        whole_rows = sum(brought)
        brought.clear()
        monkeypatch.setattr(retriever, "UNSEEN_PASSAGES", 3)
        # The same files with the same scores; a passage shown is at least as
        # close to the question (where passages tie on the scale, the closest
        # now comes first rather than the first in the file).
        assert [t[:2] for t in trimmed] == [w[:2] for w in whole]
        assert all(t[2] >= w[2] - 1e-6 for t, w in zip(trimmed, whole, strict=True))
        assert trimmed_rows < whole_rows  # documents were found only as a whole, and trimmed
