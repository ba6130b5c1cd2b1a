"""The local llama.cpp engine.

One owner thread holds the `llama_cpp.Llama` object (a llama context is not
thread-safe); every request goes through its queue. Answers stream as
`TextDelta`s. Cancelling stops the work for real: between tokens through a
stopping criterion, and inside a long prompt evaluation through llama.cpp's
abort callback, which makes `llama_decode` return early.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from app.core.errors import (
    ContextOverflowError,
    GenerationError,
    HearthError,
    ModelLoadError,
)
from app.core.llm.control_tokens import ControlTokens
from app.core.llm.provider import (
    CancelToken,
    Capabilities,
    ChatMessage,
    ChatRequest,
    PromptProgress,
    StreamEnd,
    StreamItem,
    TextDelta,
)
from app.core.models.files import (
    LLAMA_LOAD_LOCK,
    ModelMetadata,
    check_memory_fit,
    check_model_file,
    read_metadata,
)
from app.core.models.fit import FitEstimate, Shape, estimate, gpu_memory
from app.settings_types import DEFAULTS, SettingsSnapshot

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import ChatFormatterResponse

log = logging.getLogger(__name__)

# Room kept for the answer when deciding whether a prompt fits the context.
MIN_ANSWER_TOKENS = 16

# Used when a GGUF file carries no chat template of its own.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class LocalModelConfig:
    path: Path
    context_size: int = DEFAULTS.model.context_size
    threads: int = DEFAULTS.model.threads
    gpu_layers: int = DEFAULTS.model.gpu_layers
    batch_size: int = DEFAULTS.model.batch_size
    check_memory: bool = not DEFAULTS.model.ignore_fit

    @classmethod
    def from_settings(cls, path: Path, s: SettingsSnapshot) -> LocalModelConfig:
        m = s.model
        return cls(path=path, context_size=m.context_size, threads=m.threads,
                   gpu_layers=m.gpu_layers, batch_size=m.batch_size,
                   check_memory=not m.ignore_fit)


@dataclass(frozen=True)
class LoadedModel:
    path: Path
    name: str
    n_ctx: int
    n_ctx_train: int | None
    gpu_layers: int
    threads: int
    load_s: float
    template_from_model: bool
    # Where the layers run, in words ("CPU only: ...", "GPU: 29 of 29 layers").
    offload: str = ""
    # Set when offload was tried and failed, and the model runs on the CPU.
    fallback: str | None = None
    fit: FitEstimate | None = None


_LOG_CALLBACK: Any = None



def route_llama_logs() -> None:
    """Send llama.cpp's own log lines to Hearth's log instead of the terminal."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return
    import llama_cpp

    llama_log = logging.getLogger("hearth.llama_cpp")

    def forward(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        # ggml levels: 1 debug, 2 info, 3 warn, 4 error, 5 continuation.
        llama_log.log(
            logging.INFO if level in (3, 4) else logging.DEBUG,
            "%s", text.decode("utf-8", errors="replace").rstrip(),
        )

    _LOG_CALLBACK = llama_cpp.llama_log_callback(forward)
    llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))


def default_threads() -> int:
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except Exception:  # noqa: BLE001  psutil can fail inside some sandboxes, in its own ways
        physical = None
    return max(1, physical or os.cpu_count() or 1)


def gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def new_llama(**kwargs: Any) -> Llama:
    """Construct llama.cpp's model (one place, so a test can make GPU
    offload fail on a machine that has no GPU)."""
    from llama_cpp import Llama

    return Llama(**kwargs)


_T = TypeVar("_T")


class _Job(Generic[_T]):
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[], _T]) -> None:
        self.fn = fn
        self.future: Future[_T] = Future()


_STOP = object()
_END = object()


class LocalProvider:
    """The llama.cpp engine behind the provider protocol."""

    name = "local"

    def __init__(self, config: LocalModelConfig) -> None:
        self.config = config
        self._jobs: queue.Queue[_Job[Any] | object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        # Owned by the worker thread only:
        self._llm: Llama | None = None
        self._loaded: LoadedModel | None = None
        self._metadata: ModelMetadata | None = None
        self._formatter: Any = None
        self._controls = ControlTokens(())
        self._active_cancel: CancelToken | None = None
        self._abort_cb: Any = None
        self._abort_on = False
        self._closed = False

    # -- the provider protocol ------------------------------------------------

    @property
    def model(self) -> str:
        loaded = self._loaded
        return loaded.name if loaded else self.config.path.stem

    def capabilities(self) -> Capabilities:
        loaded = self._loaded
        n_ctx = loaded.n_ctx if loaded else self.config.context_size
        return Capabilities(max_context=n_ctx, vision=False, tools=False, local=True)

    def stream(self, request: ChatRequest, cancel: CancelToken) -> Iterator[StreamItem]:
        """Stream an answer. Closing the iterator early cancels the request."""
        out: queue.Queue[Any] = queue.Queue()
        future = self._submit(lambda: self._generate(request, cancel, out.put))
        # A job that never ran (the engine closed first) only fails its future.
        future.add_done_callback(
            lambda f: out.put(f.exception()) if f.exception() is not None else None)
        finished = False
        try:
            while True:
                item = out.get()
                if item is _END:
                    finished = True
                    return
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                yield item
        finally:
            if not finished:
                cancel.cancel()

    # -- other public calls (all run on the owner thread) ---------------------

    def load(self) -> LoadedModel:
        """Load the model now (blocking) and return what was loaded."""
        return self._submit(self._ensure_loaded).result()

    @property
    def loaded(self) -> LoadedModel | None:
        return self._loaded

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        """Prompt tokens these messages take once the chat template is applied."""
        def work() -> int:
            self._ensure_loaded()
            return len(self._format(messages)[0])

        return self._submit(work).result()

    def prompt_tokens(self, messages: tuple[ChatMessage, ...]) -> list[int]:
        """The token ids these messages become (for inspection and tests)."""
        def work() -> list[int]:
            self._ensure_loaded()
            return self._format(messages)[0]

        return self._submit(work).result()

    def control_tokens(self) -> ControlTokens:
        """The loaded model's control tokens (loads the model)."""
        def work() -> ControlTokens:
            self._ensure_loaded()
            return self._controls

        return self._submit(work).result()

    def token_id(self, text: str) -> int | None:
        """The id of `text` when it is one special token of the vocabulary."""
        def work() -> int | None:
            self._ensure_loaded()
            assert self._llm is not None
            ids = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            return ids[0] if len(ids) == 1 else None

        return self._submit(work).result()

    def format_prompt(self, messages: tuple[ChatMessage, ...]) -> str:
        """The prompt text the chat template produces (for inspection and tests)."""
        def work() -> str:
            self._ensure_loaded()
            return self._render(self._escaped(messages)).prompt

        return self._submit(work).result()

    def close(self, timeout: float = 10.0) -> None:
        """Free the model and stop the owner thread."""
        with self._thread_lock:
            thread = self._thread
            if thread is None or self._closed:
                self._closed = True
                return
            self._closed = True
        if self._active_cancel is not None:
            self._active_cancel.cancel()
        self._jobs.put(_STOP)
        thread.join(timeout)

    def __enter__(self) -> LocalProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- owner thread -----------------------------------------------------------

    def _submit(self, fn: Callable[[], _T]) -> Future[_T]:
        with self._thread_lock:
            if self._closed:
                raise GenerationError("The local model has been unloaded.")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hearth-llama", daemon=True
                )
                self._thread.start()
        job: _Job[_T] = _Job(fn)
        self._jobs.put(job)
        return job.future

    def _run(self) -> None:
        try:
            while True:
                job = self._jobs.get()
                if job is _STOP or not isinstance(job, _Job):
                    break
                if not job.future.set_running_or_notify_cancel():
                    continue
                try:
                    job.future.set_result(job.fn())
                except BaseException as exc:  # noqa: BLE001  handed to the caller, never lost
                    job.future.set_exception(exc)
        finally:
            self._unload()
            # Fail anything still queued so no caller waits forever.
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if isinstance(job, _Job) and job.future.set_running_or_notify_cancel():
                    job.future.set_exception(
                        GenerationError("The local model has been unloaded.")
                    )

    def _unload(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None

    def _ensure_loaded(self) -> LoadedModel:
        if self._loaded is not None:
            return self._loaded
        with LLAMA_LOAD_LOCK:
            return self._load_locked()

    def _load_locked(self) -> LoadedModel:
        cfg = self.config
        route_llama_logs()
        size = check_model_file(cfg.path)
        meta = read_metadata(cfg.path)
        n_ctx = cfg.context_size or meta.context_length or 4096
        shape = Shape.from_metadata(meta, size)
        offload = gpu_offload_supported()
        gpus = gpu_memory() if offload else []
        n_layers = (meta.block_count or 0) + 1
        if not offload:
            gpu_layers, where = 0, "CPU only: this llama.cpp build has no GPU offload"
        elif cfg.gpu_layers >= 0:
            gpu_layers = cfg.gpu_layers
            where = f"GPU: {min(gpu_layers, n_layers)} of {n_layers} layers (model.gpu_layers)"
        elif not gpus:
            gpu_layers, where = 0, "CPU only: llama.cpp found no GPU"
        else:
            # -1: as many layers as fit in free VRAM now, never "all, then crash".
            fit = estimate(shape, n_ctx, n_batch=cfg.batch_size, gpus=gpus)
            gpu_layers = fit.gpu_layers
            where = (f"GPU: {gpu_layers} of {n_layers} layers (as many as fit in "
                     f"{(fit.vram_free or 0) / 1024**3:.1f} GB of free VRAM)")
        fit = estimate(shape, n_ctx, n_batch=cfg.batch_size, gpus=gpus, gpu_layers=gpu_layers)
        if cfg.check_memory:
            self._check_fit(fit)
        threads = cfg.threads or default_threads()
        started = time.perf_counter()
        fallback: str | None = None
        try:
            llm = self._construct(n_ctx, threads, gpu_layers)
        except (ValueError, RuntimeError, OSError) as exc:
            if gpu_layers == 0:
                raise self._load_error() from exc
            # Offload failed (out of VRAM, a driver problem): the CPU still works.
            log.warning("loading %s with %d GPU layers failed; loading on the CPU",
                        cfg.path.name, gpu_layers, exc_info=True)
            fallback = (f"GPU offload of {gpu_layers} layers failed "
                        f"({str(exc).strip() or type(exc).__name__}), so the model runs on "
                        "the CPU")
            gpu_layers, where = 0, f"CPU fallback: {fallback}"
            fit = estimate(shape, n_ctx, n_batch=cfg.batch_size, gpus=[], gpu_layers=0)
            if cfg.check_memory:
                self._check_fit(fit)
            try:
                llm = self._construct(n_ctx, threads, 0)
            except (ValueError, RuntimeError, OSError) as exc2:
                raise self._load_error() from exc2
        load_s = time.perf_counter() - started
        self._llm = llm
        self._metadata = meta
        self._formatter = self._make_formatter(llm, meta)
        self._controls = control_tokens(llm)
        import llama_cpp

        self._abort_cb = llama_cpp.ggml_abort_callback(self._should_abort)
        self._loaded = LoadedModel(
            path=cfg.path,
            name=cfg.path.stem,
            # llama.cpp may round the context up (640 -> 768) while
            # llama-cpp-python's token buffer keeps the size asked for.
            n_ctx=min(llm.n_ctx(), len(llm.input_ids)),
            n_ctx_train=meta.context_length,
            gpu_layers=gpu_layers,
            threads=threads,
            load_s=load_s,
            template_from_model=bool(meta.chat_template),
            offload=where,
            fallback=fallback,
            fit=fit,
        )
        return self._loaded

    def _check_fit(self, fit: FitEstimate) -> None:
        share = fit.offloaded / max(1, fit.weights + fit.kv_cache)
        check_memory_fit(self.config.path, int(fit.weights * (1 - share)),
                         int(fit.kv_cache * (1 - share)), available=fit.ram_free,
                         compute_bytes=fit.compute)

    def _construct(self, n_ctx: int, threads: int, gpu_layers: int) -> Llama:
        cfg = self.config
        return new_llama(
            model_path=str(cfg.path),
            n_ctx=n_ctx,
            n_batch=min(cfg.batch_size, n_ctx),
            n_threads=threads,
            n_threads_batch=threads,
            n_gpu_layers=gpu_layers,
            verbose=False,
        )

    def _load_error(self) -> ModelLoadError:
        return ModelLoadError(
            f"The model file {self.config.path.name} could not be loaded; it may be truncated, "
            "corrupt, or made for a model type this llama.cpp build does not support."
        )

    @staticmethod
    def _make_formatter(llm: Llama, meta: ModelMetadata) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def token_text(token: int) -> str:
            if token < 0:
                return ""
            return llm.detokenize([token], special=True).decode("utf-8", errors="replace")

        return Jinja2ChatFormatter(
            template=meta.chat_template or CHATML_TEMPLATE,
            eos_token=token_text(llm.token_eos()),
            bos_token=token_text(llm.token_bos()),
            stop_token_ids=[llm.token_eos()],
        )

    def _render(self, messages: tuple[ChatMessage, ...]) -> ChatFormatterResponse:
        try:
            response: ChatFormatterResponse = self._formatter(
                messages=[{"role": m.role, "content": m.content} for m in messages]
            )
            return response
        except Exception as exc:  # a template that raises (e.g. role order rules)
            raise GenerationError(
                f"The model's chat template could not format this conversation: {exc}."
            ) from exc

    def _escaped(self, messages: tuple[ChatMessage, ...]) -> tuple[ChatMessage, ...]:
        escape = self._controls.escape
        return tuple(ChatMessage(m.role, escape(m.content)) for m in messages)

    def _format(self, messages: tuple[ChatMessage, ...]) -> tuple[list[int], Any]:
        """The prompt's tokens. The template's own markup is tokenised with
        special tokens on; every message's text (escaped) with them off, so
        no text from a file, a question or an earlier answer becomes a
        control token."""
        llm = self._llm
        assert llm is not None
        messages = self._escaped(messages)
        marks = [f"{_MARK_OPEN}{i}{_MARK_CLOSE}" for i in range(len(messages))]
        result = self._render(tuple(ChatMessage(m.role, mark)
                                    for m, mark in zip(messages, marks, strict=True)))
        pieces = _split_marks(result.prompt, marks)
        if pieces is None:
            # A template that looks inside the text (rare): render the real
            # text, which is escaped already, so special tokens stay safe.
            result = self._render(messages)
            return llm.tokenize(result.prompt.encode("utf-8"),
                                add_bos=not result.added_special, special=True), result
        tokens: list[int] = []
        for i, markup in enumerate(pieces):
            if markup:
                tokens += llm.tokenize(markup.encode("utf-8"),
                                       add_bos=i == 0 and not result.added_special,
                                       special=True)
            elif i == 0 and not result.added_special:
                tokens += llm.tokenize(b"", add_bos=True, special=True)
            if i < len(messages) and messages[i].content:
                tokens += llm.tokenize(messages[i].content.encode("utf-8"),
                                       add_bos=False, special=False)
        return tokens, result

    # The abort callback runs inside llama.cpp's compute threads; it only reads
    # a flag. It is switched on while the prompt is evaluated and off once
    # tokens flow, where the per-token check is enough and cheaper.
    def _should_abort(self, _data: ctypes.c_void_p) -> bool:
        cancel = self._active_cancel
        return cancel is not None and cancel.cancelled

    def _set_abort(self, on: bool) -> None:
        if on == self._abort_on or self._llm is None:
            return
        import llama_cpp

        callback = self._abort_cb if on else llama_cpp.ggml_abort_callback()
        llama_cpp.llama_set_abort_callback(self._llm.ctx, callback, None)
        self._abort_on = on

    def _generate(
        self, request: ChatRequest, cancel: CancelToken, emit: Callable[[Any], None]
    ) -> None:
        try:
            self._generate_inner(request, cancel, emit)
        except HearthError as exc:
            emit(exc)
        except Exception as exc:
            log.exception("local generation failed")
            emit(GenerationError(f"The local model failed while answering: {exc}."))
        finally:
            self._active_cancel = None
            self._set_abort(False)
            emit(_END)

    # Complex on purpose: the token loop and all its stop conditions.
    def _generate_inner(  # noqa: C901
        self, request: ChatRequest, cancel: CancelToken, emit: Callable[[Any], None]
    ) -> None:
        loaded = self._ensure_loaded()
        llm = self._llm
        assert llm is not None
        if cancel.cancelled:
            emit(StreamEnd("cancelled", 0, 0, loaded.name))
            return
        tokens, _ = self._format(request.messages)
        n_ctx = loaded.n_ctx
        room = n_ctx - len(tokens)
        if room < MIN_ANSWER_TOKENS:
            raise ContextOverflowError(
                f"The prompt is {len(tokens)} tokens but the local model's context holds "
                f"{n_ctx} (with room for an answer); shorten it or raise model.context_size.",
                prompt_tokens=len(tokens),
                context_size=n_ctx,
            )
        notes: list[str] = []
        max_tokens = request.max_tokens
        if max_tokens > room:
            max_tokens = room
            notes.append(f"answer limited to {room} tokens by the context window")
        stops = _StopMatcher(request.stop)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        if request.seed is not None:
            llm.set_seed(request.seed)
        self._active_cancel = cancel
        self._set_abort(True)
        finish = "length"
        produced = 0
        try:
            self._read_prompt(llm, tokens, emit)
        except RuntimeError as exc:
            if not cancel.cancelled:
                raise GenerationError(f"The local model failed while reading the prompt: "
                                      f"{exc}.") from exc
            emit(StreamEnd("cancelled", len(tokens), 0, loaded.name, tuple(notes)))
            return
        gen = llm.generate(
            tokens, temp=request.temperature, top_p=request.top_p,
            repeat_penalty=request.repeat_penalty, reset=True
        )
        try:
            for token in gen:
                if produced == 0:
                    self._set_abort(False)
                if cancel.cancelled:
                    break
                if llm.token_eos() == token or _is_eog(llm, token):
                    finish = "stop"
                    break
                produced += 1
                text, hit = stops.feed(decoder.decode(llm.detokenize([token])))
                if text:
                    emit(TextDelta(text))
                if hit:
                    finish = "stop"
                    break
                if produced >= max_tokens:
                    break
        except RuntimeError as exc:
            # llama_decode returns 2 when the abort callback stopped it.
            if not cancel.cancelled:
                raise GenerationError(f"The local model failed while answering: {exc}.") from exc
        finally:
            gen.close()
        if cancel.cancelled:
            finish = "cancelled"
        else:
            tail = stops.flush(decoder.decode(b"", final=True))
            if tail:
                emit(TextDelta(tail))
        emit(StreamEnd(finish, len(tokens), produced, loaded.name, tuple(notes)))


    def _read_prompt(self, llm: Llama, tokens: list[int], emit: Callable[[Any], None]) -> None:
        """Evaluate all but the prompt's last token in batches, saying how far
        it got after each (a long prompt on a slow machine takes a while, and
        the user sees it being read). `generate` then finds them in the cache
        and reads only the last token. The prefix already in the cache from
        the previous question is reused, as `generate` itself would."""
        import llama_cpp

        total = len(tokens)
        step = max(1, int(llm.n_batch))
        if total <= step or llama_cpp.llama_model_is_recurrent(llm.model) \
                or llama_cpp.llama_model_is_hybrid(llm.model):
            return  # one batch: nothing to report; recurrent state cannot be trimmed
        body = tokens[:-1]
        cached = 0
        for a, b in zip(llm.input_ids[: llm.n_tokens], body, strict=False):
            if a != b:
                break
            cached += 1
        memory = llama_cpp.llama_get_memory(llm.ctx)
        if cached and llama_cpp.llama_memory_seq_rm(memory, 0, cached, -1):
            llm.n_tokens = cached
        else:
            cached = 0
            llm.reset()  # type: ignore[no-untyped-call]  # llama_cpp leaves reset() unannotated
        emit(PromptProgress(cached, total))
        for start in range(cached, len(body), step):
            llm.eval(body[start:start + step])
            emit(PromptProgress(min(start + step, len(body)), total))


# Placeholders for the messages' text while the template is rendered
# (private-use characters, which no template changes and no file holds).
_MARK_OPEN, _MARK_CLOSE = "\ue000hearth:", "\ue001"


def _split_marks(prompt: str, marks: list[str]) -> list[str] | None:
    """The template's markup around each placeholder, in order, or None when
    the template did not place each exactly once, in order."""
    positions = [prompt.find(mark) for mark in marks]
    if any(prompt.count(mark) != 1 for mark in marks) or positions != sorted(positions):
        return None
    pieces: list[str] = []
    start = 0
    for mark, pos in zip(marks, positions, strict=True):
        pieces.append(prompt[start:pos])
        start = pos + len(mark)
    pieces.append(prompt[start:])
    return pieces


def control_tokens(llm: Llama) -> ControlTokens:
    """The control (and markup-like user-defined) tokens of the loaded
    model's vocabulary, read from the model itself."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    control: list[str] = []
    user: list[str] = []
    for token in range(llama_cpp.llama_vocab_n_tokens(vocab)):
        attr = llama_cpp.llama_vocab_get_attr(vocab, token)
        if attr & (llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN):
            control.append(_token_text(llm, token))
        elif attr & llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED:
            user.append(_token_text(llm, token))
    return ControlTokens(control, user)


def _token_text(llm: Llama, token: int) -> str:
    return llm.detokenize([token], special=True).decode("utf-8", errors="replace")


def _is_eog(llm: Llama, token: int) -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_vocab_is_eog(llama_cpp.llama_model_get_vocab(llm.model), token))


class _StopMatcher:
    """Finds user stop strings in streamed text, holding back only the tail
    that could still become one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        if not self.stops:
            return text, False
        self.pending += text
        cut = min((i for i in (self.pending.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            out, self.pending = self.pending[:cut], ""
            return out, True
        keep = min(self.hold, len(self.pending))
        out = self.pending[: len(self.pending) - keep]
        self.pending = self.pending[len(self.pending) - keep:]
        return out, False

    def flush(self, text: str) -> str:
        out, _ = self.feed(text)
        rest, self.pending = self.pending, ""
        return out + rest
