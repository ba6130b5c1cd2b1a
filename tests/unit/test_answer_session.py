"""The answer session folds the assistant's events into one state, the same
way for every shell; and the first-token deadline gives a long prompt its
reading time."""

from __future__ import annotations

from app.core.answer import AnswerSession
from app.core.events import (
    Attempt,
    Delta,
    Error,
    Fallback,
    Finished,
    Progress,
    Route,
    Source,
    Sources,
    Started,
    Timings,
    Usage,
)
from app.core.llm.pacing import FirstTokenDeadline
from app.core.llm.provider import PromptProgress

SOURCE = Source(1, "/notes/a.md", 1, 3, snippet="hello")
ROUTE = Route("auto", (Attempt("local", "smol", 0.0, None, 0.3, "failed", "ttft_timeout",
                               "local model timed out after 0.3 s"),
                       Attempt("remote", "big", 0.3, 0.5, 0.9, "answered")), "answered by")
FALLBACK = Fallback("local", "remote", "big", "ttft_timeout", "local model timed out",
                    "Hal", can_wait=True)


def fold(*events: object) -> AnswerSession:
    session = AnswerSession()
    for event in events:
        session.fold(event)
    return session


def test_an_answer_that_fell_back_ends_with_the_second_providers_text() -> None:
    session = AnswerSession()
    s = session.fold(Started("c1", "q1", "local", "smol"))
    assert (s.phase, s.conversation_id, s.question_id) == ("waiting", "c1", "q1")
    assert session.fold(Sources((SOURCE,))).sources == (SOURCE,)
    s = session.fold(Progress(512, 2048))
    assert s.phase == "reading" and s.reading_text == "Reading your question and files… 25 %"
    assert session.fold(Delta("Hal")).text == "Hal"
    s = session.fold(FALLBACK)
    assert (s.phase, s.text, s.provider, s.fallback) == ("waiting", "", "remote", FALLBACK)
    assert s.reading_text == "Thinking…"
    session.fold(Delta("Hello "))
    session.fold(Delta("there"))
    session.fold(ROUTE)
    s = session.fold(Finished("c1", "q1", "Hello there", "remote", "big", Usage(10, 2),
                              Timings(0.5, 0.9, 20.0), "stop", ("a note",), "p@1"))
    assert (s.phase, s.text, s.route, s.notes, s.prompt) == (
        "answered", "Hello there", ROUTE, ("a note",), "p@1")
    assert s.ended and s.to_json()["answer"] == "Hello there"
    assert s.to_json()["sources"][0]["path"] == "/notes/a.md"
    assert s.to_json()["timings"]["completion_tokens"] == 2


def test_a_failure_keeps_the_partial_text_and_names_the_last_attempt() -> None:
    s = fold(Started("c1", "q1", "local", "smol"), Delta("Half"), ROUTE,
             Error("No provider could answer.", "all_failed", "trace", "c1", "Half a")).state
    assert (s.phase, s.text, s.error, s.error_reason) == (
        "failed", "Half a", "No provider could answer.", "all_failed")
    assert (s.provider, s.model) == ("remote", "big") and not s.discarded
    assert s.to_json() == {"conversation_id": "c1", "provider": "remote", "model": "big",
                           "route": s.to_json()["route"], "error": "No provider could answer.",
                           "reason": "all_failed", "partial": "Half a"}


def test_a_first_question_without_an_answer_is_marked_discarded() -> None:
    s = fold(Started("c1", "q1", "local", "smol"),
             Error("The answer was stopped before it began.", "cancelled")).state
    assert s.phase == "cancelled" and s.discarded and s.conversation_id is None


def test_progress_after_the_first_word_does_not_go_back_to_reading() -> None:
    s = fold(Started("c", "q", "local", "m"), Delta("a"), Progress(1, 2)).state
    assert s.phase == "streaming" and s.text == "a"


def test_a_short_prompt_has_the_bare_deadline() -> None:
    deadline = FirstTokenDeadline(2.0)
    deadline.start(100.0)
    assert deadline.due() == 102.0
    assert deadline.describe("local model", 102.0) == "local model timed out after 2 s"


def test_a_prompt_being_read_waits_while_batches_keep_coming_up_to_the_allowance() -> None:
    deadline = FirstTokenDeadline(2.0, allowance=5.0)
    deadline.start(100.0)
    deadline.progress(PromptProgress(0, 4000), 100.1)
    # The first batch's time is not known yet: the whole allowance.
    assert deadline.due() == 112.0
    deadline.progress(PromptProgress(512, 4000), 101.1)  # 1 s a batch
    assert deadline.due() == 101.1 + 3.0  # three batches' time, more than 2 s
    deadline.progress(PromptProgress(1024, 4000), 102.1)
    assert abs(deadline.due() - 105.1) < 1e-9
    for i, t in enumerate((104.0, 106.0, 108.0, 110.0, 111.5), start=3):
        deadline.progress(PromptProgress(512 * i, 4000), t)
    assert deadline.due() == 112.0  # capped at (1 + 5) × 2 s after the start
    assert deadline.describe("local model", 112.0) == (
        "local model was still reading a 4,000-token prompt after 12 s")


def test_no_allowance_keeps_the_bare_deadline_while_reading() -> None:
    deadline = FirstTokenDeadline(0.5, allowance=0)
    deadline.start(10.0)
    deadline.progress(PromptProgress(0, 4000), 10.01)
    assert deadline.due() == 10.5
    assert deadline.describe("local model", 10.5) == "local model timed out after 0.5 s"
