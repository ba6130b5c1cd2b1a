"""The typed events `Assistant.ask` emits, in order:
Started · Sources? · (Progress | Delta | Fallback)… · Route? · Finished | Error."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.core.trace import Trace


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Timings:
    """Seconds. `ttft_s`: from the request to the first token of text;
    `tokens_per_s`: completion tokens over the time spent generating them."""

    ttft_s: float | None = None
    total_s: float = 0.0
    tokens_per_s: float | None = None
    load_s: float | None = None


@dataclass(frozen=True)
class Source:
    """One piece of reference text given to the model, cited as [number]."""

    number: int
    path: str
    start_line: int | None = None
    end_line: int | None = None
    page: int | None = None
    snippet: str = ""
    score: float | None = None


@dataclass(frozen=True)
class Started:
    conversation_id: str
    message_id: str
    provider: str
    model: str


@dataclass(frozen=True)
class Sources:
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Progress:
    """The local model is reading the prompt (the question, the history and
    the passages from the user's files): `done` of `total` tokens."""

    done: int
    total: int

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


@dataclass(frozen=True)
class Attempt:
    provider: str
    model: str
    started_s: float
    first_token_s: float | None
    ended_s: float
    outcome: str  # "answered", "failed", "cancelled", "abandoned", "retried", "skipped"
    reason: str | None = None
    # One phrase for people, e.g. "local model timed out after 20 s".
    detail: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None


@dataclass(frozen=True)
class Route:
    """How the answer was produced: every provider tried, in order."""

    policy: str
    attempts: tuple[Attempt, ...]
    summary: str
    # What the privacy gate took out before a remote request: counts by kind
    # of secret (never the secret itself), and reference chunks from
    # local-only folders.
    redactions: dict[str, int] = field(default_factory=dict)
    local_only_dropped: int = 0
    cost_usd: float | None = None
    # Earlier messages of the conversation left out of a remote request
    # because they quote local-only folders.
    history_withheld: int = 0


@dataclass(frozen=True)
class Fallback:
    """The answer moves to another provider. Text streamed so far by the
    failed attempt (`abandoned`) is dropped; the new answer replaces it."""

    from_provider: str
    provider: str
    model: str
    reason: str
    detail: str
    abandoned: str = ""
    # The local model was only slow (a deadline passed): the user may choose
    # to wait for it instead (ask again with `AskOptions.patient`).
    can_wait: bool = False


@dataclass(frozen=True)
class Finished:
    conversation_id: str
    message_id: str
    answer: str
    provider: str
    model: str
    usage: Usage
    timings: Timings
    finish_reason: str
    notes: tuple[str, ...] = ()
    # The versioned prompt the answer was made with ("ID@VERSION").
    prompt: str = ""
    # The answer quotes local-only text: it is never sent to a remote provider.
    local_only: bool = False
    # Everything about how the answer was made, as stored with it.
    trace: Trace | None = None


@dataclass(frozen=True)
class Error:
    """The answer failed. `message` is one sentence for the user; `detail` is
    for a Details button or the log; `partial` is any text produced before."""

    message: str
    reason: str
    detail: str = ""
    conversation_id: str | None = None
    partial: str = ""
    # The failed answer's trace, when it was stored.
    trace: Trace | None = None


Event = Started | Sources | Progress | Delta | Fallback | Route | Finished | Error


def to_dict(event: Any) -> dict[str, Any]:
    data = asdict(event)
    data["type"] = type(event).__name__.lower()
    return data


__all__ = [
    "Attempt", "Delta", "Error", "Event", "Fallback", "Finished", "Progress", "Route", "Source",
    "Sources", "Started", "Timings", "Usage", "to_dict",
]
