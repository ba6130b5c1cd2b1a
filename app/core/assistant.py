"""The core facade. `Assistant.ask` turns a question into a stream of typed
events (see `app.core.events`); the CLI and the window are thin shells over it.

Every question and answer is stored as it happens, so a failure or a stop
never loses what was already written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from app.core import foreground, offline, secrets, trace
from app.core.answer_cache import CACHE_NOTE, AnswerCache, Hit, folder_scope, scope_key
from app.core.conversations import ConversationStore
from app.core.errors import HearthError
from app.core.events import (
    Attempt,
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
)
from app.core.llm.local import LoadedModel, LocalModelConfig, LocalProvider
from app.core.llm.pacing import CircuitBreaker
from app.core.llm.provider import CancelToken, ChatMessage, PromptProgress, TextDelta
from app.core.llm.registry import capabilities_for, load_prices, load_providers
from app.core.llm.router import (
    Answered,
    GenParams,
    RemoteProvider,
    Router,
    RoutingConfig,
    RoutingError,
    Switched,
)
from app.core.models.files import resolve_model_path
from app.core.models.fit import FITS, Shape, estimate
from app.core.prompting import ContextChunk, PromptPlan
from app.core.prompts import load_prompt
from app.paths import Paths
from app.settings import Key, Settings

if TYPE_CHECKING:
    from app.core.knowledge.base import KnowledgeBase, Searcher

log = logging.getLogger(__name__)

# Longest question accepted, in characters (about 64k tokens): past this the
# answer could not fit any local context, and a paste this long is a mistake.
MAX_QUESTION_CHARS = 256_000


@dataclass(frozen=True)
class AskOptions:
    model_path: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None
    offline: bool = False
    system_prompt: str | None = None
    # A versioned prompt ("ID@VERSION") for this question; None: generation.prompt.
    prompt: str | None = None
    # A routing policy (auto, local-only, remote-first) or a provider's name
    # for this question only; None means the routing.policy setting.
    route: str | None = None
    # Ask for the heavy remote model (a routing rule), whatever the prompt's size.
    deep: bool = False
    # Answer from the indexed folders (when there are any): retrieved passages
    # go into the prompt as numbered, untrusted reference text.
    use_files: bool = True
    folders: tuple[str, ...] | None = None  # only these indexed folders
    path_glob: str | None = None  # only files whose path matches
    # Wait for the local model however long it takes, even when a remote
    # provider could take over (the user chose "Keep waiting").
    patient: bool = False
    # Answer anew, never from the answer cache (Ask again, Regenerate); the
    # new answer replaces the cached ones it answers again.
    fresh: bool = False


NO_FILE_MATCHED = "no passage of your files matched this question, so it was answered without them"


class Assistant:
    """Owns the providers and the conversation store for one process."""

    def __init__(self, settings: Settings, paths: Paths, store: ConversationStore | None = None,
                 knowledge: Searcher | None = None):
        self.settings = settings
        self.paths = paths
        self._store = store
        # What searches the index: the window's index process, or None: a
        # read-only KnowledgeBase of this process is opened when folders exist.
        self._knowledge = knowledge
        self._own_knowledge: KnowledgeBase | None = None
        self._providers: dict[LocalModelConfig, LocalProvider] = {}
        self._remotes: dict[tuple[str, str | None], RemoteProvider] = {}
        self._lock = threading.Lock()
        self._cache: AnswerCache | None = None
        # Kept for the life of the process, so a failing provider stays skipped
        # across questions until its cooldown ends.
        routing = settings.snapshot().routing
        self._breaker = CircuitBreaker(routing.breaker_failures, routing.breaker_cooldown_s)

    @property
    def store(self) -> ConversationStore:
        # Opened by whichever thread asks first (the window's background work).
        with self._lock:
            if self._store is None:
                self.paths.ensure(self.paths.data_dir)
                self._store = ConversationStore(self.paths.conversations_db)
            return self._store

    def local_config(self, model_path: str | None = None) -> LocalModelConfig:
        s = self.settings.snapshot()
        return LocalModelConfig.from_settings(resolve_model_path(model_path or s.model.path), s)

    def local_provider(self, model_path: str | None = None) -> LocalProvider:
        """The engine for the current model and settings, kept loaded. Asking for
        another model (or changed settings) unloads the previous one first: two
        models in memory at once is rarely what a desktop user can afford."""
        config = self.local_config(model_path)
        with self._lock:
            provider = self._providers.get(config)
            if provider is None:
                stale, self._providers = list(self._providers.values()), {}
                for old in stale:
                    old.close()
                provider = self._providers[config] = LocalProvider(config)
            return provider

    def switch_model(self, model_path: str, ignore_fit: bool = False) -> LoadedModel:
        """Load another model, then make it the current one (`model.path`). If it
        fails to load, the current model stays loaded and in use."""
        config = replace(self.local_config(), path=resolve_model_path(model_path or None),
                         check_memory=not ignore_fit)
        with self._lock:
            old = list(self._providers.items())
        keep_old = config.check_memory and _fits_beside(config, [p for _, p in old])
        if not keep_old:
            with self._lock:
                self._providers = {}
            for _, provider in old:
                provider.close()
        new = LocalProvider(config)
        try:
            loaded = new.load()
        except BaseException:
            new.close()
            if not keep_old and old:
                # Back to the model that worked, so Hearth always has one.
                with self._lock:
                    self._providers = {cfg: LocalProvider(cfg) for cfg, _ in old[:1]}
            raise
        self.settings.set(Key.MODEL_PATH, model_path)
        self.settings.set(Key.MODEL_IGNORE_FIT, ignore_fit)
        with self._lock:
            stale = [p for p in self._providers.values() if p is not new]
            self._providers = {self.local_config(): new}
        for provider in stale:
            provider.close()
        return loaded

    def remote_providers(self) -> list[RemoteProvider]:
        """The configured remote chain, in order (clients kept warm between questions)."""
        from app.core.llm.anthropic import AnthropicProvider
        from app.core.llm.openai_compat import OpenAICompatProvider

        configs = load_providers(self.paths)
        prices = load_prices(self.paths) if configs else {}
        out: list[RemoteProvider] = []
        with self._lock:
            for config in configs:
                key = secrets.get_key(config.name)
                provider = self._remotes.get((repr(config), key))
                if provider is None:
                    kind = AnthropicProvider if config.kind == "anthropic" else (
                        OpenAICompatProvider)
                    provider = kind(config, key, capabilities_for(config, prices))
                    self._remotes[(repr(config), key)] = provider
                out.append(provider)
        return out

    def router(self, opts: AskOptions | None = None) -> Router:
        """A router for one request, under the network policy of the code
        that calls this (see `offline.policy`)."""
        opts = opts or AskOptions()
        allowed = offline.network_allowed()
        remotes = self.remote_providers() if allowed else []
        return Router(lambda: self.local_provider(opts.model_path), remotes,
                      RoutingConfig.from_settings(self.settings.snapshot()), self._breaker,
                      allow_network=allowed,
                      foreground=lambda: foreground.answering(self.paths))

    def close(self) -> None:
        with self._lock:
            providers, self._providers = list(self._providers.values()), {}
            remotes, self._remotes = list(self._remotes.values()), {}
        for provider in providers:
            provider.close()
        for remote in remotes:
            remote.close()
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._own_knowledge is not None:
            self._own_knowledge.close()
            self._own_knowledge = None

    def ask(
        self,
        question: str,
        conversation_id: str | None = None,
        options: AskOptions | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[Event]:
        """Answer `question`, continuing `conversation_id` if given."""
        opts = options or AskOptions()
        cancel = cancel or CancelToken()
        question = question.strip()
        if not question:
            yield Error("The question is empty; type something to ask.", "invalid_request")
            return
        if len(question) > MAX_QUESTION_CHARS:
            yield Error(
                f"The question is {len(question):,} characters long; Hearth accepts up to "
                f"{MAX_QUESTION_CHARS:,}. Shorten it or attach it as a file.",
                "invalid_request",
            )
            return
        try:
            store = self.store
            conv = store.get(conversation_id) if conversation_id else store.create(question)
            history = [
                ChatMessage(m.role, m.content, m.local_only)  # type: ignore[arg-type]
                for m in store.messages(conv.id)
                if m.status == "complete" and m.role in ("user", "assistant")
            ]
            user_msg = store.add_message(conv.id, "user", question)
        except HearthError as exc:
            yield Error(str(exc), exc.reason)
            return
        except OSError as exc:
            yield Error(str(exc), "storage")
            return
        # Offline mode and the local-only policy are one switch: nothing this
        # question does leaves the machine (its own policy, enforced by
        # `offline`; other questions in flight keep theirs).
        s = self.settings.snapshot()
        policy = opts.route or s.routing.policy
        stay_local = opts.offline or s.network.offline or policy in (
            "local-only", "local")
        yield from offline.iterate(
            self._answer(conv.id, user_msg.id, question, history, opts, cancel,
                         new=conversation_id is None),
            allow_network=not stay_local)

    def _answer(
        self, conv_id: str, user_msg_id: str, question: str, history: list[ChatMessage],
        opts: AskOptions, cancel: CancelToken, new: bool = False,
    ) -> Iterator[Event]:
        s = self.settings.snapshot()
        started = time.perf_counter()
        text: list[str] = []
        provider_name, model_name = "local", "unknown"
        route: Route | None = None
        plan: PromptPlan | None = None  # for the trace of a failed answer
        try:
            router = self.router(opts)
            provider_name, model_name = router.first_choice(opts.route, opts.deep)
            if provider_name == "local":
                model_name = self._local_name(opts.model_path)
            prompt = load_prompt(opts.prompt or s.generation.prompt)
            system = opts.system_prompt if opts.system_prompt is not None else (
                s.generation.system_prompt or prompt.system)
            probe = self._cache_probe(question, history, opts, prompt.ref, system,
                                      provider_name, model_name)
            if probe.hit is not None:
                yield from self._serve_cached(conv_id, user_msg_id, question, probe.hit,
                                              prompt.ref, started)
                return
            yield Started(conv_id, user_msg_id, provider_name, model_name)
            context, retrieval_note = self._retrieve(question, opts)
            plan = PromptPlan(system, tuple(history), question, context, prompt)
            if context:
                yield Sources(tuple(c.source() for c in context))
            params = GenParams(
                max_tokens=opts.max_tokens or s.generation.max_tokens,
                temperature=(opts.temperature if opts.temperature is not None
                             else s.generation.temperature),
                top_p=s.generation.top_p,
                seed=opts.seed,
                repeat_penalty=s.generation.repeat_penalty,
            )
            answered: Answered | None = None
            for item in router.run(plan, params, cancel, opts.route, opts.deep, opts.patient):
                if isinstance(item, TextDelta):
                    text.append(item.text)
                    yield Delta(item.text)
                elif isinstance(item, PromptProgress):
                    yield Progress(item.done, item.total)
                elif isinstance(item, Switched):
                    text.clear()
                    failed = item.failed
                    yield Fallback(failed.provider, item.provider, item.model,
                                   failed.reason or "", failed.detail, item.abandoned,
                                   can_wait=failed.provider == "local" and failed.reason in (
                                       "ttft_timeout", "stalled"))
                else:
                    answered = item
            assert answered is not None
        except RoutingError as exc:
            yield from self._fail(conv_id, started, exc.partial or "".join(text), exc, exc.route,
                                  new=new, plan=plan)
            return
        except HearthError as exc:
            yield from self._fail(conv_id, started, "".join(text), exc, None,
                                  provider_name, model_name, new=new, plan=plan)
            return
        except Exception as exc:  # never let an unexpected failure vanish
            log.exception("answer failed")
            err = HearthError(f"Something went wrong while answering: {exc}.", reason="internal")
            yield from self._fail(conv_id, started, "".join(text), err, route,
                                  provider_name, model_name, new=new, plan=plan)
            return
        ended = time.perf_counter()
        answer = "".join(text)
        end = answered.end
        timings = Timings(ttft_s=answered.ttft_s, total_s=ended - started,
                          tokens_per_s=answered.tokens_per_s, load_s=answered.load_s)
        usage = Usage(end.prompt_tokens, end.completion_tokens)
        route = answered.route
        notes = list(answered.notes)
        if retrieval_note:
            notes.append(retrieval_note)
        used = set(answered.context_used)
        kept = tuple(c for c in context if c.number in used)
        if len(kept) < len(context):
            # Some passages shown earlier never reached the model: correct the list.
            yield Sources(tuple(c.source() for c in kept))
        sources = [asdict(c.source()) for c in kept]
        outcome = "cancelled" if end.finish_reason == "cancelled" else "answered"
        # An answer the local model wrote from local-only text (passages, or
        # earlier messages that quote them) may quote it: it is marked too.
        local_only = answered.provider == "local" and (
            any(c.local_only for c in kept) or any(m.local_only for m in history))
        if outcome == "cancelled" and new and not answer:
            # Stopped before a word of the first answer: no empty conversation is left.
            yield route
            self._discard(conv_id)
            yield Error("The answer was stopped before it began.", "cancelled")
            return
        yield route
        traced = trace.build(
            prompt_ref=prompt.ref, route=route, question=question, context=context, used=used,
            answer=answer, status=outcome, provider=answered.provider, model=answered.model,
            usage=usage, timings=timings, finish_reason=end.finish_reason,
            retrieval_note=retrieval_note, cache=probe.state)
        stored = self.store.add_message(
            conv_id, "assistant", answer,
            status="complete" if outcome == "answered" else "cancelled",
            model=answered.model, provider=answered.provider,
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
            ttft_s=timings.ttft_s, tokens_per_s=timings.tokens_per_s, total_s=timings.total_s,
            route=asdict(route),
            sources=sources or None,
            local_only=local_only, prompt_ref=prompt.ref, trace=traced.to_dict(),
        )
        if outcome == "answered" and end.finish_reason == "stop" and answer.strip():
            # Only a whole answer is kept: never one stopped, failed or cut short.
            self._cache_keep(probe, stored.id, question, answered.provider,
                             [c.path for c in kept])
        yield Finished(conv_id, user_msg_id, answer, answered.provider, answered.model, usage,
                       timings, end.finish_reason, tuple(notes), prompt.ref, local_only,
                       traced)

    # -- the answer cache ----------------------------------------------------------

    @property
    def cache(self) -> AnswerCache:
        if self._cache is None:
            # The window's index process embeds the question where the model
            # already runs; the CLI embeds it here.
            self._cache = AnswerCache(self.store, self.paths, self.settings,
                                      getattr(self._knowledge, "embed_question", None))
        return self._cache

    def _cache_probe(self, question: str, history: list[ChatMessage], opts: AskOptions,
                     prompt_ref: str, system: str, provider: str, model: str) -> _Probe:
        """Look the question up (unless the cache is off or the user asked
        again). Never fails the answer: a problem is logged and the
        question is answered as if the cache were off."""
        s = self.settings.snapshot()
        if not s.cache.enabled:
            return _Probe("off")
        policy = opts.route or s.routing.policy
        stay_local = not offline.network_allowed()
        try:
            model_key = (str(self.local_config(opts.model_path).path) if provider == "local"
                         else f"{provider}/{model}")
        except HearthError:
            model_key = f"{provider}/{model}"
        try:
            cache = self.cache
            vector = cache.embed(question)
            scope = scope_key(
                embedder=cache.embedder.id, model=model_key, deep=opts.deep, prompt=prompt_ref,
                system=system, policy="local-only" if stay_local else policy,
                files=[folder_scope(self.paths), opts.folders, opts.path_glob]
                if opts.use_files else None,
                history=[[m.role, m.content] for m in history])
            probe = _Probe("off" if opts.fresh else "miss", vector, scope,
                           "local-only" if stay_local else policy, opts.fresh)
            if opts.fresh:
                return probe
            allow_remote = not stay_local and s.routing.remote_fallback
            hit = cache.lookup(question, vector, scope, allow_remote=allow_remote)
        except Exception:
            log.exception("the answer cache could not be used; answering without it")
            return _Probe("off")
        if hit is not None:
            probe = replace(probe, state="hit", hit=hit)
        return probe

    def _serve_cached(self, conv_id: str, user_msg_id: str, question: str, hit: Hit,
                      prompt_ref: str, started: float) -> Iterator[Event]:
        """The earlier answer, as a new message of this conversation, with a
        trace that says where it came from (and no model time or tokens)."""
        msg = hit.message
        provider, model = msg.provider or "local", msg.model or "unknown"
        yield Started(conv_id, user_msg_id, provider, model)
        sources = tuple(Source(**s) for s in (msg.sources or ()) if isinstance(s, dict))
        if sources:
            yield Sources(sources)
        yield Delta(msg.content)
        policy = self.settings.snapshot().routing.policy
        earlier = trace.from_message(msg)
        route = Route(earlier.policy or policy, (),
                      f"{CACHE_NOTE.lower()} by {provider}/{model} (similarity "
                      f"{hit.similarity:.2f}; ask with --fresh for a new one)")
        yield route
        total = time.perf_counter() - started
        timings = Timings(total_s=total)
        traced = replace(
            earlier, policy=route.policy, status="answered", finish_reason="stop", attempts=(),
            prompt_tokens=0, completion_tokens=0, ttft_s=None, tokens_per_s=None,
            total_s=round(total, 4), load_s=None, cost_usd=None, query=question, cache="hit",
            cache_source=msg.id, cache_similarity=round(hit.similarity, 4), redactions={},
            local_only_withheld=0, history_withheld=0, error_reason=None, legacy=False,
            prompt_id=earlier.prompt_id or prompt_ref.partition("@")[0])
        self.store.add_message(
            conv_id, "assistant", msg.content, status="complete", model=model,
            provider=provider, prompt_tokens=0, completion_tokens=0, total_s=total,
            route=asdict(route), sources=msg.sources, local_only=msg.local_only,
            prompt_ref=msg.prompt_ref or prompt_ref, trace=traced.to_dict())
        self.cache.served(hit)
        yield Finished(conv_id, user_msg_id, msg.content, provider, model, Usage(), timings,
                       "stop", (), msg.prompt_ref or prompt_ref, msg.local_only, traced)

    def _cache_keep(self, probe: _Probe, message_id: str, question: str, provider: str,
                    paths: list[str]) -> None:
        if probe.vector is None or probe.scope is None:
            return
        try:
            self.cache.remember(message_id, question, probe.vector, probe.scope, provider,
                                probe.policy, paths, replace=probe.fresh)
        except Exception:
            log.exception("the answer could not be kept in the answer cache")

    def _local_name(self, model_path: str | None) -> str:
        try:
            return self.local_config(model_path).path.stem
        except HearthError:
            return "unknown"

    def _retrieve(self, question: str, opts: AskOptions) -> tuple[tuple[ContextChunk, ...],
                                                                    str | None]:
        """Passages from the indexed folders for this question, best first.
        Never fails the answer: a problem becomes a note."""
        if not opts.use_files:
            return (), None
        try:
            kb = self._knowledge or self._own_knowledge
            if kb is None:
                from app.core.knowledge.base import KnowledgeBase, has_folders

                if not has_folders(self.paths):
                    return (), None
                kb = self._own_knowledge = KnowledgeBase(self.paths, self.settings,
                                                         writer=False)
            results = kb.search(question, folders=opts.folders, path_glob=opts.path_glob)
        except Exception as exc:
            log.exception("searching the indexed folders failed")
            return (), f"your files could not be searched ({exc})"
        minimum = self.settings.snapshot().knowledge.min_relevance
        relevant = [(rank, r) for rank, r in enumerate(results, start=1)
                    if r.relevant(minimum)]
        if results and not relevant:
            return (), NO_FILE_MATCHED
        return tuple(
            ContextChunk(n, r.path, r.text, r.start_line, r.end_line, r.page, r.score,
                         r.local_only, r.vector_score, r.keyword_score, rank)
            for n, (rank, r) in enumerate(relevant, start=1)
        ), None


    def _discard(self, conv_id: str) -> None:
        try:
            self.store.delete(conv_id)
        except (HearthError, OSError):
            log.exception("could not remove the conversation of a failed first question")

    def _fail(
        self, conv_id: str, started: float, partial: str, exc: HearthError,
        route: Route | None, provider: str = "local", model: str = "unknown",
        new: bool = False, plan: PromptPlan | None = None,
    ) -> Iterator[Event]:
        ended = time.perf_counter()
        if route is None:
            attempt = Attempt(provider, model, 0.0, None, ended - started, "failed",
                              exc.reason, str(exc))
            route = Route("local", (attempt,), f"{provider}/{model} failed: {exc}")
        answered_by = next((a for a in reversed(route.attempts)
                            if a.outcome not in ("skipped", "retried")), None)
        if answered_by is not None:
            provider, model = answered_by.provider, answered_by.model
        yield route
        detail = repr(exc.__cause__) if exc.__cause__ else ""
        if new and not partial:
            # A first question that got no answer leaves no empty conversation
            # behind (the shells keep the question for the user to send again).
            self._discard(conv_id)
            yield Error(str(exc), exc.reason, detail=detail)
            return
        traced = trace.build(
            prompt_ref=plan.prompt.ref if plan else "", route=route,
            question=plan.question if plan else "", context=plan.context if plan else (),
            used=None, answer=partial, status="cancelled" if exc.reason == "cancelled"
            else "failed", provider=provider, model=model,
            timings=Timings(total_s=ended - started), error_reason=exc.reason)
        try:
            self.store.add_message(conv_id, "assistant", partial, status="error",
                                   model=model, provider=provider, error=str(exc),
                                   total_s=ended - started, route=asdict(route),
                                   prompt_ref=plan.prompt.ref if plan else None,
                                   trace=traced.to_dict())
        except (HearthError, OSError):
            log.exception("could not store the failed answer")
        yield Error(str(exc), exc.reason, detail=detail, conversation_id=conv_id,
                    partial=partial, trace=traced)


@dataclass(frozen=True)
class _Probe:
    """What the cache said about one question: `state` goes into the trace;
    `vector` and `scope` are kept to store the answer under."""

    state: str
    vector: Any = None
    scope: str | None = None
    policy: str = ""
    fresh: bool = False
    hit: Hit | None = None


def _fits_beside(config: LocalModelConfig, loaded: list[LocalProvider]) -> bool:
    """Whether the new model fits in what is free with the current one still
    loaded (then the current one keeps answering until the switch is done)."""
    if not loaded:
        return True
    try:
        size = config.path.stat().st_size
    except OSError:
        return True
    shape = Shape(size, None, None, None, None)
    return estimate(shape, config.context_size or 4096, gpus=[]).verdict == FITS
