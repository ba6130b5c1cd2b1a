"""A passage the chunker makes longer than the embedding model reads (a
Markdown section whose list, comment and table tokenise longer joined than in
parts) no longer stops indexing: it is embedded from its head and kept whole."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

from app.core.knowledge import indexer
from app.core.knowledge.base import KnowledgeBase
from app.core.knowledge.chunker import chunk_document
from app.core.knowledge.loaders import load
from tests.helpers import REPO
from tests.integration.knowledge.conftest import consistent

SAMPLE = REPO / "tests" / "data" / "node-dns-resolveany.md"
# Passages of this size (the default before chunker version 3) cut one from the
# sample that is longer than the model reads; today's shorter ones do not.
LONGER = functools.partial(chunk_document, max_tokens=128, overlap=32)


def test_an_overlong_passage_is_indexed_whole_and_the_run_goes_on(
        kb: KnowledgeBase, docs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indexer, "chunk_document", LONGER)
    shutil.copyfile(SAMPLE, docs / "dns.md")
    (docs / "after.md").write_text("The lighthouse keeper logs the weather every night.\n")
    assert kb.embedder is not None
    kb.add_folder(docs)
    stats = kb.reconcile()
    # The sample still holds a passage longer than the model reads (if the
    # chunker stops making one, this test has nothing left to check).
    chunks = LONGER(load(str(SAMPLE), SAMPLE.read_bytes()), kb.embedder)
    longest = max(kb.embedder.count([c.text for c in chunks]))
    assert longest > kb.embedder.max_tokens - 2
    assert stats.indexed == 2 and stats.failed == 0
    assert consistent(kb)
    hits = kb.search("resolveAny ANY query records type property", 3)
    assert hits and hits[0].path == str(docs / "dns.md")
    assert kb.search("lighthouse keeper weather", 1)[0].path == str(docs / "after.md")
