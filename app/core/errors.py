"""Errors the core raises for the user: each message is one clear sentence."""

from __future__ import annotations


class HearthError(Exception):
    """An error meant for the user. `str(err)` is one sentence in words;
    `reason` is a short machine-readable code (used by routing and traces)."""

    reason = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class ModelLoadError(HearthError):
    reason = "model_load_failed"


class ModelNotFoundError(ModelLoadError):
    reason = "no_model"


class ModelTooLargeError(ModelLoadError):
    reason = "model_too_large"


class ContextOverflowError(HearthError):
    """The prompt does not fit the model's context window."""

    reason = "context_overflow"

    def __init__(self, message: str, *, prompt_tokens: int, context_size: int) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.context_size = context_size


class GenerationError(HearthError):
    reason = "generation_failed"


def as_phrase(message: str) -> str:
    """A one-sentence message made to follow a colon: no full stop, and a
    plain first word in lower case ("The model file …" → "the model file …";
    a leading file name such as "Notes.gguf" keeps its case)."""
    text = message.strip().rstrip(".")
    first, _, rest = text.partition(" ")
    if first.isalpha() and (len(first) == 1 or first[1:].islower()):
        text = first.lower() + (" " + rest if rest else "")
    return text
