"""Chunking with the embedding model's own tokenizer: structure followed,
never longer than the model reads, lines and pages kept."""

from __future__ import annotations

import itertools

import pytest

from app.core.knowledge.base import shared_embedder
from app.core.knowledge.chunker import CHUNK_TOKENS, chunk_document
from app.core.knowledge.embedder import MiniLMEmbedder
from app.core.knowledge.loaders import Document, Segment, load
from tests.kb_helpers import make_pdf


@pytest.fixture(scope="module")
def emb() -> MiniLMEmbedder:
    return shared_embedder()


def _real_tokens(emb: MiniLMEmbedder, text: str) -> int:
    return len(emb.tokenizer.encode(text).ids)  # with [CLS] and [SEP]


def _check_lines(text: str, chunks: list) -> None:  # type: ignore[type-arg]
    lines = text.split("\n")
    for c in chunks:
        first = lines[c.start_line - 1]
        last = lines[c.end_line - 1]
        assert c.text.split("\n")[0] in first or first.startswith(c.text.split("\n")[0])
        assert c.text.split("\n")[-1] in last


def test_markdown_headings_start_chunks_and_lines_match(emb: MiniLMEmbedder) -> None:
    sections = []
    for i in range(6):
        body = " ".join(f"Sentence {j} about topic {i} and its many details." for j in range(12))
        sections.append(f"## Section {i}\n\n{body}\n\n{body}")
    text = "# Title\n\n" + "\n\n".join(sections)
    chunks = chunk_document(Document("n.md", "markdown", (Segment(text),)), emb)
    assert all(c.tokens <= CHUNK_TOKENS for c in chunks)
    assert all(_real_tokens(emb, c.text) <= 256 for c in chunks)
    starts = [c.text.split("\n")[0] for c in chunks]
    # Each section starts a chunk; the short title joins the first one.
    assert chunks[0].text.startswith("# Title\n\n## Section 0")
    assert sum(s.startswith("## Section") for s in starts) == 5
    _check_lines(text, chunks)


def test_fenced_code_is_not_cut_by_headings_inside_it(emb: MiniLMEmbedder) -> None:
    text = "# Doc\n\nIntro.\n\n```python\n# not a heading\nx = 1\n```\n\nAfter."
    chunks = chunk_document(Document("n.md", "markdown", (Segment(text),)), emb)
    assert len(chunks) == 1 and "# not a heading" in chunks[0].text
    assert (chunks[0].start_line, chunks[0].end_line) == (1, 10)


def test_code_definitions_start_chunks(emb: MiniLMEmbedder) -> None:
    funcs = []
    for i in range(8):
        body = "\n".join(f"    value_{k} = compute_{i}(value_{k - 1}, {k})" for k in range(1, 9))
        funcs.append(f"def function_{i}(x):\n{body}\n\n    return value_8\n")
    text = "import os\n\n\n" + "\n\n".join(funcs)
    chunks = chunk_document(Document("m.py", "code", (Segment(text),)), emb)
    assert sum(c.text.startswith("def function_") for c in chunks) >= 6
    # A blank line inside a function body does not split the function.
    assert not any(c.text.lstrip().startswith("return value_8") for c in chunks)
    _check_lines(text, chunks)


def test_one_megabyte_single_line_is_cut_at_token_boundaries(emb: MiniLMEmbedder) -> None:
    words = ("alpha beta gamma delta epsilon zeta eta theta iota kappa " * 20000)[:1_000_000]
    chunks = chunk_document(Document("big.txt", "text", (Segment(words),)), emb)
    assert len(chunks) > 100
    assert all(c.start_line == c.end_line == 1 for c in chunks)
    assert max(_real_tokens(emb, c.text) for c in chunks[:50]) <= 256
    assert all(c.tokens <= CHUNK_TOKENS for c in chunks)
    # Nothing is lost: the pieces cover the whole line.
    assert sum(len(c.text) for c in chunks) >= len(words.strip()) * 0.99


def test_overlap_carries_context_between_chunks(emb: MiniLMEmbedder) -> None:
    text = "\n".join(f"Line {i} says something different about number {i}." for i in range(200))
    chunks = chunk_document(Document("t.txt", "text", (Segment(text),)), emb)
    assert len(chunks) > 3
    overlapping = sum(b.start_line <= a.end_line for a, b in itertools.pairwise(chunks))
    assert overlapping >= len(chunks) - 2


def test_pdf_chunks_keep_their_page_and_never_span_pages(emb: MiniLMEmbedder) -> None:
    doc = load("p.pdf", make_pdf(["Alpha page one", "Beta page two", "Gamma page three"]))
    chunks = chunk_document(doc, emb)
    assert [(c.page, c.text.strip()) for c in chunks] == [
        (1, "Alpha page one"), (2, "Beta page two"), (3, "Gamma page three")]
