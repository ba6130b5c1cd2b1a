"""Fixtures: a real knowledge base (real Chroma, real ONNX model) in the test's HEARTH_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.knowledge.base import KnowledgeBase
from app.paths import Paths
from app.settings import Settings


@pytest.fixture
def kb(paths: Paths, settings: Settings) -> Iterator[KnowledgeBase]:
    base = KnowledgeBase(paths, settings, writer=True)
    yield base
    base.close()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    return d


def consistent(kb: KnowledgeBase) -> bool:
    """The manifest and Chroma list exactly the same chunks, and no file is half-indexed."""
    assert kb.vectors is not None
    half = kb.manifest.query("SELECT COUNT(*) FROM files WHERE status IN ('indexing', 'pending')")
    counts = kb.manifest.query(
        "SELECT COUNT(*) FROM files f WHERE chunk_count != "
        "(SELECT COUNT(*) FROM chunks c WHERE c.file_id = f.id)")
    return (kb.manifest.all_chunk_ids() == kb.vectors.all_ids() and half[0][0] == 0
            and counts[0][0] == 0)


def check_stopped_cleanly(kb: KnowledgeBase, folder: Path, files: int) -> None:
    """A writer stopped mid-scan closed the index cleanly: no repair needed, no
    file left half-indexed, the manifest and Chroma agree, and a reconcile
    reads what was not read yet."""
    assert not kb.needs_repair
    assert kb.vectors is not None
    assert kb.manifest.query("SELECT COUNT(*) FROM files WHERE status = 'indexing'")[0][0] == 0
    assert kb.manifest.all_chunk_ids() == kb.vectors.all_ids()
    assert kb.status()["folders"][0]["path"] == str(folder)
    kb.reconcile()
    assert kb.status()["folders"][0]["indexed"] == files
    assert consistent(kb)


def paths_found(kb: KnowledgeBase, query: str, k: int = 5) -> list[str]:
    return [r.path for r in kb.search(query, k)]
