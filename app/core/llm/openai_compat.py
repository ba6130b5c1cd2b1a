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
from app.core.llm.remote import RemoteProviderBase, estimate_tokens, to_remote_error

log = logging.getLogger(__name__)


class OpenAICompatProvider(RemoteProviderBase):
    def _make_client(self, **options: Any) -> Any:
        import openai

        return openai.OpenAI(**options)

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
        try:
            stream = self.client().chat.completions.create(**args)
        except Exception as exc:
            if cancel.cancelled:
                yield StreamEnd("cancelled", 0, 0, self.model)
                return
            raise to_remote_error(self.name, exc, openai) from exc
        # Closing the response from the cancelling thread ends a read that
        # would otherwise wait on a silent or keep-alive-only server.
        cancel.on_cancel(stream.close)
        finish, usage, model, text = "length", None, self.model, []
        try:
            for chunk in stream:
                if cancel.cancelled:
                    break
                if chunk.usage is not None:
                    usage = chunk.usage
                if chunk.model:
                    model = chunk.model
                for choice in chunk.choices:
                    piece = choice.delta.content if choice.delta else None
                    if piece:
                        text.append(piece)
                        yield TextDelta(piece)
                    if choice.finish_reason:
                        finish = "stop" if choice.finish_reason == "stop" else "length"
        except Exception as exc:
            if not cancel.cancelled:
                raise to_remote_error(self.name, exc, openai) from exc
        finally:
            stream.close()
        if cancel.cancelled:
            finish = "cancelled"
        notes: tuple[str, ...] = ()
        if usage is not None:
            prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens
        else:
            prompt_tokens = estimate_tokens("".join(m["content"] for m in messages))
            completion_tokens = estimate_tokens("".join(text))
            notes = (f"{self.name} reported no token counts; they are estimated",)
        yield StreamEnd(finish, prompt_tokens, completion_tokens, model, notes)
