"""The embedder on the real model: a small batch (a question) runs on one
thread and gives the same vectors as the multi-threaded session."""

from __future__ import annotations

import numpy as np

from app.core.knowledge import embedder as emb
from app.core.knowledge.embedder import MiniLMEmbedder

QUESTION = "How does the starter make sourdough bread rise?"
LONG = " ".join(["Sourdough bread rises with a starter of wild yeast and lactic acid bacteria."]
                * 8)


def test_a_question_runs_on_one_thread_with_the_same_vector() -> None:
    e = MiniLMEmbedder(threads=2)
    one = e.embed([QUESTION])
    assert set(e._sessions) == {1}  # the question alone never woke the 2-thread session
    e.embed([LONG, LONG, LONG])
    assert set(e._sessions) == {1, 2}
    both = e._session(2)
    enc = e.tokenizer.encode_batch([QUESTION])[0]
    ids = np.array([enc.ids], dtype=np.int64)
    mask = np.ones_like(ids)
    hidden = both.run(None, {"input_ids": ids, "attention_mask": mask,
                             "token_type_ids": np.zeros_like(ids)})[0]
    assert np.allclose(one[0], emb.pool_and_normalise(hidden, mask)[0], atol=1e-5)
    assert abs(float(np.linalg.norm(one[0])) - 1.0) < 1e-5


def test_a_batch_of_one_thread_rows_and_wide_rows_keeps_the_input_order() -> None:
    e = MiniLMEmbedder(threads=2)
    texts = [LONG, QUESTION, LONG[:200]]
    together = e.embed(texts)
    apart = np.stack([e.embed([t])[0] for t in texts])
    assert np.allclose(together, apart, atol=1e-4)
