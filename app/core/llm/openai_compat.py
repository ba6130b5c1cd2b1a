"""A remote provider for any OpenAI-compatible chat API (OpenAI, Groq, Mistral,
OpenRouter, Together, vLLM, a llama.cpp server, Ollama, LM Studio), streaming
through the official `openai` SDK with its own retries off: the router retries."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from app.core.llm.provider import (
    CancelToken,
    ChatRequest,
    StreamEnd,
    StreamItem,
    TextDelta,
)
from app.core.llm.remote import (
    AnswerLimits,
    ReadInterrupt,
    RemoteError,
    RemoteProviderBase,
    cut_off,
    empty_answer,
    estimate_tokens,
    to_remote_error,
)

log = logging.getLogger(__name__)


class OpenAICompatProvider(RemoteProviderBase):
    def _make_client(self, **options: Any) -> Any:
        import openai

        return openai.OpenAI(**options)

    def _make_http_client(self, **options: Any) -> Any:
        import openai

        return openai.DefaultHttpxClient(**options)

    def stream(self, request: ChatRequest, cancel: CancelToken) -> Iterator[StreamItem]:
        import openai

        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        args: dict[str, Any] = {
            "model": self.config.model, "messages": messages, "stream": True,
            "max_tokens": request.max_tokens, "temperature": request.temperature,
            "top_p": request.top_p, "stream_options": {"include_usage": True},
        }
        if request.stop:
            args["stop"] = list(request.stop)
        if request.seed is not None:
            args["seed"] = request.seed
        if cancel.cancelled:
            yield StreamEnd("cancelled", 0, 0, self.model)
            return
        limits = AnswerLimits(self.name, request.max_tokens, self.max_answer_s())
        interrupt = ReadInterrupt()
        cancel.on_cancel(interrupt.fire)
        try:
            yield from self._read(args, messages, limits, interrupt, cancel, openai)
        finally:
            interrupt.close()

    # Complex on purpose: one branch per event type of the stream.
    def _read(self, args: dict[str, Any], messages: list[dict[str, str]],  # noqa: C901
              limits: AnswerLimits, interrupt: ReadInterrupt, cancel: CancelToken,
              openai: Any) -> Iterator[StreamItem]:
        try:
            with interrupt.sending():
                stream = self.client().chat.completions.create(**args)
        except Exception as exc:
            if cancel.cancelled:
                yield StreamEnd("cancelled", 0, 0, self.model)
                return
            raise to_remote_error(self.name, exc, openai) from exc
        interrupt.watch_response(stream.response)
        marker = _watch_end_marker(stream)
        finish, usage, model, text = "length", None, self.model, []
        stopped_early = finished = False
        try:
            for chunk in stream:
                if cancel.cancelled:
                    break
                limits.check_time()
                if chunk.usage is not None:
                    usage = chunk.usage
                    limits.server_count(usage.completion_tokens)
                if chunk.model:
                    model = chunk.model
                for choice in chunk.choices:
                    piece = choice.delta.content if choice.delta else None
                    if piece:
                        limits.count(piece)
                        if limits.over_tokens:
                            break
                        text.append(piece)
                        yield TextDelta(piece)
                    if choice.finish_reason:
                        finished = True
                        finish = "stop" if choice.finish_reason == "stop" else "length"
                # Once the model has finished, only the usage and [DONE] remain:
                # a final count one over the limit is not a runaway answer.
                if limits.over_tokens and not finished:
                    stopped_early = True
                    break
        except RemoteError:
            raise
        except Exception as exc:
            if not cancel.cancelled:
                raise to_remote_error(self.name, exc, openai) from exc
        finally:
            stream.close()
        notes: tuple[str, ...] = ()
        if cancel.cancelled:
            finish = "cancelled"
        elif stopped_early:
            finish, notes = "length", (limits.note(),)
        elif not (marker.seen or finished):
            # A finish_reason is the model's own word that it is done: an answer
            # that has one is whole even when a proxy drops the [DONE] after it.
            raise cut_off(self.name, "".join(text))
        elif not "".join(text).strip():
            raise empty_answer(self.name)
        if usage is not None:
            prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens
        else:
            prompt_tokens = estimate_tokens("".join(m["content"] for m in messages))
            completion_tokens = estimate_tokens("".join(text))
            if not stopped_early:
                notes = (f"{self.name} reported no token counts; they are estimated",)
        if stopped_early:  # what was read, whatever the server counts on to
            completion_tokens = limits.max_tokens
        yield StreamEnd(finish, prompt_tokens, completion_tokens, model, notes)


class _EndMarker:
    """Wraps the SDK's SSE decoder to see the `data: [DONE]` that ends a
    stream: the SDK stops at it without saying, and a stream that simply
    closes ends the same way."""

    def __init__(self, decoder: Any) -> None:
        self._decoder = decoder
        self.seen = False

    def iter_bytes(self, iterator: Iterator[bytes]) -> Iterator[Any]:
        for event in self._decoder.iter_bytes(iterator):
            if event.data.startswith("[DONE]"):
                self.seen = True
            yield event


def _watch_end_marker(stream: Any) -> _EndMarker:
    # The SDK reads `_decoder` when iteration starts (openai 1.x to 3.x).
    # Private access on purpose: the SDK has no public hook to see the raw events.
    marker = _EndMarker(stream._decoder)  # noqa: SLF001
    stream._decoder = marker  # noqa: SLF001
    return marker
