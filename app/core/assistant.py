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
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from app.core import offline
from app.core.conversations import ConversationStore
from app.core.errors import ContextOverflowError, HearthError
from app.core.events import (
    Attempt,
    Delta,
    Error,
    Event,
    Finished,
    Route,
    Sources,
    Started,
    Timings,
    Usage,
)
from app.core.llm.local import MIN_ANSWER_TOKENS, LocalModelConfig, LocalProvider
from app.core.llm.provider import CancelToken, ChatMessage, ChatRequest, StreamEnd, TextDelta
from app.core.models.files import resolve_model_path
from app.core.prompting import ContextChunk, PromptPlan
from app.paths import Paths
from app.settings import Settings

if TYPE_CHECKING:
    from app.core.knowledge.base import KnowledgeBase

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
    # Answer from the indexed folders (when there are any): retrieved passages
    # go into the prompt as numbered, untrusted reference text.
    use_files: bool = True
    folders: tuple[str, ...] | None = None  # only these indexed folders
    path_glob: str | None = None  # only files whose path matches


class Assistant:
    """Owns the providers and the conversation store for one process."""

    def __init__(self, settings: Settings, paths: Paths, store: ConversationStore | None = None,
                 knowledge: KnowledgeBase | None = None):
        self.settings = settings
        self.paths = paths
        self._store = store
        # A KnowledgeBase shared with an indexer in this process (the window), or
        # None: a read-only one is opened when folders are indexed.
        self._knowledge = knowledge
        self._owns_knowledge = False
        self._providers: dict[LocalModelConfig, LocalProvider] = {}
        self._lock = threading.Lock()

    @property
    def store(self) -> ConversationStore:
        if self._store is None:
            self.paths.ensure(self.paths.data_dir)
            self._store = ConversationStore(self.paths.conversations_db)
        return self._store

    def local_config(self, model_path: str | None = None) -> LocalModelConfig:
        s = self.settings
        return LocalModelConfig(
            path=resolve_model_path(model_path or s["model.path"]),
            context_size=s["model.context_size"],
            threads=s["model.threads"],
            gpu_layers=s["model.gpu_layers"],
            batch_size=s["model.batch_size"],
        )

    def local_provider(self, model_path: str | None = None) -> LocalProvider:
        """The engine for a model (one per model file and settings, kept loaded)."""
        config = self.local_config(model_path)
        with self._lock:
            provider = self._providers.get(config)
            if provider is None:
                provider = self._providers[config] = LocalProvider(config)
            return provider

    def close(self) -> None:
        with self._lock:
            providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            provider.close()
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._owns_knowledge and self._knowledge is not None:
            self._knowledge.close()
            self._knowledge = None

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
        if opts.offline or self.settings["network.offline"]:
            offline.enable()
        try:
            store = self.store
            conv = store.get(conversation_id) if conversation_id else store.create(question)
            history = [
                ChatMessage(m.role, m.content)  # type: ignore[arg-type]
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
        yield from self._answer(conv.id, user_msg.id, question, history, opts, cancel)

    def _answer(
        self, conv_id: str, user_msg_id: str, question: str, history: list[ChatMessage],
        opts: AskOptions, cancel: CancelToken,
    ) -> Iterator[Event]:
        s = self.settings
        started = time.perf_counter()
        text: list[str] = []
        provider_name, model_name = "local", "unknown"
        first_token: float | None = None
        try:
            provider = self.local_provider(opts.model_path)
            provider_name, model_name = provider.name, provider.model
            yield Started(conv_id, user_msg_id, provider_name, model_name)
            load_started = time.perf_counter()
            already = provider.loaded is not None
            loaded = provider.load()
            load_s = None if already else time.perf_counter() - load_started
            model_name = loaded.name
            system = opts.system_prompt if opts.system_prompt is not None else (
                s["generation.system_prompt"])
            context, retrieval_note = self._retrieve(question, opts)
            plan = PromptPlan(system, tuple(history), question, context)
            plan, dropped = self._fit(provider, plan, loaded.n_ctx)
            if plan.context:
                yield Sources(tuple(c.source() for c in plan.context))
            request = ChatRequest(
                messages=plan.render(),
                max_tokens=opts.max_tokens or s["generation.max_tokens"],
                temperature=(opts.temperature if opts.temperature is not None
                             else s["generation.temperature"]),
                top_p=s["generation.top_p"],
                seed=opts.seed,
            )
            gen_started = time.perf_counter()
            last_token = gen_started
            end: StreamEnd | None = None
            for item in provider.stream(request, cancel):
                if isinstance(item, TextDelta):
                    now = time.perf_counter()
                    if first_token is None:
                        first_token = now
                    last_token = now
                    text.append(item.text)
                    yield Delta(item.text)
                else:
                    end = item
            assert end is not None
        except HearthError as exc:
            yield from self._fail(conv_id, provider_name, model_name, started, first_token,
                                  text, exc)
            return
        except Exception as exc:  # never let an unexpected failure vanish
            log.exception("answer failed")
            err = HearthError(f"Something went wrong while answering: {exc}.", reason="internal")
            yield from self._fail(conv_id, provider_name, model_name, started, first_token,
                                  text, err)
            return
        ended = time.perf_counter()
        answer = "".join(text)
        tps = None
        if first_token is not None and end.completion_tokens > 1 and last_token > first_token:
            tps = (end.completion_tokens - 1) / (last_token - first_token)
        timings = Timings(
            ttft_s=(first_token - gen_started) if first_token is not None else None,
            total_s=ended - started,
            tokens_per_s=tps,
            load_s=load_s,
        )
        usage = Usage(end.prompt_tokens, end.completion_tokens)
        notes = list(end.notes)
        if dropped:
            notes.append(f"{dropped} earlier messages left out to fit the context window")
        if len(plan.context) < len(context):
            notes.append(f"{len(context) - len(plan.context)} passages from your files left out "
                         "to fit the context window")
        if retrieval_note:
            notes.append(retrieval_note)
        outcome = "cancelled" if end.finish_reason == "cancelled" else "answered"
        attempt = Attempt(provider_name, model_name, 0.0,
                          None if first_token is None else first_token - started,
                          ended - started, outcome)
        route = Route("local", (attempt,), f"answered by {provider_name}/{model_name}")
        yield route
        self.store.add_message(
            conv_id, "assistant", answer,
            status="complete" if outcome == "answered" else "cancelled",
            model=model_name, provider=provider_name,
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
            ttft_s=timings.ttft_s, tokens_per_s=timings.tokens_per_s, total_s=timings.total_s,
            route=asdict(route),
            sources=[asdict(c.source()) for c in plan.context] or None,
        )
        yield Finished(conv_id, user_msg_id, answer, provider_name, model_name, usage, timings,
                       end.finish_reason, tuple(notes))

    def _retrieve(self, question: str, opts: AskOptions) -> tuple[tuple[ContextChunk, ...],
                                                                    str | None]:
        """Passages from the indexed folders for this question, best first.
        Never fails the answer: a problem becomes a note."""
        if not opts.use_files:
            return (), None
        try:
            kb = self._knowledge
            if kb is None:
                from app.core.knowledge.base import KnowledgeBase, has_folders

                if not has_folders(self.paths):
                    return (), None
                kb = self._knowledge = KnowledgeBase(self.paths, self.settings, writer=False)
                self._owns_knowledge = True
            results = kb.search(question, folders=opts.folders, path_glob=opts.path_glob)
        except Exception as exc:
            log.exception("searching the indexed folders failed")
            return (), f"your files could not be searched ({exc})"
        return tuple(
            ContextChunk(n, r.path, r.text, r.start_line, r.end_line, r.page, r.score,
                         r.local_only)
            for n, r in enumerate(results, start=1)
        ), None

    def _fit(
        self, provider: LocalProvider, plan: PromptPlan, n_ctx: int
    ) -> tuple[PromptPlan, int]:
        """Drop the lowest-ranked passages, then the oldest turns, until the
        prompt leaves room for an answer."""
        context = plan.context
        while context:
            tokens = provider.count_tokens(plan.with_context(context).render())
            if tokens + MIN_ANSWER_TOKENS <= n_ctx:
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

    def _fail(
        self, conv_id: str, provider: str, model: str, started: float,
        first_token: float | None, text: list[str], exc: HearthError,
    ) -> Iterator[Event]:
        partial = "".join(text)
        ended = time.perf_counter()
        attempt = Attempt(provider, model, 0.0,
                          None if first_token is None else first_token - started,
                          ended - started, "failed", exc.reason)
        route = Route("local", (attempt,), f"{provider}/{model} failed: {exc}")
        yield route
        try:
            self.store.add_message(conv_id, "assistant", partial, status="error",
                                   model=model, provider=provider, error=str(exc),
                                   total_s=ended - started, route=asdict(route))
        except (HearthError, OSError):
            log.exception("could not store the failed answer")
        detail = repr(exc.__cause__) if exc.__cause__ else ""
        yield Error(str(exc), exc.reason, detail=detail, conversation_id=conv_id,
                    partial=partial)


