"""A remote provider for Anthropic's Messages API, streaming through the
official `anthropic` SDK with its own retries off: the router retries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from app.core.llm.provider import (
    CancelToken,
    ChatRequest,
    StreamEnd,
    StreamItem,
    TextDelta,
)
from app.core.llm.remote import RemoteProviderBase, to_remote_error


class AnthropicProvider(RemoteProviderBase):
    def _make_client(self, **options: Any) -> Any:
        import anthropic

        return anthropic.Anthropic(**options)

    def stream(self, request: ChatRequest, cancel: CancelToken) -> Iterator[StreamItem]:
        import anthropic

        # The Messages API takes the instructions apart from the turns; this
        # SDK version takes no sampling temperature, so the model's default applies.
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        turns = [{"role": m.role, "content": m.content}
                 for m in request.messages if m.role != "system"]
        args: dict[str, Any] = {
            "model": self.config.model, "messages": turns, "stream": True,
            "max_tokens": request.max_tokens,
        }
        if system:
            args["system"] = system
        if request.stop:
            args["stop_sequences"] = list(request.stop)
        if cancel.cancelled:
            yield StreamEnd("cancelled", 0, 0, self.model)
            return
        try:
            stream = self.client().messages.create(**args)
        except Exception as exc:
            if cancel.cancelled:
                yield StreamEnd("cancelled", 0, 0, self.model)
                return
            raise to_remote_error(self.name, exc, anthropic) from exc
        cancel.on_cancel(stream.close)
        finish, prompt_tokens, completion_tokens, model = "length", 0, 0, self.model
        try:
            for event in stream:
                if cancel.cancelled:
                    break
                kind = event.type
                if kind == "message_start":
                    model = event.message.model or model
                    prompt_tokens = event.message.usage.input_tokens or 0
                elif kind == "content_block_delta" and event.delta.type == "text_delta":
                    if event.delta.text:
                        yield TextDelta(event.delta.text)
                elif kind == "message_delta":
                    completion_tokens = event.usage.output_tokens or completion_tokens
                    if event.delta.stop_reason in ("end_turn", "stop_sequence"):
                        finish = "stop"
        except Exception as exc:
            if not cancel.cancelled:
                raise to_remote_error(self.name, exc, anthropic) from exc
        finally:
            stream.close()
        if cancel.cancelled:
            finish = "cancelled"
        yield StreamEnd(finish, prompt_tokens, completion_tokens, model)
