"""The router: decides who answers (the policy), runs each attempt under a
first-token and a stall deadline, falls back from the local model to the remote
chain with the reason recorded, retries remote failures with jittered backoff,
and skips a provider that keeps failing (circuit breaker).

Every attempt is consumed on its own thread through a queue, so a deadline
fires even while llama.cpp or a socket read is busy; on a fallback the failed
attempt is cancelled (the local computation really stops) and the next request
starts straight away.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.core import offline
from app.core.errors import ContextOverflowError, HearthError, as_phrase
from app.core.events import Attempt, Route
from app.core.llm.local import MIN_ANSWER_TOKENS, LocalProvider
from app.core.llm.pacing import CircuitBreaker, FirstTokenDeadline, fit_local, prompt_speed
from app.core.llm.provider import (
    CancelToken,
    ChatRequest,
    PromptProgress,
    Provider,
    StreamEnd,
    TextDelta,
)
from app.core.llm.registry import ProviderConfig, cost_usd
from app.core.llm.remote import RemoteError, estimate_tokens
from app.core.privacy import Outbound, prepare_outbound
from app.core.prompting import PromptPlan
from app.settings_types import DEFAULTS, SettingsSnapshot

log = logging.getLogger(__name__)

POLICIES = ("auto", "local-only", "remote-first")
# A Retry-After longer than this is not waited for: the next provider is tried.
MAX_RETRY_AFTER_S = 30.0


class RemoteProvider(Provider, Protocol):
    """A provider over the network: what every provider offers, plus its
    configuration and one SDK client kept warm between questions."""

    config: ProviderConfig

    def client(self) -> Any: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RoutingConfig:
    """The routing.* settings the router works with, plus its retry pacing
    (not settings). Defaults are the settings' declared defaults."""

    policy: str = DEFAULTS.routing.policy
    ttft_timeout_s: float = DEFAULTS.routing.ttft_timeout_s
    stall_timeout_s: float = DEFAULTS.routing.stall_timeout_s
    heavy_prompt_tokens: int = DEFAULTS.routing.heavy_prompt_tokens
    remote_fallback: bool = DEFAULTS.routing.remote_fallback
    redact_secrets: bool = DEFAULTS.privacy.redact_secrets
    retries: int = DEFAULTS.routing.retries
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    breaker_failures: int = DEFAULTS.routing.breaker_failures
    breaker_cooldown_s: float = DEFAULTS.routing.breaker_cooldown_s
    # How much reading time a long prompt may add to the first-token deadline,
    # in multiples of ttft_timeout_s (0: the deadline is ttft_timeout_s alone).
    reading_allowance: float = DEFAULTS.routing.reading_allowance

    @classmethod
    def from_settings(cls, s: SettingsSnapshot) -> RoutingConfig:
        r = s.routing
        return cls(
            policy=r.policy, ttft_timeout_s=r.ttft_timeout_s,
            stall_timeout_s=r.stall_timeout_s, heavy_prompt_tokens=r.heavy_prompt_tokens,
            remote_fallback=r.remote_fallback, redact_secrets=s.privacy.redact_secrets,
            retries=r.retries, breaker_failures=r.breaker_failures,
            breaker_cooldown_s=r.breaker_cooldown_s, reading_allowance=r.reading_allowance,
        )


@dataclass(frozen=True)
class GenParams:
    max_tokens: int = DEFAULTS.generation.max_tokens
    temperature: float = DEFAULTS.generation.temperature
    top_p: float = DEFAULTS.generation.top_p
    seed: int | None = None
    stop: tuple[str, ...] = ()
    repeat_penalty: float = 1.0

    def request(self, plan: PromptPlan) -> ChatRequest:
        return ChatRequest(plan.render(), self.max_tokens, self.temperature, self.top_p,
                           self.stop, self.seed, repeat_penalty=self.repeat_penalty)


@dataclass(frozen=True)
class Switched:
    """The router moved on from `failed` to `provider`; `abandoned` is the
    text the failed attempt had streamed, which the new answer replaces."""

    failed: Attempt
    provider: str
    model: str
    abandoned: str


@dataclass(frozen=True)
class Answered:
    route: Route
    provider: str
    model: str
    end: StreamEnd
    ttft_s: float | None
    tokens_per_s: float | None
    load_s: float | None
    notes: tuple[str, ...] = ()
    # When the deadline that caused the last fallback fired (perf_counter), for
    # measuring fallback latency.
    trigger_at: float | None = None
    # The numbers of the passages from the user's files that the answering
    # provider was given (after fitting its context and dropping local-only ones).
    context_used: tuple[int, ...] = ()


RouterItem = TextDelta | Switched | Answered | PromptProgress


class RoutingError(HearthError):
    """No provider could answer. `route` lists every attempt; `partial` is the
    last text streamed before the failure."""

    def __init__(self, message: str, *, reason: str, route: Route, partial: str = "") -> None:
        super().__init__(message, reason=reason)
        self.route = route
        self.partial = partial


@dataclass
class _Outcome:
    provider: str
    model: str
    started: float
    first: float | None = None
    ended: float = 0.0
    text: str = ""
    end: StreamEnd | None = None
    error: HearthError | None = None
    reason: str | None = None
    detail: str = ""
    trigger_at: float | None = None
    last: float | None = None
    tries: int = 1

    @property
    def ok(self) -> bool:
        return (self.end is not None and self.error is None and self.reason is None
                and self.end.finish_reason != "cancelled")


@dataclass
class _Run:
    t0: float
    attempts: list[Attempt] = field(default_factory=list)
    outbound: Outbound | None = None
    load_s: float | None = None
    notes: list[str] = field(default_factory=list)
    partial: str = ""
    trigger_at: float | None = None
    last_error: HearthError | None = None
    context_used: tuple[int, ...] = ()

    def rel(self, t: float | None) -> float | None:
        return None if t is None else round(t - self.t0, 4)


_DONE = object()
_BEGUN = object()
_STOPPED = object()


class Router:
    """Runs one request at a time per call of `run`; holds no state between
    calls except through the circuit breaker it is given."""

    def __init__(
        self,
        local: Callable[[], LocalProvider] | None,
        remotes: Sequence[RemoteProvider],
        config: RoutingConfig,
        breaker: CircuitBreaker | None = None,
        allow_network: bool | None = None,
        foreground: Callable[[], contextlib.AbstractContextManager[object]] | None = None,
    ) -> None:
        self._local_factory = local
        # Held while the local model computes, so that background work of
        # every process of this data folder (the indexer) steps aside.
        self._foreground = foreground or contextlib.nullcontext
        # This request's network policy (None: the policy of the code that
        # builds the router); never read from, or written to, other requests.
        self.allow_network = offline.network_allowed() if allow_network is None else (
            allow_network and offline.network_allowed())
        self.remotes = list(remotes)
        self.config = config
        self.breaker = breaker or CircuitBreaker(config.breaker_failures,
                                                 config.breaker_cooldown_s)

    # -- choosing the order -----------------------------------------------------

    def resolve_policy(self, policy: str | None) -> str:
        policy = (policy or self.config.policy or "auto").strip()
        if not self.allow_network:
            return "local-only"
        if policy in POLICIES or policy == "local":
            return "local-only" if policy == "local" else policy
        if any(r.name == policy for r in self.remotes):
            return policy
        known = ", ".join([*POLICIES, *(r.name for r in self.remotes)])
        raise HearthError(
            f"{policy!r} is neither a routing policy nor a configured provider; "
            f"use one of: {known}.", reason="invalid_request",
        )

    def first_choice(self, policy: str | None, deep: bool = False) -> tuple[str, str]:
        """Who will most likely answer (before the prompt is known): for `Started`."""
        try:
            order = self._order(self.resolve_policy(policy), heavy=deep, heavy_why="")[0]
        except HearthError:
            order = []
        if not order:
            return "local", "unknown"
        first = order[0]
        if isinstance(first, str):
            return "local", "local model"
        return first.name, first.model

    def _order(self, policy: str, heavy: bool, heavy_why: str
               ) -> tuple[list[RemoteProvider | str], list[Attempt]]:
        """Candidates in order ("local" for the local engine), and skipped entries."""
        remotes = self.remotes if self.config.remote_fallback else []
        if policy == "local-only":
            return ["local"], []
        if policy == "remote-first":
            return [*remotes, "local"], []
        if policy != "auto":
            if not self.config.remote_fallback:
                raise HearthError(
                    "Remote providers are switched off (routing.remote_fallback), so nothing "
                    f"was sent to {policy}; turn it on with `hearth config set "
                    "routing.remote_fallback true`.", reason="remote_disabled")
            return [r for r in remotes if r.name == policy], []
        if heavy and remotes:
            heavy_first = [r for r in remotes if r.config.heavy] or list(remotes)
            rest = [r for r in remotes if r not in heavy_first]
            skipped = Attempt("local", "local model", 0.0, None, 0.0, "skipped",
                              "heavy_request", heavy_why)
            return [*heavy_first, *rest, "local"], [skipped]
        return ["local", *remotes], []

    # -- running -----------------------------------------------------------------

    # Complex on purpose: the fallback chain's decisions, in order.
    def run(self, plan: PromptPlan, params: GenParams, cancel: CancelToken,  # noqa: C901
            policy: str | None = None, deep: bool = False, patient: bool = False
            ) -> Iterator[RouterItem]:
        """Answer `plan`. `patient`: the user chose to wait for the local model,
        so it gets no deadline even when a fallback could take over."""
        run = _Run(time.perf_counter())
        resolved = self.resolve_policy(policy)
        cfg = self.config
        estimate = estimate_tokens("".join(m.content for m in plan.render()))
        heavy_why = ""
        if deep:
            heavy_why = "deep answer requested"
        elif cfg.heavy_prompt_tokens and estimate > cfg.heavy_prompt_tokens:
            heavy_why = (f"heavy request (about {estimate:,} prompt tokens, over "
                         f"{cfg.heavy_prompt_tokens:,})")
        order, skipped = self._order(resolved, bool(heavy_why), heavy_why)
        run.attempts.extend(skipped)
        if resolved not in ("local-only", "auto") and all(c == "local" for c in order):
            raise RoutingError(
                "No remote provider is set up, so nothing was sent; add one with "
                "`hearth providers add NAME --kind openai --base-url URL --model M`.",
                reason="no_provider", route=self._route(resolved, run, "no provider"))
        # Build the remote clients now so a fallback does not pay for it later.
        for cand in order:
            if not isinstance(cand, str):
                cand.client()
                break
        pending: Switched | None = None
        last_failed: Attempt | None = None
        for index, cand in enumerate(order):
            if cancel.cancelled:
                break
            if isinstance(cand, str):
                if heavy_why and index == 0:
                    continue
                # With nothing to take over, a deadline could only lose the answer.
                waits = patient or not self._can_take_over(order[index + 1:])
                steps = self._local(plan, params, cancel, run, deadlines=not waits)
            else:
                steps = self._remote(cand, plan, params, cancel, run)
            outcome: _Outcome | None = None
            try:
                while True:
                    item = next(steps)
                    if item is _BEGUN:
                        if pending is not None:
                            yield pending
                            pending = None
                    else:
                        yield item
            except StopIteration as stop:
                outcome = stop.value
            if outcome is None:  # skipped before starting
                continue
            if outcome.ok or (outcome.end is not None and outcome.end.finish_reason == "cancelled"):
                yield self._answered(resolved, run, outcome)
                return
            failed = run.attempts[-1]
            last_failed = failed
            run.partial = outcome.text
            run.last_error = outcome.error or HearthError(
                (outcome.detail[:1].upper() + outcome.detail[1:] + ".") if outcome.detail
                else "The answer failed.", reason=outcome.reason)
            run.trigger_at = outcome.trigger_at
            nxt = self._next_name(order, index, cancel)
            if nxt is not None:
                pending = Switched(failed, nxt[0], nxt[1], outcome.text)
        raise self._all_failed(resolved, run, last_failed, cancel)

    def _can_take_over(self, rest: Sequence[RemoteProvider | str]) -> bool:
        """Whether a provider after this one could answer if this one fails."""
        if not (self.allow_network and offline.network_allowed()):
            return False
        return any(not isinstance(cand, str) and self.breaker.allow(cand.name)
                   for cand in rest)

    def _next_name(self, order: list[RemoteProvider | str], index: int,
                   cancel: CancelToken) -> tuple[str, str] | None:
        if cancel.cancelled or index + 1 >= len(order):
            return None
        nxt = order[index + 1]
        if isinstance(nxt, str):
            return "local", "local model"
        return nxt.name, nxt.model

    def _local(self, plan: PromptPlan, params: GenParams, cancel: CancelToken,
               run: _Run, deadlines: bool = True) -> Generator[Any, None, _Outcome | None]:
        started = time.perf_counter()
        model = "local model"

        def fail(reason: str, detail: str, exc: HearthError) -> _Outcome:
            out = _Outcome("local", model, started, ended=time.perf_counter(), error=exc,
                           reason=reason, detail=detail)
            self._record(run, out, "failed")
            return out

        if self._local_factory is None:
            err = HearthError("No local model is set up.", reason="no_model")
            return fail("no_model", "no local model", err)
        try:
            provider = self._local_factory()
            model = provider.model
            already = provider.loaded is not None
            loaded = provider.load()
            model = loaded.name
            if not already:
                run.load_s = time.perf_counter() - started
        except HearthError as exc:
            # The file and the reason, so the fallback notice says what to fix.
            detail = ("no local model" if exc.reason == "no_model"
                      else "local model failed to load") + f": {as_phrase(str(exc))}"
            return fail(exc.reason, detail, exc)
        speed = prompt_speed.get(model)
        try:
            fitted, dropped = fit_local(provider, plan, loaded.n_ctx, speed,
                                        self.config.ttft_timeout_s if deadlines else 0.0)
        except ContextOverflowError as exc:
            return fail("context_overflow", "the prompt did not fit the local model's context "
                        f"({exc.prompt_tokens:,} of {exc.context_size:,} tokens)", exc)
        if dropped:
            run.notes.append(f"{dropped} earlier messages left out to fit the context window")
        if len(fitted.context) < len(plan.context):
            run.notes.append(f"{len(plan.context) - len(fitted.context)} passages from your "
                             "files left out to fit the local model's context and "
                             "first-token deadline")
        run.context_used = tuple(c.number for c in fitted.context)
        request = params.request(fitted)
        first: FirstTokenDeadline | None = None
        stall: float | None = None
        if deadlines:
            first = FirstTokenDeadline(self.config.ttft_timeout_s,
                                       self.config.reading_allowance)
            stall = self.config.stall_timeout_s
        # The first-token deadline starts once the model is loaded: loading is
        # not the model being slow to answer.
        with self._foreground():
            out = yield from self._pump(provider, model, request, cancel, first, stall,
                                        "local model")
        self._record(run, out)
        if out.first is not None and out.end is not None and out.end.prompt_tokens:
            prompt_speed.record(model, out.end.prompt_tokens, out.first - out.started)
        return out

    def _remote(self, provider: RemoteProvider, plan: PromptPlan, params: GenParams,
                cancel: CancelToken, run: _Run) -> Generator[Any, None, _Outcome | None]:
        name = provider.name
        now = time.perf_counter()
        if not self.allow_network or not offline.network_allowed():
            self._skip(run, provider, "offline", "offline mode is on", now)
            return None
        if not self.breaker.allow(name):
            self._skip(run, provider, "circuit_open",
                       f"{name} skipped after repeated failures", now)
            return None
        caps = provider.capabilities()
        if run.outbound is None:
            run.outbound = prepare_outbound(plan, self.config.redact_secrets)
        request = params.request(run.outbound.plan)
        run.context_used = tuple(c.number for c in run.outbound.plan.context)
        tokens = estimate_tokens("".join(m.content for m in request.messages))
        if tokens + MIN_ANSWER_TOKENS > caps.max_context:
            self._skip(run, provider, "context_overflow",
                       f"the prompt did not fit {name}'s context", now)
            return None
        return (yield from self._with_retries(provider, request, cancel, run))

    def _with_retries(self, provider: RemoteProvider, request: ChatRequest,
                      cancel: CancelToken, run: _Run) -> Generator[Any, None, _Outcome]:
        import tenacity

        cfg = self.config
        jitter = tenacity.wait_random_exponential(multiplier=cfg.backoff_s, max=cfg.max_backoff_s)
        outcomes: list[_Outcome] = []

        def retry_after(state: tenacity.RetryCallState) -> float | None:
            exc = state.outcome.exception() if state.outcome else None
            err = exc.outcome.error if isinstance(exc, _Retry) else None
            return err.retry_after if isinstance(err, RemoteError) else None

        def wait(state: tenacity.RetryCallState) -> float:
            return max(retry_after(state) or 0.0, jitter(state))

        class TooLong(tenacity.stop.stop_base):
            def __call__(self, state: tenacity.RetryCallState) -> bool:
                return (retry_after(state) or 0.0) > MAX_RETRY_AFTER_S or cancel.cancelled

        def sleep(seconds: float) -> None:
            cancel.wait(seconds)  # a stop ends the wait at once

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self._record(run, outcomes[-1], "retried")

        retrying = tenacity.Retrying(
            stop=tenacity.stop_any(tenacity.stop_after_attempt(1 + cfg.retries), TooLong()),
            wait=wait, retry=tenacity.retry_if_exception_type(_Retry),
            sleep=sleep, before_sleep=before_sleep, reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    # A remote's own timeout bounds both its first token and any
                    # silence mid-answer; routing.stall_timeout_s is for the local model.
                    out = yield from self._pump(provider, provider.model, request, cancel,
                                                FirstTokenDeadline(provider.config.timeout_s, 0),
                                                provider.config.timeout_s, provider.name)
                    out.tries = len(outcomes) + 1
                    outcomes.append(out)
                    err = out.error
                    if isinstance(err, RemoteError) and err.retryable and not out.text:
                        raise _Retry(out)
        except _Retry:
            pass
        out = outcomes[-1]
        if out.ok:
            self.breaker.success(provider.name)
        elif not cancel.cancelled:
            self.breaker.failure(provider.name)
        if out.tries > 1 and not out.ok:
            out.detail += f" after {out.tries} tries"
        self._record(run, out)
        return out

    # Complex on purpose: one wait loop for items, stop, timeouts and the end.
    def _pump(self, provider: Any, model: str, request: ChatRequest, cancel: CancelToken,  # noqa: C901
              first_token: FirstTokenDeadline | None, stall_s: float | None, label: str
              ) -> Generator[Any, None, _Outcome]:
        """Run `provider.stream` on its own thread; yield its text (and the
        local model's prompt progress); end it when a deadline passes (None:
        no deadline). Returns what happened."""
        child = CancelToken()
        items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        cancel.on_cancel(child.cancel)
        # A stop from the user ends the wait at once, even while the provider
        # is still blocked (a silent server before its headers).
        cancel.on_cancel(lambda: items.put(_STOPPED))

        def work() -> None:
            try:
                for item in provider.stream(request, child):
                    items.put(item)
            except BaseException as exc:  # noqa: BLE001  handed to the router, never lost
                items.put(exc)
            finally:
                items.put(_DONE)

        out = _Outcome(provider.name, model, time.perf_counter())
        if first_token is not None:
            first_token.start(out.started)
        # The attempt runs under this request's network policy.
        worker = offline.start_thread(work, f"hearth-attempt-{provider.name}")
        text: list[str] = []
        try:
            yield _BEGUN
            while True:
                deadline: float | None = None
                if out.first is None:
                    if first_token is not None:
                        deadline = first_token.due()
                elif stall_s is not None:
                    assert out.last is not None
                    deadline = out.last + stall_s
                try:
                    item = items.get(timeout=None if deadline is None
                                     else max(0.0, deadline - time.perf_counter()))
                except queue.Empty:
                    out.trigger_at = time.perf_counter()
                    child.cancel()
                    if out.first is None:
                        assert first_token is not None
                        out.reason = "ttft_timeout"
                        out.detail = first_token.describe(label, out.trigger_at)
                    else:
                        out.reason = "stalled"
                        out.detail = f"{label} stalled for {stall_s:g} s mid-answer"
                    break
                if item is _DONE:
                    break
                if item is _STOPPED:
                    out.end = StreamEnd("cancelled", 0, 0, model)
                    break
                if isinstance(item, HearthError):
                    out.error = item
                    out.reason = item.reason
                    out.detail = getattr(item, "detail", "") or f"{label} failed: {item}"
                    out.trigger_at = time.perf_counter()
                elif isinstance(item, BaseException):
                    log.error("%s failed", provider.name, exc_info=item)
                    out.error = HearthError(f"{label} failed: {item}.", reason="internal")
                    out.reason, out.detail = "internal", f"{label} failed unexpectedly"
                    out.trigger_at = time.perf_counter()
                elif isinstance(item, TextDelta):
                    now = time.perf_counter()
                    if out.first is None:
                        out.first = now
                    text.append(item.text)
                    yield item
                    # The consumer's own time does not count as a stall.
                    out.last = time.perf_counter()
                elif isinstance(item, StreamEnd):
                    out.end = item
                    out.model = item.model or model
                elif isinstance(item, PromptProgress):
                    if first_token is not None:
                        first_token.progress(item, time.perf_counter())
                    yield item
        finally:
            out.ended = time.perf_counter()
            out.text = "".join(text)
            # No attempt's thread outlives its attempt: a stopped provider
            # ends its read at once (a remote one shuts its socket down).
            child.cancel()
            join_s = 5.0
            worker.join(join_s)
            if worker.is_alive():
                log.warning("%s did not stop within %g s of its attempt ending; its "
                            "thread is left to finish on its own", label, join_s)
        if isinstance(out.error, RemoteError) and out.error.detail:
            out.detail = f"{label}: {out.error.detail}"
        return out

    # -- records -----------------------------------------------------------------

    def _skip(self, run: _Run, provider: RemoteProvider, reason: str, detail: str,
              now: float) -> None:
        run.attempts.append(Attempt(provider.name, provider.model, run.rel(now) or 0.0, None,
                                    run.rel(now) or 0.0, "skipped", reason, detail))

    def _record(self, run: _Run, out: _Outcome, outcome: str | None = None) -> None:
        if outcome is None:
            if out.ok:
                outcome = "answered"
            elif out.end is not None and out.end.finish_reason == "cancelled":
                outcome = "cancelled"
            elif out.text:
                outcome = "abandoned"
            else:
                outcome = "failed"
        end = out.end
        prompt_tokens = end.prompt_tokens if end else 0
        completion_tokens = end.completion_tokens if end else 0
        cost = None
        if end is not None and out.provider != "local":
            remote = next((r for r in self.remotes if r.name == out.provider), None)
            if remote is not None:
                cost = cost_usd(remote.capabilities(), prompt_tokens, completion_tokens)
        run.attempts.append(Attempt(
            out.provider, out.model, run.rel(out.started) or 0.0, run.rel(out.first),
            run.rel(out.ended) or 0.0, outcome, out.reason, out.detail,
            prompt_tokens, completion_tokens, cost,
        ))

    def _route(self, policy: str, run: _Run, summary: str) -> Route:
        costs = [a.cost_usd for a in run.attempts if a.cost_usd is not None]
        ob = run.outbound
        return Route(policy, tuple(run.attempts), summary,
                     dict(ob.redactions) if ob else {}, ob.local_only_dropped if ob else 0,
                     round(sum(costs), 8) if costs else None,
                     ob.history_withheld if ob else 0)

    def _answered(self, policy: str, run: _Run, out: _Outcome) -> Answered:
        assert out.end is not None
        summary = f"answered by {out.provider}/{out.model}"
        why = next((a.detail for a in run.attempts
                    if a.outcome in ("failed", "abandoned", "skipped") and a.detail), "")
        if why:
            summary += f" — {why}"
        tps = None
        if out.first is not None and out.last is not None and out.end.completion_tokens > 1 \
                and out.last > out.first:
            tps = (out.end.completion_tokens - 1) / (out.last - out.first)
        ttft = None
        if out.first is not None:
            ttft = out.first - run.t0 - (run.load_s or 0.0)
        notes = [*run.notes, *out.end.notes]
        ob = run.outbound
        if out.provider != "local" and ob is not None:
            notes += withheld_notes(out.provider, ob.local_only_dropped, ob.history_withheld)
        return Answered(self._route(policy, run, summary), out.provider, out.model, out.end,
                        ttft, tps, run.load_s, tuple(notes), run.trigger_at,
                        run.context_used)

    def _all_failed(self, policy: str, run: _Run, last: Attempt | None,
                    cancel: CancelToken) -> RoutingError:
        tried = [a for a in run.attempts if a.outcome != "retried"]
        if cancel.cancelled:
            return RoutingError("The answer was stopped.", reason="cancelled",
                                route=self._route(policy, run, "stopped"), partial=run.partial)
        real = [a for a in tried if a.outcome != "skipped"]
        if len(tried) == 1 and last is not None and len(real) == 1 and run.last_error:
            # One provider, one failure: its own sentence says it best.
            return RoutingError(str(run.last_error), reason=run.last_error.reason,
                                route=self._route(policy, run, f"{last.provider} failed"),
                                partial=run.partial)
        words = "; ".join(a.detail or f"{a.provider} {a.outcome}" for a in tried)
        if not tried:
            words = "nothing was tried"
        return RoutingError(f"No provider could answer: {words}.", reason="all_failed",
                            route=self._route(policy, run, f"no answer: {words}"),
                            partial=run.partial)


def withheld_notes(provider: str, passages: int, messages: int) -> list[str]:
    """What the user is told when text from local-only folders stayed behind."""
    notes = []
    if messages:
        notes.append(f"{messages} earlier message{'s' if messages != 1 else ''} of this "
                     f"conversation {'were' if messages != 1 else 'was'} not sent to "
                     f"{provider}: {'they quote' if messages != 1 else 'it quotes'} "
                     "files from a local-only folder")
    if passages:
        notes.append(f"{passages} passage{'s' if passages != 1 else ''} from local-only "
                     f"folders {'were' if passages != 1 else 'was'} not sent to {provider}")
    return notes


class _Retry(Exception):
    def __init__(self, outcome: _Outcome) -> None:
        super().__init__(outcome.detail)
        self.outcome = outcome
