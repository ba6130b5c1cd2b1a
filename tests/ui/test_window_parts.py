"""The parts of the main window, each built alone and drawn from the state
object it observes: no window, no model, no worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from app.core.answer import AnswerSession
from app.core.assistant import AskOptions, Assistant
from app.core.events import (
    Attempt,
    Delta,
    Error,
    Fallback,
    Finished,
    Route,
    Source,
    Sources,
    Started,
    Timings,
    Usage,
)
from app.core.knowledge.protocol import Activity, IndexState
from app.paths import Paths
from app.ui.conversation_view import ConversationView
from app.ui.folder_chooser import FolderChooser
from app.ui.model_state import LOAD_HINT, ModelLoader, ModelState, local_model_answered
from app.ui.route_chooser import RouteChooser
from app.ui.state import IndexStatusState, LiveAnswer, Observed
from app.ui.status_bar import StatusBar
from app.ui.workers import WorkerSet


def _status_bar(qtbot: QtBot) -> tuple[StatusBar, Observed[ModelState], IndexStatusState]:
    model: Observed[ModelState] = Observed(ModelState())
    index = IndexStatusState()
    bar = StatusBar(model, index)
    qtbot.addWidget(bar)
    bar.show()
    return bar, model, index


def test_the_status_bar_draws_the_model_state(qtbot: QtBot) -> None:
    bar, model, _index = _status_bar(qtbot)
    assert bar.model_status.text() == "Model: not loaded yet"
    assert not bar.model_progress.isVisible()
    model.set(ModelState("loading", "Qwen"))
    assert bar.model_status.text() == "Model: loading Qwen…"
    assert bar.model_progress.isVisible()
    model.set(ModelState("ready", "Qwen", 4096, offload="GPU: 29 of 29 layers"))
    assert bar.model_status.text() == "Model: Qwen · ready · context 4096"
    assert "GPU: 29 of 29 layers" in bar.model_status.toolTip()
    assert not bar.model_progress.isVisible() and not bar.model_details.isVisible()
    model.set(ModelState("error", message="The file is not a GGUF model file.",
                         details="Traceback …"))
    assert bar.model_status.text() == f"Model: The file is not a GGUF model file. {LOAD_HINT}"
    assert bar.model_details.isVisible()


def test_the_status_bar_draws_the_index_status(qtbot: QtBot) -> None:
    bar, _model, index = _status_bar(qtbot)
    assert not bar.index_status.isVisible() and not bar.index_pause.isVisible()
    index.set_state(IndexState.INDEXING, "Indexing 3/10 · notes.md")
    index.set_activity(Activity(done=3, total=10, current="/home/me/notes.md", failed=0))
    assert bar.index_status.text() == "Indexing 3/10 · notes.md"
    assert bar.index_progress.isVisible() and bar.index_progress.value() == 3
    assert bar.index_status.toolTip() == "Indexing /home/me/notes.md"
    assert bar.index_pause.isVisible() and bar.index_pause.text() == "Pause"
    index.set_state(IndexState.PAUSED, "Indexing paused")
    assert bar.index_pause.isChecked() and bar.index_pause.text() == "Resume"
    assert not bar.index_progress.isVisible()
    paused: list[bool] = []
    bar.pause_toggled.connect(paused.append)
    bar.index_pause.click()
    assert paused == [False] and bar.index_pause.text() == "Pause"


def _local_route(outcome: str = "answered") -> Route:
    return Route("auto", (Attempt("local", "SmolLM2", 0.0, 0.1 if outcome == "answered"
                                  else None, 0.5, outcome),), "local answered")


def test_an_answer_by_the_local_model_marks_it_loaded(qtbot: QtBot) -> None:
    # Nothing is loaded or run: the model state only reads the answer's route.
    model = ModelLoader(cast(Assistant, None), WorkerSet())
    session = AnswerSession()
    session.fold(Started("c1", "m1", "local", "SmolLM2"))
    model.note_answer(session.state)
    assert model.phase == "idle"
    session.fold(_local_route())
    assert local_model_answered(session.state) == "SmolLM2"
    with qtbot.waitSignal(model.state.changed, timeout=1_000) as changed:
        model.note_answer(session.state)
    assert changed.args[0] == ModelState("ready", "SmolLM2")
    assert changed.args[0].text == "Model: SmolLM2 · ready"
    # A cached answer (no attempt) or a local attempt that never answered says nothing.
    cached = AnswerSession()
    cached.fold(Route("auto", (), "from an earlier answer"))
    assert local_model_answered(cached.state) is None
    failed = AnswerSession()
    failed.fold(_local_route("failed"))
    assert local_model_answered(failed.state) is None


def _view(qtbot: QtBot) -> ConversationView:
    # Drawing needs no assistant: only asking does.
    view = ConversationView(cast(Assistant, None), WorkerSet(), AskOptions, [])
    qtbot.addWidget(view)
    view.show()
    return view


def _finished(text: str) -> Finished:
    return Finished("c1", "m2", text, "local", "SmolLM2", Usage(), Timings(), "stop")


def test_the_conversation_view_draws_an_answer_from_its_state(qtbot: QtBot) -> None:
    view = _view(qtbot)
    answer: LiveAnswer = view.answer
    started: list[tuple[str, bool]] = []
    sources: list[Any] = []
    view.started.connect(lambda c, new: started.append((c, new)))
    view.sources_changed.connect(sources.append)
    view.chat.add_user("Say hello.")
    view.chat.start_answer()
    answer.restart()
    answer.fold(Started("c1", "m1", "local", "SmolLM2"))
    assert started == [("c1", True)] and view.conversation_id == "c1"
    user = view.chat.last("user")
    assert user is not None and user.message_id == "m1"
    source = Source(1, "/notes/a.md", 1, 4, snippet="text", score=0.9)
    answer.fold(Sources((source,)))
    assert sources == [(), (source,)]  # a new answer clears what was shown before
    answer.fold(Delta("Hel"))
    answer.fold(Delta("lo."))
    shown = view.chat.last("assistant")
    assert shown is not None
    qtbot.waitUntil(lambda: shown.text == "Hello.", timeout=2_000)
    with qtbot.waitSignal(view.finished, timeout=1_000) as finished:
        answer.fold(_local_route())
        answer.fold(_finished("Hello."))
    assert finished.args[0].answer == "Hello."
    assert not view.chat.streaming and shown.badge.text().startswith("Local · SmolLM2")


def test_a_switch_to_another_provider_and_an_error_are_drawn(qtbot: QtBot) -> None:
    view = _view(qtbot)
    messages: list[str] = []
    view.failed.connect(messages.append)
    view.chat.add_user("Say hello.")
    view.chat.start_answer()
    view.answer.restart()
    view.answer.fold(Started("c1", "m1", "local", "SmolLM2"))
    view.answer.fold(Delta("Half an ans"))
    view.answer.fold(Fallback("local", "faulty", "fault-model", "timeout",
                              "local model timed out after 20 s", can_wait=True))
    shown = view.chat.last("assistant")
    assert shown is not None
    assert shown.note_text == ("Local model timed out after 20 s — answering with "
                               "faulty/fault-model")
    assert shown.text == ""  # the abandoned words went
    assert "Keep waiting for the local model" in shown.note_label.text()
    view.answer.fold(Error("The remote provider failed.", "remote_error", "details"))
    assert messages == ["The remote provider failed."]
    assert shown.error_text.startswith("The remote provider failed.")
    # The question left no conversation: it goes back to the box, to be sent again.
    assert view.conversation_id is None and view.input.toPlainText() == "Say hello."


def test_the_route_chooser_fills_from_provider_names(qtbot: QtBot, paths: Paths) -> None:
    chooser = RouteChooser(paths, WorkerSet(), lambda: "remote-first")
    qtbot.addWidget(chooser)
    chooser.fill([])
    assert [chooser.itemData(i) for i in range(chooser.count())] == ["auto", "local-only"]
    assert chooser.route() == "auto"  # the policy names a route not offered: Auto
    with qtbot.waitSignal(chooser.refreshed, timeout=1_000):
        chooser.fill(["groq"])
    assert [chooser.itemData(i) for i in range(chooser.count())] == [
        "auto", "local-only", "remote-first", "groq"]
    chooser.set_default("groq")
    chooser.fill(["groq", "openai"])
    assert chooser.route() == "groq"  # the choice stays while it exists


def test_the_folder_chooser_offers_the_indexed_folders(qtbot: QtBot, tmp_path: Path) -> None:
    state = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    chooser = FolderChooser(state)
    qtbot.addWidget(chooser)
    assert chooser.isChecked() and chooser.folders() is None
    assert chooser.toolTip().startswith("No folders are indexed yet")
    chooser.set_folders(["/home/me/notes", "/home/me/work"])
    work = next(a for a in chooser.menu_.actions() if a.data() == "/home/me/work")
    work.trigger()
    assert chooser.folders() == ("/home/me/work",) and chooser.text() == "Use work"
    chooser.set_folders(["/home/me/work"])  # the choice stays while the folder does
    assert chooser.text() == "Use work"
    chooser.set_folders([])
    assert chooser.folders() is None and chooser.text() == "Use my files"
    chooser.setChecked(False)
    assert state.value("ask/use_files", type=bool) is False


def test_the_first_loaded_model_freezes_what_the_app_keeps_for_good() -> None:
    """Python's full collections walk every object the process holds (about
    50 ms each here, felt by the window while an answer streams); once the
    first model is loaded, what exists is frozen out of them."""
    import gc

    from app.ui import model_state
    from app.ui.model_state import ModelState, freeze_after_first_load

    gc.unfreeze()
    model_state._settled = False
    try:
        freeze_after_first_load(ModelState("loading"))
        assert gc.get_freeze_count() == 0
        freeze_after_first_load(ModelState("ready", "m"))
        frozen = gc.get_freeze_count()
        assert frozen > 0
        freeze_after_first_load(ModelState("ready", "another"))
        assert gc.get_freeze_count() == frozen  # once: a later model's garbage stays collectable
    finally:
        gc.unfreeze()
        model_state._settled = True
