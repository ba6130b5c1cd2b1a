"""The local copy of the vectors on real Chroma and the real model: it follows
every add and delete, a search reads keyword-found passages' vectors from it
rather than from Chroma, and an index without it (or after a crash) gets it
filled by the next reconcile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.core.knowledge.base import KnowledgeBase
from app.core.knowledge.store import vector_cache_path
from app.paths import Paths
from app.settings import Settings
from tests.integration.knowledge.conftest import consistent

FILES = {
    "etna.md": "# Volcanoes\n\nMount Etna is an active stratovolcano on the east coast of "
               "Sicily. Its eruptions are frequent and its lava flows reach the villages.\n",
    "bread.txt": "Sourdough bread rises with a starter of wild yeast and lactic acid "
                 "bacteria. Feed the starter with flour and water every day.\n",
    "tides.txt": "Tides are caused by the gravitational pull of the moon and the sun on "
                 "the oceans; spring tides come at new and full moon.\n",
    "zebra.txt": "The quagga was a subspecies of plains zebra that lived in South Africa "
                 "until the nineteenth century.\n",
}


def _write(folder: Path) -> None:
    for name, text in FILES.items():
        (folder / name).write_text(text, encoding="utf-8")


def _cached(kb: KnowledgeBase) -> dict[str, np.ndarray]:
    """Everything the copy holds."""
    assert kb.vectors is not None and kb.vectors.cache is not None
    return kb.vectors.cache.get(sorted(kb.vectors.cache.ids()))


def _chroma(kb: KnowledgeBase, ids: list[str]) -> dict[str, np.ndarray]:
    assert kb.vectors is not None
    got = kb.vectors.collection.get(ids=ids, include=["embeddings"])
    return {i: np.asarray(v, dtype=np.float32)
            for i, v in zip(got["ids"], got["embeddings"], strict=True)}


def test_the_copy_follows_chroma_and_search_reads_it(kb: KnowledgeBase, docs: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _write(docs)
    kb.add_folder(docs)
    kb.reconcile()
    assert consistent(kb)
    cached = _cached(kb)
    assert set(cached) == kb.manifest.all_chunk_ids()
    chroma = _chroma(kb, sorted(cached))
    for cid, v in cached.items():
        assert np.array_equal(v, chroma[cid])

    # Chroma is asked for nearest neighbours, never for stored vectors (a spy
    # on the real collection: it records calls and passes them on).
    assert kb.vectors is not None
    gets: list[Any] = []
    real_get = kb.vectors.collection.get

    def spy(*args: Any, **kwargs: Any) -> Any:
        gets.append(kwargs.get("ids"))
        return real_get(*args, **kwargs)

    monkeypatch.setattr(kb.vectors.collection, "get", spy)
    results = kb.search("quagga zebra subspecies", 4)
    assert results[0].path == str(docs / "zebra.txt")
    assert all(r.vector_score is not None for r in results)
    some = sorted(cached)[:3]
    assert all(np.array_equal(v, cached[c]) for c, v in kb.vectors.vectors(some).items())
    assert gets == []
    # An id the copy lacks is asked of Chroma.
    kb.vectors.cache.delete(some[:1])
    assert set(kb.vectors.vectors(some)) == set(some)
    assert gets == [some[:1]]
    kb.vectors.cache.put(some[:1], np.stack([cached[some[0]]]))
    monkeypatch.undo()

    # A changed file and a deleted one: the copy loses their old vectors.
    (docs / "bread.txt").write_text("Rye flour makes a darker, denser loaf.\n", encoding="utf-8")
    (docs / "tides.txt").unlink()
    kb.reconcile()
    assert set(_cached(kb)) == kb.manifest.all_chunk_ids()


def test_search_falls_back_to_chroma_and_reconcile_fills_the_copy(
        paths: Paths, settings: Settings, docs: Path) -> None:
    _write(docs)
    with KnowledgeBase(paths, settings, writer=True) as kb:
        kb.add_folder(docs)
        kb.reconcile()
        before = [(r.path, r.score, r.vector_score) for r in kb.search("volcano in Sicily", 4)]
        assert kb.vectors is not None
        name = kb.vectors.name
        directory = kb.dir
    # An index made before there was a copy, or one whose copy was lost.
    for suffix in ("", "-wal", "-shm"):
        Path(str(vector_cache_path(directory, name)) + suffix).unlink(missing_ok=True)
    with KnowledgeBase(paths, settings) as reader:
        got = [(r.path, r.score, r.vector_score) for r in reader.search("volcano in Sicily", 4)]
        assert [g[0] for g in got] == [b[0] for b in before]
        for g, b in zip(got, before, strict=True):
            assert g[2] == pytest.approx(b[2], abs=1e-6)
        assert reader.vectors is not None and reader.vectors.cache is not None
        assert reader.vectors.cache.count() == 0
    with KnowledgeBase(paths, settings, writer=True) as kb:
        assert kb.vectors is not None and not kb.vectors.cache_complete()
        kb.reconcile()
        assert kb.vectors.cache_complete()
        cached = _cached(kb)
        assert set(cached) == kb.manifest.all_chunk_ids()
        chroma = _chroma(kb, sorted(cached))
        assert all(np.array_equal(v, chroma[c]) for c, v in cached.items())
        again = [(r.path, r.score, r.vector_score) for r in kb.search("volcano in Sicily", 4)]
        assert [a[0] for a in again] == [b[0] for b in before]
        for a, b in zip(again, before, strict=True):
            assert a[1] == pytest.approx(b[1], abs=1e-6)


def test_a_copy_holding_vectors_chroma_lost_is_trimmed(kb: KnowledgeBase, docs: Path) -> None:
    _write(docs)
    kb.add_folder(docs)
    kb.reconcile()
    assert kb.vectors is not None and kb.vectors.cache is not None
    # As after a crash between the two writes: one vector only in the copy.
    kb.vectors.cache.put(["left-over"], np.ones((1, 384), dtype=np.float32))
    assert not kb.vectors.cache_complete()
    assert kb.vectors.fill_cache() == 0
    assert kb.vectors.cache.ids() == kb.manifest.all_chunk_ids()
