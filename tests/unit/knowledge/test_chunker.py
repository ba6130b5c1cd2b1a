"""Chunking with the embedding model's own tokenizer: structure followed,
never longer than the model reads, lines and pages kept."""

from __future__ import annotations

import itertools

import pytest

from app.core.knowledge.base import shared_embedder
from app.core.knowledge.chunker import (
    CHUNK_TOKENS,
    CONTEXT_SEPARATOR,
    CONTEXT_TOKENS,
    MIN_TOKENS,
    chunk_document,
    sentences,
)
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
        assert c.body.split("\n")[0] in first or first.startswith(c.body.split("\n")[0])
        assert c.body.split("\n")[-1] in last


def test_markdown_headings_start_chunks_and_lines_match(emb: MiniLMEmbedder) -> None:
    sections = []
    for i in range(6):
        body = " ".join(f"Sentence {j} about topic {i} and its many details." for j in range(12))
        sections.append(f"## Section {i}\n\n{body}\n\n{body}")
    text = "# Title\n\n" + "\n\n".join(sections)
    chunks = chunk_document(Document("n.md", "markdown", (Segment(text),)), emb)
    assert all(c.tokens <= CHUNK_TOKENS + CONTEXT_TOKENS + 1 for c in chunks)
    assert all(_real_tokens(emb, c.text) <= 256 for c in chunks)
    starts = [c.body.split("\n")[0] for c in chunks]
    # Each section starts a chunk; the short title joins the first one.
    assert chunks[0].text.startswith("# Title\n\n## Section 0")
    assert sum(s.startswith("## Section") for s in starts) == 5
    # Every later passage carries the headings above it as its first line.
    for c in chunks[1:]:
        assert c.text.startswith(c.context + "\n")
        if c.body.startswith("## Section"):
            assert c.context == "Title"  # its own heading is in the passage
        else:
            assert c.context.startswith("Title" + CONTEXT_SEPARATOR + "Section ")
            assert f"about topic {c.context[-1]}" in c.body
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


def test_one_megabyte_single_line_is_cut_between_words(emb: MiniLMEmbedder) -> None:
    words = ("alpha beta gamma delta epsilon zeta eta theta iota kappa " * 20000)[:1_000_000]
    chunks = chunk_document(Document("big.txt", "text", (Segment(words),)), emb)
    assert len(chunks) > 100
    assert all(c.start_line == c.end_line == 1 for c in chunks)
    assert max(_real_tokens(emb, c.text) for c in chunks[:50]) <= 256
    assert all(c.tokens <= CHUNK_TOKENS for c in chunks[:-1])
    # The small rest at the end joins the last passage instead of standing alone.
    assert chunks[-1].tokens <= CHUNK_TOKENS + MIN_TOKENS
    vocabulary = set(words.split()[:10])
    for c in chunks[:-1]:
        assert set(c.text.split()) <= vocabulary  # no word cut in two
    # Nothing is lost: the pieces cover the whole line.
    assert sum(len(c.text) for c in chunks) >= len(words.strip()) * 0.99


def test_a_run_without_spaces_is_still_cut_to_fit(emb: MiniLMEmbedder) -> None:
    url = "https://example.com/" + "/".join(f"seg{i}" for i in range(3000))
    chunks = chunk_document(Document("b.txt", "text", (Segment(url),)), emb)
    assert len(chunks) > 10
    assert all(c.tokens <= CHUNK_TOKENS for c in chunks)
    assert "".join(c.text for c in chunks) == url


def test_words_and_numbers_are_never_split(emb: MiniLMEmbedder) -> None:
    # One long line of measurements, like an abstract: numbers with decimals,
    # signs and units everywhere, and few sentence ends.
    parts = [f"group {i} scored {i}.{i + 15} +/- 0.{i + 3} mmol/L versus {i * 7}.25"
             for i in range(120)]
    line = ", ".join(parts) + "."
    chunks = chunk_document(Document("m.txt", "text", (Segment(line),)), emb)
    assert len(chunks) > 3
    allowed = set(line.replace(",", " ").split())
    for c in chunks:
        for word in c.body.replace(",", " ").split():
            assert word in allowed, f"{word!r} was cut from a longer word or number"


def test_a_title_line_is_carried_into_its_passages_not_a_passage_alone(
        emb: MiniLMEmbedder) -> None:
    title = "Vitamin D supplementation and fracture risk in older adults."
    body = " ".join(
        f"Finding {i}: the trial with {100 + i} participants showed a change of {i}.5 percent "
        f"in outcome {i} over {i + 2} years." for i in range(14))
    text = f"{title}\n\n{body}\n"
    chunks = chunk_document(Document("a.txt", "text", (Segment(text),)), emb)
    assert len(chunks) >= 3
    assert all(c.body.strip() != title for c in chunks)  # never the title alone
    assert chunks[0].text.startswith(title + "\n") and chunks[0].context == ""
    for c in chunks[1:]:
        assert c.context == title and c.text.startswith(title + "\n")
        assert c.start_line == 3  # the cited lines are the body's


def test_long_text_overlaps_by_whole_sentences(emb: MiniLMEmbedder) -> None:
    body = " ".join(f"Sentence number {i} reports result {i} in its own words." for i in range(60))
    chunks = chunk_document(Document("s.txt", "text", (Segment(body),)), emb)
    assert len(chunks) >= 4
    for a, b in itertools.pairwise(chunks):
        first = sentences(b.body)[0].strip()
        assert first.startswith("Sentence number") and first.endswith(".")
        assert first in a.body  # the next passage opens with the last one's sentence


def test_no_punctuation_only_or_tiny_leftover_passages(emb: MiniLMEmbedder) -> None:
    para = " ".join(f"Point {i} matters for the plan we discussed." for i in range(14))
    text = f"{para}\n\n.\n\n{para} Last.\n\n.\n"
    chunks = chunk_document(Document("p.txt", "text", (Segment(text),)), emb)
    for c in chunks:
        assert any(ch.isalnum() for ch in c.body)
    assert all(c.tokens >= 16 for c in chunks)


def test_sentences_join_back_into_the_line() -> None:
    line = 'He said "Stop." Then (Fig. 2) showed 1.15 mg. Really? Yes! e.g. this stays.'
    pieces = sentences(line)
    assert "".join(pieces) == line
    assert pieces[0] == 'He said "Stop." '
    assert any(p.startswith("Really?") for p in pieces)
    assert not any(p.startswith("this stays") for p in pieces)


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
