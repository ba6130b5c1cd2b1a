"""A remote provider for any OpenAI-compatible chat API (OpenAI, Groq, Mistral,
OpenRouter, Together, vLLM, a llama.cpp server, Ollama, LM Studio), streaming
through the official `openai` SDK with its own retries off: the router retries."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from app.core.llm.provider import (
    CancelToken,
    Capabilities,
    ChatRequest,
    StreamEnd,
    StreamItem,
    TextDelta,
)
from app.core.llm.registry import ProviderConfig
from app.core.llm.remote import CONNECT_TIMEOUT_S, estimate_tokens, to_remote_error

log = logging.getLogger(__name__)


class OpenAICompatProvider:
    def __init__(self, config: ProviderConfig, api_key: str | None,
                 capabilities: Capabilities) -> None:
        self.config = config
        self._key = api_key
        self._caps = capabilities
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def model(self) -> str:
        return self.config.model

    def capabilities(self) -> Capabilities:
        return self._caps

    def client(self) -> Any:
        """The SDK client, built once (building it costs tens of milliseconds)."""
        with self._lock:
            if self._client is None:
                import httpx2
                import openai

                self._client = openai.OpenAI(
                    # Servers without keys (llama.cpp, Ollama) ignore this value.
                    api_key=self._key or "no-key",
                    base_url=self.config.base_url,
                    max_retries=0,
                    timeout=httpx2.Timeout(self.config.timeout_s, connect=CONNECT_TIMEOUT_S),
                    default_headers=self.config.headers or None,
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

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
