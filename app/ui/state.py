"""What the window shows, as typed state objects that its parts observe.

One pattern for every part of the window:

- A state is a frozen dataclass (`ModelState` in `app.ui.model_state`,
  `IndexStatus` here, `AnswerState` from `app.core.answer`): a value that can
  be handed around and compared, never edited in place.
- An `Observed` holds the current value and emits `changed(value)` when a new,
  different value is set. Values are set on the GUI thread only (workers hand
  results back through signals first), so a part's slot always runs there.
- A part of the window (status bar, route and folder choosers, conversation
  view) takes the `Observed` it shows in its constructor or in `observe()`,
  connects to `changed` and draws from the value alone. It never asks another
  widget what to show, and it can be built and tested without a window: make
  the state, set a value, read the widget.
- The window assembles: it makes the states, gives them to the parts, and
  turns user actions into operations (`app.ui.workers.run_op`) whose results
  set new values.

`LiveAnswer` is the one exception to "a value per change": an answer is
folded from the assistant's events by `AnswerSession` (the same folding the
command line and quick-ask use), so its `changed` also carries the event that
made the new `AnswerState`, for listeners that pass the event on."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from PySide6.QtCore import QObject, Signal

from app.core.answer import AnswerSession, AnswerState
from app.core.knowledge.protocol import Activity, IndexState

T = TypeVar("T")


class Observed(QObject, Generic[T]):
    """The current value of one state; `changed(value)` after each new one."""

    changed = Signal(object)

    def __init__(self, value: T, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._value = value

    @property
    def value(self) -> T:
        return self._value

    def set(self, value: T) -> None:
        if value == self._value:
            return
        self._value = value
        self.changed.emit(value)


@dataclass(frozen=True)
class IndexStatus:
    """The indexer as the status bar shows it: its state, a sentence, and the
    latest progress report (from the index process's `StateChanged` and
    `Activity` messages, through `app.ui.indexing.IndexService`)."""

    state: IndexState = IndexState.NONE
    text: str = ""
    activity: Activity | None = None


class IndexStatusState(Observed[IndexStatus]):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(IndexStatus(), parent)

    def set_state(self, state: IndexState, text: str) -> None:
        self.set(replace(self.value, state=state, text=text))

    def set_activity(self, activity: Activity) -> None:
        self.set(replace(self.value, activity=activity))


class LiveAnswer(QObject):
    """The answer being streamed (or the last one): `fold(event)` folds an
    assistant event into the `AnswerState` and emits `changed(state, event)`;
    `restart()` begins a new answer and emits `changed(fresh state, None)`."""

    changed = Signal(object, object)  # AnswerState, the event folded (None: a new answer)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = AnswerSession()

    @property
    def state(self) -> AnswerState:
        return self.session.state

    def restart(self) -> None:
        self.session = AnswerSession()
        self.changed.emit(self.session.state, None)

    def fold(self, event: object) -> AnswerState:
        state = self.session.fold(event)
        self.changed.emit(state, event)
        return state
