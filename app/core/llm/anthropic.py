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
from app.core.llm.remote import (
    AnswerLimits,
    ReadInterrupt,
    RemoteError,
    RemoteProviderBase,
    cut_off,
    empty_answer,
    to_remote_error,
)


class AnthropicProvider(RemoteProviderBase):
    def _make_client(self, **options: Any) -> Any:
        import anthropic

        return anthropic.Anthropic(**options)

    def _make_http_client(self, **options: Any) -> Any:
        import anthropic

        return anthropic.DefaultHttpxClient(**options)

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
        limits = AnswerLimits(self.name, request.max_tokens, self.max_answer_s())
        interrupt = ReadInterrupt()
        cancel.on_cancel(interrupt.fire)
        try:
            yield from self._read(args, limits, interrupt, cancel, anthropic)
        finally:
            interrupt.close()

    # Complex on purpose: one branch per event type of the stream.
    def _read(self, args: dict[str, Any], limits: AnswerLimits, interrupt: ReadInterrupt,  # noqa: C901
              cancel: CancelToken, anthropic: Any) -> Iterator[StreamItem]:
        try:
            with interrupt.sending():
                stream = self.client().messages.create(**args)
        except Exception as exc:
            if cancel.cancelled:
                yield StreamEnd("cancelled", 0, 0, self.model)
                return
            raise to_remote_error(self.name, exc, anthropic) from exc
        interrupt.watch_response(stream.response)
        finish, prompt_tokens, completion_tokens, model = "length", 0, 0, self.model
        text: list[str] = []
        stopped = finished = stopped_early = False
        try:
            for event in stream:
                if cancel.cancelled:
                    break
                limits.check_time()
                kind = event.type
                if kind == "message_start":
                    model = event.message.model or model
                    prompt_tokens = event.message.usage.input_tokens or 0
                elif kind == "content_block_delta" and event.delta.type == "text_delta":
                    piece = event.delta.text
                    if piece:
                        limits.count(piece)
                        if not limits.over_tokens:
                            text.append(piece)
                            yield TextDelta(piece)
                elif kind == "message_delta":
                    completion_tokens = event.usage.output_tokens or completion_tokens
                    limits.server_count(event.usage.output_tokens)
                    if event.delta.stop_reason:
                        finished = True
                        if event.delta.stop_reason in ("end_turn", "stop_sequence"):
                            finish = "stop"
                elif kind == "message_stop":
                    stopped = True
                # After the stop reason only message_stop is left to come.
                if limits.over_tokens and not finished:
                    stopped_early = True
                    break
        except RemoteError:
            raise
        except Exception as exc:
            if not cancel.cancelled:
                raise to_remote_error(self.name, exc, anthropic) from exc
        finally:
            stream.close()
        notes: tuple[str, ...] = ()
        if cancel.cancelled:
            finish = "cancelled"
        elif stopped_early:
            finish, completion_tokens = "length", limits.max_tokens
            notes = (limits.note(),)
        elif not (stopped or finished):
            # A stop_reason is the model's own word that it is done: an answer
            # that has one is whole even when message_stop is lost after it.
            raise cut_off(self.name, "".join(text))
        elif not "".join(text).strip():
            raise empty_answer(self.name)
        yield StreamEnd(finish, prompt_tokens, completion_tokens, model, notes)
