"""How much time and room the local model gets: when its first token is due
(a long prompt read in batches earns more time), how fast this machine has
read prompts lately, how many passages from the user's files fit, and the
circuit breaker that skips a remote provider that keeps failing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from app.core.errors import ContextOverflowError
from app.core.llm.local import MIN_ANSWER_TOKENS, LocalProvider
from app.core.llm.provider import PromptProgress
from app.core.prompting import PromptPlan
from app.settings_types import DEFAULTS


class FirstTokenDeadline:
    """When the first token is due. A short prompt: `base_s` after the start
    (routing.ttft_timeout_s). A long prompt the local model reads in batches
    (it reports each): a long prompt is not a stuck model, so while each
    batch follows the last in good time (within `base_s`, or three times the
    batches' average so far, whichever is longer) the answer waits; in all at
    most (1 + `allowance`) × `base_s`, after which the fallback is the better
    answer."""

    def __init__(self, base_s: float,
                 allowance: float = DEFAULTS.routing.reading_allowance) -> None:
        self.base_s = base_s
        self.allowance = allowance
        self.started = time.perf_counter()
        self.total = 0
        self.batches = 0  # read since the first report
        self._first: float | None = None
        self._last: float | None = None

    def start(self, now: float) -> None:
        self.started = now

    def due(self) -> float:
        """The perf_counter time the first token is due by."""
        if self._last is None or self._first is None:
            return self.started + self.base_s
        cap = self.started + self.base_s * (1 + self.allowance)
        if not self.batches:
            return cap  # how long a batch takes is not known yet
        average = (self._last - self._first) / self.batches
        return min(cap, self._last + max(self.base_s, 3 * average))

    def progress(self, item: PromptProgress, now: float) -> None:
        """A report from the local model while it reads the prompt."""
        self.total = item.total
        if self._first is None:
            self._first = now
        else:
            self.batches += 1
        self._last = now

    def describe(self, label: str, now: float) -> str:
        elapsed = now - self.started
        if self._last is None or not self.allowance:
            return f"{label} timed out after {self.base_s:g} s"
        return (f"{label} was still reading a {self.total:,}-token prompt after "
                f"{elapsed:.3g} s")


class CircuitBreaker:
    """Per provider: after `failures` failures in a row, skip it for `cooldown_s`;
    then let one request through to see whether it has recovered."""

    def __init__(self, failures: int = 3, cooldown_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._count: dict[str, int] = {}
        self._open_until: dict[str, float] = {}

    def allow(self, name: str) -> bool:
        with self._lock:
            return self._clock() >= self._open_until.get(name, 0.0)

    def success(self, name: str) -> None:
        with self._lock:
            self._count.pop(name, None)
            self._open_until.pop(name, None)

    def failure(self, name: str) -> None:
        with self._lock:
            count = self._count.get(name, 0) + 1
            self._count[name] = count
            if count >= self.failures:
                self._open_until[name] = self._clock() + self.cooldown_s


class PromptSpeed:
    """How fast each local model has read its prompts on this machine lately
    (tokens per second to the first token; the slowest of the last few, so a
    busy spell is not forgotten at once)."""

    KEEP = 5

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, list[float]] = {}

    def record(self, model: str, prompt_tokens: int, seconds: float) -> None:
        if prompt_tokens < 64 or seconds <= 0:
            return  # too short to say anything about the speed
        with self._lock:
            seen = self._seen.setdefault(model, [])
            seen.append(prompt_tokens / seconds)
            del seen[:-self.KEEP]

    def get(self, model: str) -> float | None:
        with self._lock:
            seen = self._seen.get(model)
            return min(seen) if seen else None


prompt_speed = PromptSpeed()
# Passages may fill at most this share of the context window, and take at
# most this share of the first-token deadline to read.
PASSAGE_CONTEXT_SHARE = 0.5
PASSAGE_DEADLINE_SHARE = 0.5


def passage_budget(n_ctx: int, base_tokens: int, speed: float | None,
                   ttft_timeout_s: float) -> int:
    """Tokens the passages from the user's files may add to a prompt of
    `base_tokens` (instructions, history, question)."""
    budget = min(int(n_ctx * PASSAGE_CONTEXT_SHARE), n_ctx - base_tokens - MIN_ANSWER_TOKENS)
    if speed is not None and ttft_timeout_s > 0:
        # A long context alone must never make the first token late.
        budget = min(budget, int(speed * ttft_timeout_s * PASSAGE_DEADLINE_SHARE) - base_tokens)
    return max(0, budget)


def fit_local(provider: LocalProvider, plan: PromptPlan, n_ctx: int,
              speed: float | None = None, ttft_timeout_s: float = 0.0
              ) -> tuple[PromptPlan, int]:
    """Drop the lowest-ranked passages from the user's files until they fit
    their budget (a share of the context window, and of the first-token
    deadline at this machine's prompt speed), then the oldest turns, until
    the prompt leaves room for an answer."""
    context = plan.context
    if context:
        base = provider.count_tokens(plan.with_context(()).render())
        budget = passage_budget(n_ctx, base, speed, ttft_timeout_s)
        room = n_ctx - base - MIN_ANSWER_TOKENS  # the context window alone
        while context:
            size = provider.count_tokens(plan.with_context(context).render()) - base
            # The best passage stays whenever the window holds it: a slow
            # machine answers from the user's files a little later rather than
            # without them.
            if size <= budget or (len(context) == 1 and size <= room):
                break
            context = context[:-1]
    plan = plan.with_context(context)
    dropped = 0
    history = plan.history
    while True:
        fitted = plan.without_history(dropped)
        tokens = provider.count_tokens(fitted.render())
        if tokens + MIN_ANSWER_TOKENS <= n_ctx:
            return fitted, dropped
        if dropped >= len(history):
            raise ContextOverflowError(
                f"The question is about {tokens:,} tokens but the local model's context "
                f"holds {n_ctx:,} (with room for an answer); shorten it or raise "
                "model.context_size.",
                prompt_tokens=tokens, context_size=n_ctx,
            )
        dropped = min(len(history), dropped + 2)
