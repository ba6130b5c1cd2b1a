"""Document → chunks that follow the text's structure (headings, paragraphs,
code blocks and definitions), sized in the embedding model's own tokens.

A chunk is never longer than the model reads: lines too long on their own are
cut at token boundaries. Each chunk keeps its first and last line (and page).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from app.core.knowledge.embedder import TokenCounter
from app.core.knowledge.loaders import Document

# Tokens of text in one chunk. The model reads at most 256 (254 of text plus
# [CLS] and [SEP]), but all-MiniLM-L6-v2 was trained on inputs of up to 128
# tokens and matches best at that length; shorter inputs also embed faster.
CHUNK_TOKENS = 128
OVERLAP_TOKENS = 20
# A new section (heading, definition) starts a new chunk once the current one
# holds at least this many tokens; smaller pieces join their neighbours.
MIN_TOKENS = 32


@dataclass(frozen=True)
class Chunk:
    text: str
    start_line: int
    end_line: int
    page: int | None
    tokens: int

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass
class _Unit:
    text: str
    line: int
    page: int | None
    tokens: int
    piece: int = 0  # >0: a later piece of a line cut at token boundaries


@dataclass
class _Block:
    lines: list[tuple[int, str]]
    page: int | None
    boundary: bool  # starts a section: prefer to start a new chunk here
    hard: bool = False  # must start a new chunk (new page)


_MD_HEADING = re.compile(r"^ {0,3}#{1,6}(\s|$)")
_MD_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_RST_UNDERLINE = re.compile(r"^([=\-`:'\"~^_*+#<>])\1{2,}\s*$")
_ORG_HEADING = re.compile(r"^\*+\s")
_CODE_DEF = re.compile(
    r"^(?:@\w|(?:export\s+|pub(?:\(\w+\))?\s+|public\s+|private\s+|protected\s+|static\s+|"
    r"async\s+|abstract\s+|final\s+|override\s+|inline\s+|extern\s+|default\s+)*"
    r"(?:def|class|function|fn|func|impl|struct|enum|trait|interface|type|module|"
    r"namespace|object|record|macro|defmodule|defn?|sub|proc|let|const|var|val)\b)"
)


def chunk_document(doc: Document, counter: TokenCounter, max_tokens: int = CHUNK_TOKENS,
                   overlap: int = OVERLAP_TOKENS) -> list[Chunk]:
    blocks = list(_blocks(doc))
    units_by_block = _units(blocks, counter, max_tokens)
    return _pack(blocks, units_by_block, max_tokens, overlap)


def _blocks(doc: Document) -> Iterator[_Block]:
    first_segment = True
    for seg in doc.segments:
        lines = [(seg.start_line + i, text) for i, text in enumerate(seg.text.split("\n"))]
        hard = doc.kind == "pdf" and not first_segment
        first_segment = False
        for block in _split(doc.kind, lines, seg.page):
            if hard:
                block.hard, hard = True, False
            yield block


def _split(kind: str, lines: list[tuple[int, str]], page: int | None) -> Iterator[_Block]:
    """Blocks: runs of non-blank lines, cut at structure (headings, fences, defs)."""
    current: list[tuple[int, str]] = []
    boundary = False
    fence: str | None = None

    def flush() -> Iterator[_Block]:
        nonlocal current, boundary
        if any(t.strip() for _, t in current):
            yield _Block(current, page, boundary)
        current, boundary = [], False

    for i, (no, text) in enumerate(lines):
        stripped = text.strip()
        if kind == "markdown":
            m = _MD_FENCE.match(text)
            if fence is not None:  # inside a code block: it stays one block
                current.append((no, text))
                if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                    fence = None
                    yield from flush()
                continue
            if m:
                yield from flush()
                fence = m.group(1)
                current.append((no, text))
                continue
            if _MD_HEADING.match(text):
                yield from flush()
                boundary = True
                current.append((no, text))
                yield from flush()
                continue
            if _SETEXT.match(text) and len(current) == 1 and current[0][1].strip():
                # "Title\n=====": the previous line was a heading.
                head = current[0]
                current = []
                boundary = True
                current = [head, (no, text)]
                continue
        elif kind == "rst":
            nxt = lines[i + 1][1] if i + 1 < len(lines) else ""
            if (stripped and _RST_UNDERLINE.match(nxt)
                    and len(nxt.rstrip()) >= len(text.rstrip()) and not _RST_UNDERLINE.match(text)):
                yield from flush()
                boundary = True
        elif kind == "org":
            if _ORG_HEADING.match(text):
                yield from flush()
                boundary = True
        elif kind == "code" and text[:1] not in ("", " ", "\t") and _CODE_DEF.match(text):
            # A top-level definition; keep decorators/comments just above it with it.
            prev_is_part = current and (current[-1][1].startswith(("@", "#", "//", "/*", "*"))
                                        or current[-1][1].startswith("///"))
            if not prev_is_part:
                yield from flush()
                boundary = True
        if not stripped:
            if kind == "code" and fence is None and current and current[-1][1][:1] in (" ", "\t"):
                # A blank line inside an indented body does not end the block...
                nxt = lines[i + 1][1] if i + 1 < len(lines) else ""
                if nxt[:1] in (" ", "\t"):
                    current.append((no, text))
                    continue
            yield from flush()
            continue
        current.append((no, text))
    yield from flush()


def _units(blocks: list[_Block], counter: TokenCounter, max_tokens: int) -> list[list[_Unit]]:
    flat = [text for b in blocks for _, text in b.lines]
    counts = iter(counter.count(flat))
    out: list[list[_Unit]] = []
    for b in blocks:
        units: list[_Unit] = []
        for no, text in b.lines:
            n = next(counts)
            if n <= max_tokens:
                units.append(_Unit(text, no, b.page, n))
                continue
            for k, piece in enumerate(counter.split(text, max_tokens)):
                units.append(_Unit(piece, no, b.page, counter.count([piece])[0], k))
        out.append(units)
    return out


def _pack(blocks: list[_Block], units_by_block: list[list[_Unit]], max_tokens: int,
          overlap: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    cur: list[_Unit] = []
    fresh = 0  # units in `cur` that are not overlap carried from the last chunk

    def size() -> int:
        return sum(u.tokens for u in cur)

    def flush(carry: bool) -> None:
        nonlocal cur, fresh
        if fresh:
            chunks.append(_make(cur))
        tail: list[_Unit] = []
        if carry and fresh:
            total = 0
            for u in reversed(cur):
                if total + u.tokens > overlap or len(tail) + 1 >= len(cur):
                    break
                tail.insert(0, u)
                total += u.tokens
        cur, fresh = tail, 0

    for block, units in zip(blocks, units_by_block, strict=True):
        block_tokens = sum(u.tokens for u in units)
        if block.hard or (block.boundary and size() >= MIN_TOKENS):
            flush(carry=False)
        elif fresh and size() + block_tokens > max_tokens and size() >= max_tokens // 2:
            # The block would not fit: start it in a new chunk, unless the current
            # one is still small; then fill it up and cut the block between lines.
            flush(carry=True)
        for u in units:
            if size() + u.tokens > max_tokens:
                if fresh:
                    flush(carry=True)
                while cur and size() + u.tokens > max_tokens:
                    cur.pop(0)  # the carried overlap leaves room for new text
            cur.append(u)
            fresh += 1
    flush(carry=False)
    return chunks


def _make(units: list[_Unit]) -> Chunk:
    parts: list[str] = []
    prev: _Unit | None = None
    for u in units:
        if prev is not None:
            if u.line == prev.line and u.piece > 0:
                pass  # pieces of one long line join without a separator
            elif u.line > prev.line + 1:
                parts.append("\n\n")
            else:
                parts.append("\n")
        parts.append(u.text)
        prev = u
    return Chunk("".join(parts), units[0].line, units[-1].line, units[0].page,
                 sum(u.tokens for u in units))
