"""What the window knows about one answer (from live events or from the
conversation store) and the one-line badge that summarises it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.answer import AnswerState
from app.core.answer_cache import CACHE_NOTE
from app.core.conversations import Message
from app.core.events import Attempt, Finished, Route, Source, Timings, Usage
from app.core.trace import Trace, from_message

LOCAL_PROVIDERS = frozenset({"local"})


@dataclass
class AnswerInfo:
    provider: str
    model: str
    status: str = "complete"  # complete, cancelled, error, streaming
    route: Route | None = None
    usage: Usage | None = None
    timings: Timings | None = None
    sources: tuple[Source, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None
    finish_reason: str | None = None
    # The versioned prompt the answer was made with ("ID@VERSION"; "" before 0002).
    prompt: str = ""
    local_only: bool = False
    trace: Trace | None = None

    @property
    def local(self) -> bool:
        return self.provider in LOCAL_PROVIDERS

    @property
    def cached(self) -> bool:
        """Given from the answer cache: an earlier answer to a close question."""
        return self.trace is not None and self.trace.cache == "hit"

    @property
    def tokens_per_s(self) -> float | None:
        return self.timings.tokens_per_s if self.timings else None

    @classmethod
    def from_finished(cls, event: Finished, route: Route | None,
                      sources: tuple[Source, ...] = ()) -> AnswerInfo:
        return cls(
            provider=event.provider, model=event.model,
            status="cancelled" if event.finish_reason == "cancelled" else "complete",
            route=route, usage=event.usage, timings=event.timings, sources=sources,
            notes=event.notes, finish_reason=event.finish_reason,
            prompt=event.prompt, local_only=event.local_only, trace=event.trace,
        )

    @classmethod
    def from_state(cls, state: AnswerState) -> AnswerInfo:
        """What a live answer's session knows, once it has ended."""
        status = {"answered": "complete", "cancelled": "cancelled", "failed": "error"}.get(
            state.phase, "streaming")
        return cls(
            provider=state.provider, model=state.model, status=status, route=state.route,
            usage=state.usage, timings=state.timings, sources=state.sources,
            notes=state.notes, error=state.error, finish_reason=state.finish_reason,
            prompt=state.prompt, local_only=state.local_only, trace=state.trace,
        )

    @classmethod
    def from_message(cls, msg: Message) -> AnswerInfo:
        return cls(
            provider=msg.provider or "local", model=msg.model or "unknown",
            status=msg.status,
            route=route_from_dict(msg.route),
            usage=Usage(msg.prompt_tokens or 0, msg.completion_tokens or 0),
            timings=Timings(ttft_s=msg.ttft_s, total_s=msg.total_s or 0.0,
                            tokens_per_s=msg.tokens_per_s),
            sources=sources_from_list(msg.sources),
            error=msg.error, prompt=msg.prompt_ref or "", local_only=msg.local_only,
            trace=from_message(msg),
        )


def route_from_dict(data: Any) -> Route | None:
    if not isinstance(data, dict):
        return None
    try:
        attempts = tuple(Attempt(**a) for a in data.get("attempts", ()))
        redactions = data.get("redactions") or {}
        cost = data.get("cost_usd")
        return Route(str(data.get("policy", "")), attempts, str(data.get("summary", "")),
                     dict(redactions) if isinstance(redactions, dict) else {},
                     int(data.get("local_only_dropped") or 0),
                     float(cost) if isinstance(cost, int | float) else None,
                     int(data.get("history_withheld") or 0))
    except TypeError:
        return None


def sources_from_list(data: Any) -> tuple[Source, ...]:
    if not isinstance(data, list):
        return ()
    out = []
    for item in data:
        if isinstance(item, dict):
            try:
                out.append(Source(**item))
            except TypeError:
                continue
    return tuple(out)


def fallback_reason(route: Route | None) -> str | None:
    """Why the router moved past its first choice (e.g. "local model timed out
    after 20 s"), or None if it did not."""
    if route is None or len(route.attempts) < 2:
        return None
    before = [a for a in route.attempts[:-1]
              if a.outcome in ("failed", "abandoned", "skipped", "cancelled")]
    if not before:
        return None
    first = before[0]
    if first.detail:
        return first.detail
    # The router's summary reads "answered by P/M — why": the part after the dash.
    _, dash, why = route.summary.partition(" — ")
    if dash and why:
        return why
    return f"{first.provider} {first.outcome}" + (f" ({first.reason})" if first.reason else "")


def fallback_note(detail: str, provider: str, model: str) -> str:
    """The line shown where an abandoned answer was, e.g. "Local model timed
    out after 20 s — answering with openai/gpt-4o-mini"."""
    why = detail.strip() or "the first choice failed"
    return f"{why[:1].upper()}{why[1:]} — answering with {provider}/{model}"


def badge_text(info: AnswerInfo) -> str:
    """E.g. `Local · SmolLM2 · 41 tok/s` or `Remote · gpt-4o-mini — local model timed out`."""
    parts = [f"{'Local' if info.local else 'Remote'} · {info.model}"]
    if info.tokens_per_s:
        parts.append(f"{info.tokens_per_s:.0f} tok/s")
    if info.sources:
        parts.append(f"{len(info.sources)} source{'s' if len(info.sources) != 1 else ''}")
    if info.status == "cancelled":
        parts.append("stopped")
    elif info.status == "error":
        parts.append("failed")
    if info.cached:
        parts.append(CACHE_NOTE.lower())
    parts.extend(info.notes)
    text = " · ".join(parts)
    reason = fallback_reason(info.route)
    return f"{text} — {reason}" if reason else text


def badge_tooltip(info: AnswerInfo) -> str:
    where = "on this computer" if info.local else f"by the remote provider {info.provider}"
    return f"Answered {where} with {info.model}; click for the details"
