"""The local model's state (not loaded yet, loading, loaded, failed) and the
operations that change it: loading in the background, switching to another
model, and noticing that an answer loaded it. See `app.ui.state` for the
pattern; the status bar draws from `ModelLoader.state`."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from PySide6.QtCore import QObject, Signal

from app.core.answer import AnswerState
from app.core.assistant import Assistant
from app.ui.state import Observed
from app.ui.workers import WorkerSet, run_op

LOAD_HINT = "Choose another model in Models (Ctrl+M) or a GGUF file in Settings (Ctrl+,)."

# idle: not loaded yet; loading; ready: loaded; error: the last load failed.
ModelPhase = Literal["idle", "loading", "ready", "error"]


@dataclass(frozen=True)
class ModelState:
    phase: ModelPhase = "idle"
    name: str = ""  # the model loading or loaded ("" while unknown)
    n_ctx: int = 0  # 0 where unknown (loaded by an answer)
    offload: str = ""  # where the layers run, in words
    fallback: str | None = None  # why GPU offload failed, where it did
    message: str = ""  # why loading failed
    details: str = ""  # the failure's details, for the Details button

    @property
    def text(self) -> str:
        if self.phase == "loading":
            return f"Model: loading {self.name}…" if self.name else "Model: loading…"
        if self.phase == "ready":
            text = f"Model: {self.name} · ready"
            if self.n_ctx:
                text += f" · context {self.n_ctx}"
            return text + (" · on the CPU (GPU offload failed)" if self.fallback else "")
        if self.phase == "error":
            return f"Model: {self.message} {LOAD_HINT}"
        return "Model: not loaded yet"

    @property
    def tooltip(self) -> str:
        if self.offload:
            return f"{self.text}\n{self.offload}\nClick to choose another model."
        return f"{self.text}\nClick to choose another model."

    @classmethod
    def loaded(cls, result: object) -> ModelState:
        """From the `LoadedModel` a load returned."""
        return cls("ready", str(getattr(result, "name", "?")), int(getattr(result, "n_ctx", 0)),
                   str(getattr(result, "offload", "") or ""), getattr(result, "fallback", None))


def local_model_answered(state: AnswerState) -> str | None:
    """The local model's name where this answer's route shows that it
    produced text (so it is loaded now); None otherwise."""
    route = state.route
    if route is None:
        return None
    for attempt in route.attempts:
        if attempt.provider == "local" and (attempt.outcome == "answered"
                                            or attempt.first_token_s is not None):
            return attempt.model
    return None


class ModelLoader(QObject):
    """Owns `state` (an `Observed[ModelState]`) and the background loads.

    `switched(LoadedModel | None)` after `switch()` (None: it failed and the
    previous model stays); `switch_failed(name, message, details)` says why;
    `message(text, ms)` is a passing status-bar note."""

    switched = Signal(object)
    switch_failed = Signal(str, str, str)
    message = Signal(str, int)

    def __init__(self, assistant: Assistant, workers: WorkerSet,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.assistant = assistant
        self.workers = workers
        self.state: Observed[ModelState] = Observed(ModelState(), self)
        self.closed: Callable[[], bool] = lambda: False

    @property
    def phase(self) -> ModelPhase:
        return self.state.value.phase

    def preload(self) -> None:
        """Load the local model in the background so the first answer is quick."""
        if self.closed():
            return
        self.state.set(ModelState("loading"))
        assistant = self.assistant
        run_op(self.workers, lambda: assistant.local_provider().load(), self._loaded,
               self._failed, self)

    def _loaded(self, result: object) -> None:
        state = ModelState.loaded(result)
        self.state.set(state)
        if state.fallback:
            self.message.emit(f"{state.name}: {state.fallback}.", 15_000)

    def _failed(self, message: str, details: str) -> None:
        self.state.set(ModelState("error", message=message, details=details))

    def switch(self, name: str, path: str, force: bool = False) -> None:
        """Load another model and make it the current one; if it fails, the
        state goes back to what it was and the model is loaded again."""
        if self.closed():
            return
        before = self.state.value
        self.state.set(ModelState("loading", name))
        assistant = self.assistant

        def loaded(result: object) -> None:
            self._loaded(result)
            self.switched.emit(result)

        def failed(message: str, details: str) -> None:
            self.state.set(before)
            self.switch_failed.emit(name, message, details)
            self.switched.emit(None)
            self.preload()

        run_op(self.workers, lambda: assistant.switch_model(path, force), loaded, failed, self)

    def note_answer(self, answer: AnswerState) -> None:
        """An answer by the local model loaded it (when no preload did)."""
        if self.phase in ("idle", "error"):
            name = local_model_answered(answer)
            if name is not None:
                self.state.set(ModelState("ready", name))


_settled = False


def freeze_after_first_load(state: ModelState) -> None:
    """Once the first model is loaded, everything Hearth keeps for its whole
    run exists (modules, Qt, the engine). Python's full collections would walk
    all of it again and again, each a pause of about 50 ms that the window
    feels while an answer streams; frozen, they walk only what came since."""
    global _settled
    if state.phase == "ready" and not _settled:
        _settled = True
        gc.freeze()
