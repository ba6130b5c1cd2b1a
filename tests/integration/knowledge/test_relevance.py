"""Only relevant passages reach the model; results are files; an index cut by
an older chunker is cut again without being lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.assistant import NO_FILE_MATCHED, AskOptions, Assistant
from app.core.events import Finished, Sources
from app.core.knowledge.base import KnowledgeBase
from app.core.knowledge.store import INDEXED, PENDING
from app.paths import Paths
from app.settings import Settings

pytestmark = pytest.mark.slow

TOPICS = [
    ("garden", "The tomatoes in the back garden need watering every evening in July; the "
               "basil goes next to them and the compost heap sits by the fence."),
    ("car", "The car's next service is due at 90,000 km; the garage on Mill Road quoted "
            "240 euros for the oil change, brake pads and a new air filter."),
    ("budget", "We decided to cut the travel budget for the quarter by 15 percent and move "
               "the savings into the training budget for the support team."),
    ("wifi", "The router's admin page is at 192.168.1.1; the guest network is called "
             "Hearth-Guest and its password changes on the first of each month."),
    ("bread", "Sourdough: feed the starter the night before, mix 500 g flour with 350 g "
              "water and 10 g salt, fold four times, bake at 240 degrees for 40 minutes."),
    ("dentist", "Dentist appointment on 14 March at 9:30 with Dr. Olsen; bring the "
                "insurance card and ask about the night guard."),
]


@pytest.fixture
def notes(paths: Paths, settings: Settings, tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    for name, text in TOPICS:
        (folder / f"{name}.md").write_text(f"# {name.title()}\n\n{text}\n")
    # A long note: one file with several passages.
    (folder / "handbook.md").write_text("# Team handbook\n\n" + "\n\n".join(
        f"## Rule {i}\n\n" + " ".join(f"Rule {i} says point {j} about holidays, rotas and "
                                      f"the on-call phone." for j in range(8))
        for i in range(6)))
    with KnowledgeBase(paths, settings, writer=True) as kb:
        kb.add_folder(folder)
        kb.reconcile()
    return folder


def _ask(a: Assistant, question: str) -> list[object]:
    return list(a.ask(question, None, AskOptions(max_tokens=4, temperature=0.0)))


def test_small_talk_gets_no_passages_and_the_answer_says_no_file_matched(
        settings: Settings, paths: Paths, notes: Path) -> None:
    a = Assistant(settings, paths)
    try:
        for question in ("hi", "thanks!", "tell me a joke"):
            events = _ask(a, question)
            assert not any(isinstance(e, Sources) for e in events), question
            done = events[-1]
            assert isinstance(done, Finished), question
            assert NO_FILE_MATCHED in done.notes
        events = _ask(a, "When is the car's next service due and what did the garage quote?")
        sources = [e for e in events if isinstance(e, Sources)]
        assert sources and sources[0].sources[0].path.endswith("car.md")
        assert isinstance(events[-1], Finished) and NO_FILE_MATCHED not in events[-1].notes
    finally:
        a.close()


def test_the_relevance_gate_can_be_switched_off(settings: Settings, paths: Paths,
                                                notes: Path) -> None:
    settings.override("knowledge.min_relevance", 0.0)
    a = Assistant(settings, paths)
    try:
        assert any(isinstance(e, Sources) for e in _ask(a, "hi"))
    finally:
        a.close()


def test_results_are_files_each_with_its_best_passages(paths: Paths, settings: Settings,
                                                      notes: Path) -> None:
    with KnowledgeBase(paths, settings) as kb:
        one = kb.search("holidays rotas on-call phone", 5)
        assert len({r.path for r in one}) == len(one)  # one passage a file
        assert one[0].path.endswith("handbook.md")
        assert 0.0 <= one[-1].score <= one[0].score <= 1.0
        two = kb.search("holidays rotas on-call phone", 5, per_file=2)
        assert [r.path for r in two[:2]] == [one[0].path] * 2
        assert two[0].id == one[0].id and two[1].id != two[0].id
        # A question about one note finds that note first, by meaning alone.
        assert kb.search("what does the garage charge", 3)[0].path.endswith("car.md")


def test_an_index_cut_by_an_older_chunker_is_cut_again_without_being_lost(
        paths: Paths, settings: Settings, notes: Path) -> None:
    with KnowledgeBase(paths, settings) as kb:
        before = {r.id for r in kb.search("sourdough starter flour", 3)}
        chunks = kb.manifest.counts()["chunks"]
        kb.manifest.set_meta("chunker_version", "1")
    with KnowledgeBase(paths, settings, writer=True) as kb:
        assert kb.rechunking == len(TOPICS) + 1
        assert {f.status for f in kb.manifest.files()} == {PENDING}
        # Until the files are read again, their passages still answer.
        assert {r.id for r in kb.search("sourdough starter flour", 3)} == before
        stats = kb.reconcile()
        assert stats.indexed == len(TOPICS) + 1
        assert stats.chunks_embedded == 0  # same passages: their vectors are kept
        assert {f.status for f in kb.manifest.files()} == {INDEXED}
        assert kb.manifest.counts()["chunks"] == chunks
    with KnowledgeBase(paths, settings, writer=True) as kb:
        assert kb.rechunking == 0
