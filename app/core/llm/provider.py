"""The provider protocol: what every model backend, local or remote, offers.

A provider declares what it can do (`Capabilities`) and has one streaming
call, `stream(request, cancel)`, which yields `TextDelta`s and ends with one
`StreamEnd`. Errors are `app.core.errors.HearthError`s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from app.settings_types import DEFAULTS

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str
    # Holds text from a local-only folder (a passage, or an answer built from
    # one): never sent to a remote provider.
    local_only: bool = False


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    max_tokens: int = DEFAULTS.generation.max_tokens
    temperature: float = DEFAULTS.generation.temperature
    top_p: float = DEFAULTS.generation.top_p
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # Local models only (remote APIs have their own): >1 discourages repeating
    # recent tokens, which keeps small models out of loops.
    repeat_penalty: float = 1.0


@dataclass(frozen=True)
class Capabilities:
    max_context: int
    vision: bool = False
    tools: bool = False
    local: bool = True
    # Price per million tokens (input, output) in USD, where known.
    price_in_per_m: float | None = None
    price_out_per_m: float | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class StreamEnd:
    finish_reason: str  # "stop", "length", "cancelled"
    prompt_tokens: int
    completion_tokens: int
    model: str
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class PromptProgress:
    """The local model has read `done` of the prompt's `total` tokens (sent
    while a long prompt is read, before the first token of the answer)."""

    done: int
    total: int


StreamItem = TextDelta | StreamEnd | PromptProgress


class CancelToken:
    """Set once to stop a request; providers check it between tokens and
    (locally) inside llama.cpp's own computation."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], object]] = []

    def cancel(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], object]) -> None:
        """Call `callback` once when cancelled (at once if already cancelled):
        how a blocking network read is interrupted."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)


@runtime_checkable
class Provider(Protocol):
    @property
    def name(self) -> str:
        """Short id, e.g. "local" or a configured remote's name."""

    @property
    def model(self) -> str:
        """The model's display name."""

    def capabilities(self) -> Capabilities: ...

    def stream(self, request: ChatRequest, cancel: CancelToken) -> Iterator[StreamItem]: ...
