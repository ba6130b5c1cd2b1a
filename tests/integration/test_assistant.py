"""The facade end to end on the real model and a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.core.assistant import AskOptions, Assistant
from app.core.events import Delta, Error, Finished, Route, Started
from app.paths import Paths
from app.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture
def assistant(settings: Settings, paths: Paths) -> Iterator[Assistant]:
    a = Assistant(settings, paths)
    yield a
    a.close()


def _events(assistant: Assistant, question: str, conv: str | None = None, **kw: object):
    return list(assistant.ask(question, conv, AskOptions(**kw)))  # type: ignore[arg-type]


def test_events_come_in_order_with_usage_and_timings(assistant: Assistant) -> None:
    events = _events(assistant, "Say hello.", max_tokens=24, temperature=0.0)
    assert isinstance(events[0], Started)
    assert isinstance(events[-1], Finished) and isinstance(events[-2], Route)
    deltas = [e for e in events if isinstance(e, Delta)]
    assert deltas and all(isinstance(e, Delta) for e in events[1:-2])
    done = events[-1]
    assert done.answer == "".join(d.text for d in deltas)
    assert done.provider == "local" and done.model.startswith("SmolLM2")
    assert done.usage.prompt_tokens > 0 and done.usage.completion_tokens > 0
    assert done.timings.ttft_s is not None and done.timings.ttft_s > 0
    assert done.timings.total_s >= done.timings.ttft_s
    assert events[-2].attempts[0].outcome == "answered"


def test_answers_are_stored_and_a_conversation_continues(assistant: Assistant) -> None:
    first = _events(assistant, "My name is Ada.", max_tokens=16)[-1]
    assert isinstance(first, Finished)
    second = _events(assistant, "What is my name?", first.conversation_id, max_tokens=16)[-1]
    assert isinstance(second, Finished)
    assert second.conversation_id == first.conversation_id
    # the second prompt carries the first exchange
    assert second.usage.prompt_tokens > first.usage.prompt_tokens + first.usage.completion_tokens
    msgs = assistant.store.messages(first.conversation_id)
    assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert msgs[1].content == first.answer and msgs[1].completion_tokens > 0
    assert msgs[3].route["attempts"][0]["provider"] == "local"


def test_empty_question_is_one_clear_error(assistant: Assistant) -> None:
    events = _events(assistant, "   \n ")
    assert len(events) == 1 and isinstance(events[0], Error)
    assert events[0].message == "The question is empty; type something to ask."


def test_a_question_longer_than_the_context_is_refused_and_kept(assistant: Assistant) -> None:
    question = "Summarise this: " + "the quick brown fox jumps over the lazy dog " * 2300
    assert len(question) > 100_000
    conv = assistant.store.create("notes")
    events = _events(assistant, question, conv.id)
    err = events[-1]
    assert isinstance(err, Error) and err.reason == "context_overflow"
    assert "tokens but the local model's context holds 4,096" in err.message
    stored = assistant.store.messages(conv.id)
    assert stored[0].role == "user" and stored[0].content == question.strip()
    assert stored[1].status == "error" and "context" in stored[1].error


def test_old_turns_are_left_out_to_fit_and_the_answer_says_so(
        settings: Settings, paths: Paths) -> None:
    settings.override("model.context_size", 512)
    a = Assistant(settings, paths)
    try:
        conv = None
        for _ in range(4):
            done = _events(a, "Tell me about the sea. " * 20, conv, max_tokens=60)[-1]
            assert isinstance(done, Finished)
            conv = done.conversation_id
        assert any("left out to fit" in n for n in done.notes)
    finally:
        a.close()


def test_missing_model_is_one_clear_error_and_the_question_is_kept(
        assistant: Assistant, tmp_path) -> None:
    events = _events(assistant, "Hello?", model_path=str(tmp_path / "gone.gguf"))
    err = events[-1]
    assert isinstance(err, Error)
    assert err.message.endswith("gone.gguf does not exist.") and err.reason == "no_model"
    # As a first question it leaves no empty conversation behind (the shells
    # keep the question); in a conversation, it is kept with the failure.
    assert err.conversation_id is None and assistant.store.search() == []
    conv = assistant.store.create("notes")
    err = _events(assistant, "Hello?", conv.id, model_path=str(tmp_path / "gone.gguf"))[-1]
    assert isinstance(err, Error) and err.conversation_id == conv.id
    assert assistant.store.messages(conv.id)[0].content == "Hello?"


def test_unknown_conversation(assistant: Assistant) -> None:
    err = _events(assistant, "hi", "doesnotexist")[-1]
    assert isinstance(err, Error) and "No conversation has the id" in err.message


def test_cancel_keeps_the_partial_answer(assistant: Assistant) -> None:
    from app.core.llm.provider import CancelToken

    cancel = CancelToken()
    events = []
    for e in assistant.ask("Write a long story.", None, AskOptions(max_tokens=400), cancel):
        events.append(e)
        if sum(isinstance(x, Delta) for x in events) == 5:
            cancel.cancel()
    done = events[-1]
    assert isinstance(done, Finished) and done.finish_reason == "cancelled"
    stored = assistant.store.messages(done.conversation_id)[-1]
    assert stored.status == "cancelled" and stored.content == done.answer != ""


def test_switching_models_unloads_the_previous_one(settings: Settings, paths: Paths) -> None:
    a = Assistant(settings, paths)
    try:
        first = a.local_provider()
        first.load()
        settings.override("model.context_size", 1024)
        second = a.local_provider()
        assert second is not first and first._thread is not None
        assert not first._thread.is_alive()
        assert a.local_provider() is second
    finally:
        a.close()


def test_the_local_model_holds_the_foreground_mark_while_it_answers(
        assistant: Assistant) -> None:
    from app.core import foreground
    from app.core.events import Delta

    seen: list[int] = []
    for event in assistant.ask("Say hello.", None, AskOptions(max_tokens=8)):
        if isinstance(event, Delta):
            seen.append(len(foreground.live_marks(assistant.paths)))
    # While the answer streamed, every index writer of this data folder saw
    # the mark and stepped aside; once it ended, the mark was gone.
    assert seen and all(n == 1 for n in seen)
    assert foreground.live_marks(assistant.paths) == []
