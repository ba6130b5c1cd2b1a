"""One answer's trace: what produced it (prompt, each route attempt with its
timings, tokens and cost), what it was given from the user's files (each
passage's scores and whether the answer cited it), what the privacy gate took
out and whether it came from the cache. Stored as JSON with the message, so a
trace is read back exactly as it was written."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from app.core.events import Attempt, Route, Timings, Usage
from app.core.prompting import ContextChunk

# Bumped when a field changes meaning; readers accept every earlier version.
TRACE_VERSION = 1
# "[2]" and "[1, 3]" both cite: models write either.
_CITATION = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
# A stored answer with no trace (written by an older Hearth) is traced from
# its message columns and says so.
LEGACY_NOTE = ("This answer was stored by an older Hearth that kept no trace; only what its "
               "message records is shown.")


@dataclass(frozen=True)
class AttemptTrace:
    """One provider tried. Seconds: `queue_s` from the start of routing to the
    start of this attempt (earlier attempts, retries, backoff), `first_token_s`
    from its start to its first token (a local model's load included),
    `generation_s` from the first token to its end, `total_s` start to end."""

    provider: str
    model: str
    outcome: str
    reason: str | None
    queue_s: float
    first_token_s: float | None
    generation_s: float | None
    total_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    detail: str = ""

    @classmethod
    def of(cls, a: Attempt) -> AttemptTrace:
        first = None if a.first_token_s is None else max(0.0, a.first_token_s - a.started_s)
        gen = None if a.first_token_s is None else max(0.0, a.ended_s - a.first_token_s)
        return cls(a.provider, a.model, a.outcome, a.reason, round(a.started_s, 4),
                   _r(first), _r(gen), round(max(0.0, a.ended_s - a.started_s), 4),
                   a.prompt_tokens, a.completion_tokens, a.cost_usd, a.detail)


@dataclass(frozen=True)
class PassageTrace:
    """One passage retrieved for the question. `fused_rank`: its place in
    the retriever's fused (vector + keyword) order, 1 = best; `sent`: it
    reached the answering model (not cut to fit its context, not withheld
    as local-only); `cited`: the answer contains [number]."""

    number: int
    path: str
    start_line: int | None
    end_line: int | None
    page: int | None
    vector_score: float | None
    keyword_score: float | None
    fused_score: float | None
    fused_rank: int | None
    sent: bool
    cited: bool
    local_only: bool = False


@dataclass(frozen=True)
class Trace:
    prompt_id: str
    prompt_version: int | None
    policy: str
    provider: str
    model: str
    # answered, cancelled or failed
    status: str
    finish_reason: str | None
    attempts: tuple[AttemptTrace, ...]
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float | None
    tokens_per_s: float | None
    total_s: float | None
    load_s: float | None
    cost_usd: float | None
    query: str | None
    passages: tuple[PassageTrace, ...] = ()
    retrieval_note: str | None = None
    # hit, miss, or off (no cache was consulted)
    cache: str = "off"
    # For a hit: the answer message it was taken from, and how close the
    # questions were (cosine).
    cache_source: str | None = None
    cache_similarity: float | None = None
    redactions: dict[str, int] = field(default_factory=dict)
    local_only_withheld: int = 0
    history_withheld: int = 0
    error_reason: str | None = None
    version: int = TRACE_VERSION
    # Rebuilt from an older message's columns, not recorded when it was answered.
    legacy: bool = False

    @property
    def fell_back(self) -> bool:
        return fallback_reason(self.attempts) is not None

    @property
    def cited(self) -> tuple[PassageTrace, ...]:
        return tuple(p for p in self.passages if p.cited)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trace:
        """A stored trace; fields a later Hearth added are ignored, and
        missing ones take their defaults. Raises ValueError when `data`
        is not a trace at all."""
        try:
            attempts = tuple(AttemptTrace(**_known(AttemptTrace, a))
                             for a in data.get("attempts") or ())
            passages = tuple(PassageTrace(**_known(PassageTrace, p))
                             for p in data.get("passages") or ())
            values = _known(cls, data)
            values.update(attempts=attempts, passages=passages,
                          redactions=dict(data.get("redactions") or {}))
            return cls(**values)
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"not a trace: {exc}") from exc


def cited_numbers(answer: str) -> set[int]:
    out: set[int] = set()
    for group in _CITATION.findall(answer):
        out.update(int(n) for n in group.split(","))
    return out


def fallback_reason(attempts: Sequence[AttemptTrace] | Sequence[Attempt]) -> str | None:
    """Why the first provider tried did not answer (its reason), or None when
    it did (or nothing was tried). Retries of one provider are not fallbacks."""
    tried = [a for a in attempts if a.outcome != "retried"]
    if len(tried) < 2:
        return None
    first = tried[0]
    if first.outcome in ("answered",):
        return None
    return first.reason or first.outcome


def build(*, prompt_ref: str, route: Route | None, question: str,
          context: Iterable[ContextChunk], used: Iterable[int] | None, answer: str,
          status: str, provider: str, model: str, usage: Usage | None = None,
          timings: Timings | None = None, finish_reason: str | None = None,
          error_reason: str | None = None, retrieval_note: str | None = None,
          cache: str = "off") -> Trace:
    """The trace of an answer, from what the assistant knows once it has ended.
    `used`: the numbers of the passages the answering model was given (None:
    not known, as when routing failed before an answer)."""
    pid, _, version = prompt_ref.partition("@")
    attempts = tuple(AttemptTrace.of(a) for a in route.attempts) if route else ()
    cited = cited_numbers(answer)
    used_set = set(used) if used is not None else None
    passages = tuple(
        PassageTrace(c.number, c.path, c.start_line, c.end_line, c.page,
                     _r(c.vector_score), _r(c.keyword_score), _r(c.score, 6), c.rank,
                     sent=used_set is None or c.number in used_set,
                     cited=c.number in cited and (used_set is None or c.number in used_set),
                     local_only=c.local_only)
        for c in context)
    if usage is None:
        usage = Usage(sum(a.prompt_tokens for a in attempts),
                      sum(a.completion_tokens for a in attempts))
    t = timings or Timings()
    return Trace(
        prompt_id=pid, prompt_version=int(version) if version.isdigit() else None,
        policy=route.policy if route else "", provider=provider, model=model, status=status,
        finish_reason=finish_reason, attempts=attempts, prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens, ttft_s=_r(t.ttft_s),
        tokens_per_s=_r(t.tokens_per_s), total_s=_r(t.total_s), load_s=_r(t.load_s),
        cost_usd=route.cost_usd if route else None, query=question, passages=passages,
        retrieval_note=retrieval_note, cache=cache,
        redactions=dict(route.redactions) if route else {},
        local_only_withheld=route.local_only_dropped if route else 0,
        history_withheld=route.history_withheld if route else 0,
        error_reason=error_reason)


def from_message(msg: Any) -> Trace:
    """The trace stored with an assistant message, or, for a message an older
    Hearth wrote (no trace), one rebuilt from its columns (`legacy`)."""
    if isinstance(getattr(msg, "trace", None), dict):
        try:
            return Trace.from_dict(msg.trace)
        except ValueError:
            pass  # a damaged trace reads like no trace: the columns still hold the facts
    route = msg.route if isinstance(msg.route, dict) else {}
    attempts: list[AttemptTrace] = []
    for a in route.get("attempts") or ():
        try:
            attempts.append(AttemptTrace.of(Attempt(**a)))
        except TypeError:
            continue
    passages = tuple(
        PassageTrace(int(s.get("number") or 0), str(s.get("path") or ""), s.get("start_line"),
                     s.get("end_line"), s.get("page"), None, None, s.get("score"), None,
                     sent=True, cited=int(s.get("number") or 0) in cited_numbers(msg.content))
        for s in (msg.sources or ()) if isinstance(s, dict))
    pid, _, version = (msg.prompt_ref or "").partition("@")
    status = {"complete": "answered", "error": "failed"}.get(msg.status, msg.status)
    return Trace(
        prompt_id=pid, prompt_version=int(version) if version.isdigit() else None,
        policy=str(route.get("policy") or ""), provider=msg.provider or "local",
        model=msg.model or "unknown", status=status, finish_reason=None,
        attempts=tuple(attempts), prompt_tokens=msg.prompt_tokens or 0,
        completion_tokens=msg.completion_tokens or 0, ttft_s=msg.ttft_s,
        tokens_per_s=msg.tokens_per_s, total_s=msg.total_s, load_s=None,
        cost_usd=route.get("cost_usd"), query=None, passages=passages, cache="off",
        redactions=dict(route.get("redactions") or {}),
        local_only_withheld=int(route.get("local_only_dropped") or 0),
        history_withheld=int(route.get("history_withheld") or 0), legacy=True)


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return {k: v for k, v in data.items() if k in names}


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


# -- the trace in words (hearth trace, the answer details) ------------------------------

ATTEMPT_COLUMNS = ("#", "Provider", "Model", "Outcome", "Reason", "Queue", "First token",
                   "Generation", "Total", "Tokens in/out", "Cost")
PASSAGE_COLUMNS = ("#", "File", "Where", "Vector", "Keyword", "Fused", "Rank", "Sent", "Cited")


def summary_rows(t: Trace) -> list[tuple[str, str]]:
    """The trace's facts other than its attempts and passages, as label and value."""
    rows = [
        ("Prompt", f"{t.prompt_id}@{t.prompt_version}" if t.prompt_id else "—"),
        ("Policy", t.policy or "—"),
        ("Answered by", f"{t.provider} · {t.model}"),
        ("Status", t.status + (f" ({t.finish_reason})" if t.finish_reason else "")
         + (f" ({t.error_reason})" if t.error_reason else "")),
        ("Tokens", f"{t.prompt_tokens:,} in · {t.completion_tokens:,} out"),
        ("Speed", _num(t.tokens_per_s, " tokens/s", 1)),
        ("First token", _num(t.ttft_s, " s")),
        ("Total time", _num(t.total_s, " s")),
        ("Cost", "—" if t.cost_usd is None else f"${t.cost_usd:.6f}"),
        ("Cache", _cache_text(t)),
        ("Redacted", ", ".join(f"{n} {kind}" for kind, n in sorted(t.redactions.items()))
         or "nothing"),
        ("Withheld (local-only)", f"{t.local_only_withheld} passages, "
                                  f"{t.history_withheld} earlier messages"),
    ]
    if t.load_s is not None:
        rows.insert(7, ("Model load", _num(t.load_s, " s")))
    if t.query is not None:
        rows.append(("Retrieval query", _one_line(t.query)))
    if t.passages:
        cited = len(t.cited)
        rows.append(("Passages", f"{len(t.passages)} retrieved, "
                                 f"{sum(p.sent for p in t.passages)} sent, {cited} cited"))
    if t.retrieval_note:
        rows.append(("Retrieval", t.retrieval_note))
    if t.legacy:
        rows.append(("Note", LEGACY_NOTE))
    return rows


def _cache_text(t: Trace) -> str:
    if t.cache == "hit":
        source = f" {t.cache_source[:8]}" if t.cache_source else ""
        close = (f", similarity {t.cache_similarity:.3f}"
                 if t.cache_similarity is not None else "")
        return f"hit (from the earlier answer{source}{close})"
    return {"miss": "miss", "off": "not used"}.get(t.cache, t.cache)


def attempt_rows(t: Trace) -> list[tuple[str, ...]]:
    return [(str(i), a.provider, a.model, a.outcome, a.reason or "", _num(a.queue_s, " s"),
             _num(a.first_token_s, " s"), _num(a.generation_s, " s"), _num(a.total_s, " s"),
             f"{a.prompt_tokens}/{a.completion_tokens}",
             "—" if a.cost_usd is None else f"${a.cost_usd:.6f}")
            for i, a in enumerate(t.attempts, 1)]


def passage_rows(t: Trace) -> list[tuple[str, ...]]:
    return [(str(p.number), p.path, where(p), _num(p.vector_score, "", 3),
             _num(p.keyword_score, "", 3), _num(p.fused_score, "", 3),
             "—" if p.fused_rank is None else str(p.fused_rank),
             "yes" if p.sent else "no", "yes" if p.cited else "no")
            for p in t.passages]


def where(p: PassageTrace) -> str:
    if p.page is not None:
        return f"page {p.page}"
    if p.start_line is not None:
        end = p.end_line if p.end_line is not None else p.start_line
        return f"lines {p.start_line}-{end}" if end != p.start_line else f"line {p.start_line}"
    return ""


def as_text(t: Trace, message_id: str = "") -> str:
    """The trace as `hearth trace` prints it."""
    lines = [f"Answer {message_id}" if message_id else "Answer"]
    rows = summary_rows(t)
    width = max(len(k) for k, _ in rows) + 2
    lines += [f"  {k:<{width}}{v}" for k, v in rows]
    for title, columns, body in (("Route attempts", ATTEMPT_COLUMNS, attempt_rows(t)),
                                 ("Passages", PASSAGE_COLUMNS, passage_rows(t))):
        if body:
            lines += ["", title, *_table(columns, body)]
    return "\n".join(lines)


def _table(columns: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [columns, *body]) for i in range(len(columns))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in [columns, *body]]


def _num(x: float | None, unit: str, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}{unit}"


def _one_line(text: str, chars: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= chars else text[: chars - 1] + "…"
