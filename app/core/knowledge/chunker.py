"""Document → passages that follow the text's structure (headings, paragraphs,
sentences, code blocks and definitions), sized in the embedding model's own
tokens.

- A title or heading is carried into every passage under it as a first line
  of context ("Title › Section"), never a passage of its own.
- Cuts fall between blocks, lines or sentences; a sentence too long on its own
  is cut between words (only a run without spaces, such as a long URL, is cut
  between tokens). Words and numbers are never split.
- Neighbouring passages of long text overlap by whole sentences or lines.
- No passage is only punctuation; tiny leftovers join the passage before them.

Each passage keeps its first and last line (and page). `CHUNKER_VERSION`
changes whenever the passages cut from the same text would change, so that
existing indexes are cut again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from app.core.knowledge.embedder import TokenCounter
from app.core.knowledge.loaders import Document

CHUNKER_VERSION = 3
# Tokens of text in one passage. The model reads at most 256 (254 of text plus
# [CLS] and [SEP]) and was trained on inputs of up to 128, but a question
# usually matches a sentence or two: a passage of a few sentences gives that
# match a vector of its own instead of averaging it with the rest of a long
# paragraph. Measured on a scientific-claims benchmark (file-level nDCG@10,
# vector side alone / fused): 128 tokens 0.6928 / 0.7460, 96 0.6985 / 0.7495,
# 80 0.6956 / 0.7491, 64 0.6976 / 0.7470, 48 0.6930 / 0.7460. The text
# embedded grows by 3 % (the heading context is repeated more often).
CHUNK_TOKENS = 96
# Most tokens of heading context put before a passage (on top of CHUNK_TOKENS).
CONTEXT_TOKENS = 32
# Neighbouring passages of long text share up to this many tokens of whole
# sentences or lines.
OVERLAP_TOKENS = 24
# A new section (heading, definition) starts a new passage once the current one
# holds at least this many tokens; smaller pieces join their neighbours, and a
# last piece smaller than this joins the passage before it.
MIN_TOKENS = 32
# Prose lines longer than this are cut into sentences, so that passages end
# and overlap at sentence ends.
SENTENCE_SPLIT_TOKENS = 40
CONTEXT_SEPARATOR = " › "


@dataclass(frozen=True)
class Chunk:
    text: str  # the context line (if any) and the passage: what is embedded and shown
    start_line: int
    end_line: int
    page: int | None
    tokens: int
    context: str = ""  # the headings above the passage, as its first line
    title: str = ""  # the document's title or outermost heading in effect here

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    @property
    def body(self) -> str:
        return self.text[len(self.context) + 1:] if self.context else self.text


@dataclass
class _Unit:
    text: str
    line: int
    page: int | None
    tokens: int
    piece: int = 0  # >0: a later piece of a line cut into sentences or at words
    heading: bool = False  # a heading line (or a setext/rst underline)
    path: tuple[str, ...] = ()  # the headings in effect here, outermost first


@dataclass
class _Block:
    lines: list[tuple[int, str]]
    page: int | None
    boundary: bool  # starts a section: prefer to start a new chunk here
    hard: bool = False  # must start a new chunk (new page)
    heading: tuple[int, str] | None = None  # (level, text) when it opens with a heading
    heading_lines: int = 0
    path: tuple[str, ...] = field(default_factory=tuple)


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


_SENTENCE_END = re.compile(r"""(?<=[.!?…])["'”’)\]]*\s+(?=["'“‘(\[]?[A-Z0-9])""")
_WORDY = re.compile(r"\w")
# A first line this short, alone in its paragraph, is a plain-text file's title.
_TITLE_CHARS = 200


def document_title(chunks: list[Chunk]) -> str:
    return next((c.title for c in chunks if c.title), "")


def chunk_document(doc: Document, counter: TokenCounter, max_tokens: int = CHUNK_TOKENS,
                   overlap: int = OVERLAP_TOKENS) -> list[Chunk]:
    blocks = list(_blocks(doc))
    units_by_block = _units(blocks, counter, max_tokens, doc.kind != "code")
    groups = _pack(blocks, units_by_block, max_tokens, overlap)
    contexts = _contexts(groups, counter)
    return [_make(units, ctx, n) for units, (ctx, n) in zip(groups, contexts, strict=True)]


def _blocks(doc: Document) -> Iterator[_Block]:
    first_segment = True
    stack: list[tuple[int, str]] = []
    first_block = True
    for seg in doc.segments:
        lines = [(seg.start_line + i, text) for i, text in enumerate(seg.text.split("\n"))]
        hard = doc.kind == "pdf" and not first_segment
        first_segment = False
        blocks = list(_split(doc.kind, lines, seg.page))
        for i, block in enumerate(blocks):
            if hard:
                block.hard, hard = True, False
            if (first_block and doc.kind == "text" and block.heading is None
                    and len(block.lines) == 1 and i + 1 < len(blocks)
                    and len(block.lines[0][1].strip()) <= _TITLE_CHARS):
                # A plain-text file that opens with a short line of its own.
                block.heading, block.heading_lines = (1, block.lines[0][1].strip()), 1
                block.boundary = True
            first_block = False
            if block.heading is not None:
                level, title = block.heading
                stack = [h for h in stack if h[0] < level]
                if title:
                    stack.append((level, title))
            block.path = tuple(t for _, t in stack)
            yield block


# Complex on purpose: one pass over a document's lines; each kind of block is a branch.
def _split(kind: str, lines: list[tuple[int, str]], page: int | None) -> Iterator[_Block]:  # noqa: C901
    """Blocks: runs of non-blank lines, cut at structure (headings, fences, defs)."""
    current: list[tuple[int, str]] = []
    boundary = False
    heading: tuple[int, str] | None = None
    heading_lines = 0
    fence: str | None = None
    rst_levels: list[str] = []

    def flush() -> Iterator[_Block]:
        nonlocal current, boundary, heading, heading_lines
        if any(t.strip() for _, t in current):
            yield _Block(current, page, boundary, heading=heading, heading_lines=heading_lines)
        current, boundary, heading, heading_lines = [], False, None, 0

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
                marks = stripped.split(None, 1)[0] if stripped else "#"
                title = stripped[len(marks):].strip().rstrip("#").strip()
                boundary, heading, heading_lines = True, (len(marks), title), 1
                current.append((no, text))
                yield from flush()
                continue
            if _SETEXT.match(text) and len(current) == 1 and current[0][1].strip():
                # "Title\n=====": the previous line was a heading.
                head = current[0]
                level = 1 if stripped.startswith("=") else 2
                boundary, heading, heading_lines = True, (level, head[1].strip()), 2
                current = [head, (no, text)]
                continue
        elif kind == "rst":
            nxt = lines[i + 1][1] if i + 1 < len(lines) else ""
            if (stripped and _RST_UNDERLINE.match(nxt)
                    and len(nxt.rstrip()) >= len(text.rstrip()) and not _RST_UNDERLINE.match(text)):
                yield from flush()
                mark = nxt.strip()[0]
                if mark not in rst_levels:
                    rst_levels.append(mark)
                boundary, heading, heading_lines = True, (rst_levels.index(mark) + 1, stripped), 2
        elif kind == "org":
            if _ORG_HEADING.match(text):
                yield from flush()
                stars = len(text) - len(text.lstrip("*"))
                boundary, heading, heading_lines = True, (stars, stripped[stars:].strip()), 1
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


def sentences(text: str) -> list[str]:
    """Pieces of a line that end at sentence ends; joined, they give the line."""
    out: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        out.append(text[start:m.end()])
        start = m.end()
    out.append(text[start:])
    return [p for p in out if p]


def _units(blocks: list[_Block], counter: TokenCounter, max_tokens: int, prose: bool
           ) -> list[list[_Unit]]:
    flat = [text for b in blocks for _, text in b.lines]
    counts = counter.count(flat)
    # Long prose lines are cut into sentences, counted in one go.
    pieces: list[list[str] | None] = []
    for text, n in zip(flat, counts, strict=True):
        cut = sentences(text) if prose and n > SENTENCE_SPLIT_TOKENS else None
        pieces.append(cut if cut is not None and len(cut) > 1 else None)
    piece_counts = iter(counter.count([p for ps in pieces if ps for p in ps]))
    out: list[list[_Unit]] = []
    k_line = 0
    for b in blocks:
        units: list[_Unit] = []
        for j, (no, text) in enumerate(b.lines):
            n, cut = counts[k_line], pieces[k_line]
            k_line += 1
            head = j < b.heading_lines
            parts = [(text, n)] if cut is None else [(p, next(piece_counts)) for p in cut]
            k = 0
            for part, m in parts:
                splits = [part] if m <= max_tokens else counter.split(part, max_tokens)
                for piece in splits:
                    tokens = m if len(splits) == 1 else counter.count([piece])[0]
                    units.append(_Unit(piece, no, b.page, tokens, k, head, b.path))
                    k += 1
        out.append(units)
    return out


# Complex on purpose: one pass packing units into chunks; the state is shared by all cases.
def _pack(blocks: list[_Block], units_by_block: list[list[_Unit]], max_tokens: int,  # noqa: C901
          overlap: int) -> list[list[_Unit]]:
    """Units grouped into passages (each group's units in order)."""
    groups: list[list[_Unit]] = []
    cur: list[_Unit] = []
    fresh = 0  # units in `cur` that are not overlap carried from the last chunk

    def size() -> int:
        return sum(u.tokens for u in cur)

    def emit() -> None:
        new = cur[len(cur) - fresh:]
        prev = groups[-1] if groups else None
        if prev is not None and prev[-1].page == new[0].page and (
                not any(_WORDY.search(u.text) for u in new)
                or (sum(u.tokens for u in new) < MIN_TOKENS
                    and sum(u.tokens for u in prev) + sum(u.tokens for u in new)
                    <= max_tokens + MIN_TOKENS
                    and not new[0].heading)):
            # Only punctuation, or a tiny leftover: it joins the passage before.
            prev.extend(new)
            return
        if not any(_WORDY.search(u.text) for u in cur):
            return  # nothing but punctuation, and nothing before it to join
        groups.append(list(cur))

    def flush(carry: bool) -> None:
        nonlocal cur, fresh
        if fresh and all(u.heading for u in cur[len(cur) - fresh:]):
            return  # headings wait for the text under them
        if fresh:
            emit()
        tail: list[_Unit] = []
        if carry and fresh:
            total = 0
            for u in reversed(cur):
                if total + u.tokens > overlap or len(tail) + 1 >= len(cur) or u.heading:
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
        if block.hard and cur:
            # Headings alone at the end of a page stay on it.
            if groups and groups[-1][-1].page == cur[0].page:
                groups[-1].extend(cur)
            else:
                groups.append(cur)
            cur, fresh = [], 0
        if block.boundary and not fresh:
            cur = []  # overlap is never carried into a new section
        for u in units:
            if size() + u.tokens > max_tokens:
                if fresh:
                    flush(carry=True)
                while cur and size() + u.tokens > max_tokens:
                    cur.pop(0)  # the carried overlap leaves room for new text
                    fresh = min(fresh, len(cur))
            cur.append(u)
            fresh += 1
    if fresh:
        if all(u.heading for u in cur[len(cur) - fresh:]) and groups:
            groups[-1].extend(cur[len(cur) - fresh:])  # trailing headings join the last
        else:
            emit()
    return groups


def _contexts(groups: list[list[_Unit]], counter: TokenCounter) -> list[tuple[str, int]]:
    """Each passage's context line: the headings above its first unit that it
    does not itself contain, cut to CONTEXT_TOKENS between words."""
    wanted: list[str] = []
    for units in groups:
        inside = {u.text.strip() for u in units if u.heading}
        path = [h for h in units[0].path if h not in inside and not any(h in t for t in inside)]
        wanted.append(CONTEXT_SEPARATOR.join(path))
    unique = sorted({w for w in wanted if w})
    counts = dict(zip(unique, counter.count(unique), strict=True))
    cut: dict[str, tuple[str, int]] = {"": ("", 0)}
    for w in unique:
        n = counts[w]
        if n > CONTEXT_TOKENS:
            w_cut = counter.split(w, CONTEXT_TOKENS)[0].rstrip()
            cut[w] = (w_cut + "…", counter.count([w_cut + "…"])[0])
        else:
            cut[w] = (w, n)
    return [cut[w] for w in wanted]


def _make(units: list[_Unit], context: str, context_tokens: int) -> Chunk:
    parts: list[str] = []
    prev: _Unit | None = None
    for u in units:
        text = u.text
        if prev is not None:
            if u.line == prev.line and u.piece > prev.piece:
                pass  # pieces of one line join as they were cut
            elif u.line > prev.line + 1:
                parts.append("\n\n")
            else:
                parts.append("\n")
        if u.piece > 0 and (prev is None or prev.line != u.line):
            text = text.lstrip()  # a passage starting mid-line starts at its word
        parts.append(text)
        prev = u
    body = "\n".join(line.rstrip() for line in "".join(parts).split("\n"))
    text = f"{context}\n{body}" if context else body
    return Chunk(text, units[0].line, units[-1].line, units[0].page,
                 sum(u.tokens for u in units) + context_tokens + (1 if context else 0),
                 context, units[0].path[0] if units[0].path else "")
