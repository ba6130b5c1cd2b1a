"""One answer as every shell sees it: `AnswerSession` folds the assistant's
events into one typed `AnswerState` (text, sources, route, timings, notes,
outcome), so the CLI, the window and quick-ask read the same facts the same
way and none of them keeps its own copy of the rules."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from app.core.events import (
    Delta,
    Error,
    Event,
    Fallback,
    Finished,
    Progress,
    Route,
    Source,
    Sources,
    Started,
    Timings,
    Usage,
    to_dict,
)

if TYPE_CHECKING:
    from app.core.trace import Trace

# waiting: asked, nothing back yet; reading: the local model reads the prompt;
# streaming: text arrives; then one of the ends.
Phase = Literal["waiting", "reading", "streaming", "answered", "cancelled", "failed"]
ENDED: frozenset[str] = frozenset({"answered", "cancelled", "failed"})


@dataclass(frozen=True)
class AnswerState:
    conversation_id: str | None = None
    question_id: str | None = None
    provider: str = "local"
    model: str = "unknown"
    phase: Phase = "waiting"
    text: str = ""
    sources: tuple[Source, ...] = ()
    # Prompt tokens read so far and in all, while the local model reads.
    progress: tuple[int, int] | None = None
    # The last switch to another provider (for the notice above the answer).
    fallback: Fallback | None = None
    route: Route | None = None
    usage: Usage | None = None
    timings: Timings | None = None
    notes: tuple[str, ...] = ()
    finish_reason: str | None = None
    prompt: str = ""
    local_only: bool = False
    error: str | None = None
    error_reason: str | None = None
    error_detail: str = ""
    # The conversation the question started was removed again (a first
    # question that got no answer leaves none behind).
    discarded: bool = False
    # The stored answer's trace (app.core.trace), once it has ended.
    trace: Trace | None = None
    events: int = field(default=0, compare=False)

    @property
    def ended(self) -> bool:
        return self.phase in ENDED

    @property
    def reading_text(self) -> str:
        """What the user is shown before the first word of the answer."""
        if self.phase == "reading" and self.progress is not None:
            done, total = self.progress
            percent = int(100 * done / total) if total else 0
            return f"Reading your question and files… {percent} %"
        return "Thinking…"

    def to_json(self) -> dict[str, Any]:
        """The answer as `hearth ask --json` prints it."""
        data: dict[str, Any] = {
            "conversation_id": self.conversation_id,
            "provider": self.provider,
            "model": self.model,
            "route": to_dict(self.route) if self.route else None,
        }
        if self.phase == "failed":
            data.update(error=self.error, reason=self.error_reason, partial=self.text)
            return data
        t = self.timings or Timings()
        u = self.usage or Usage()
        data.update(
            answer=self.text, finish_reason=self.finish_reason,
            timings={"ttft_s": _round(t.ttft_s), "tokens_per_s": _round(t.tokens_per_s),
                     "total_s": _round(t.total_s), "load_s": _round(t.load_s),
                     "prompt_tokens": u.prompt_tokens,
                     "completion_tokens": u.completion_tokens},
            notes=list(self.notes), prompt=self.prompt, local_only=self.local_only,
            sources=[to_dict(s) for s in self.sources],
        )
        return data


class AnswerSession:
    """Folds one answer's events, in order, into `state` (a new frozen value
    after each event, so a shell can hand it across threads safely)."""

    def __init__(self) -> None:
        self.state = AnswerState()

    def fold(self, event: Event | object) -> AnswerState:
        s = self.state
        n = s.events + 1
        if isinstance(event, Started):
            s = replace(s, conversation_id=event.conversation_id,
                        question_id=event.message_id, provider=event.provider,
                        model=event.model)
        elif isinstance(event, Sources):
            s = replace(s, sources=tuple(event.sources))
        elif isinstance(event, Progress):
            if s.phase in ("waiting", "reading"):
                s = replace(s, phase="reading", progress=(event.done, event.total))
        elif isinstance(event, Delta):
            s = replace(s, phase="streaming", text=s.text + event.text)
        elif isinstance(event, Fallback):
            # The failed attempt's text goes; the next provider's answer replaces it.
            s = replace(s, phase="waiting", text="", progress=None, fallback=event,
                        provider=event.provider, model=event.model)
        elif isinstance(event, Route):
            s = replace(s, route=event)
        elif isinstance(event, Finished):
            s = replace(
                s, phase="cancelled" if event.finish_reason == "cancelled" else "answered",
                conversation_id=event.conversation_id, text=event.answer,
                provider=event.provider, model=event.model, usage=event.usage,
                timings=event.timings, notes=event.notes, finish_reason=event.finish_reason,
                prompt=event.prompt, local_only=event.local_only, progress=None,
                trace=event.trace)
        elif isinstance(event, Error):
            attempt = next((a for a in reversed(s.route.attempts)
                            if a.outcome not in ("skipped", "retried")), None) if s.route else None
            s = replace(
                s, phase="cancelled" if event.reason == "cancelled" else "failed",
                error=event.message, error_reason=event.reason, error_detail=event.detail,
                text=event.partial or s.text, progress=None,
                conversation_id=event.conversation_id,
                discarded=event.conversation_id is None and s.conversation_id is not None,
                trace=event.trace,
                provider=attempt.provider if attempt else s.provider,
                model=attempt.model if attempt else s.model)
        self.state = replace(s, events=n)
        return self.state


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)
