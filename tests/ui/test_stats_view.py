"""The Statistics view reads the real store off the GUI thread and draws its
charts; the answer details show the whole trace."""

from __future__ import annotations

import os
from pathlib import Path

from pytestqt.qtbot import QtBot

from app.core import trace
from app.core.conversations import ConversationStore
from app.paths import Paths
from app.ui.answer_info import AnswerInfo
from app.ui.details_dialog import details_html
from app.ui.stats_view import StatsDialog
from tests.unit.test_trace_and_stats import _chunks, _fallback_route, _seed


def test_the_statistics_view_charts_a_seeded_history(qtbot: QtBot, paths: Paths) -> None:
    paths.ensure(paths.data_dir)
    store = ConversationStore(paths.conversations_db)
    _seed(store)
    store.close()
    dialog = StatsDialog(paths)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.figures is not None, timeout=10_000)
    assert dialog.charts["models"].bars == [("local · smol", 4, "4"), ("groq · llama", 1, "1")]
    assert dialog.charts["days"].bars == [("2025-03-01", 330, "330"),
                                          ("2025-03-02", 340, "340")]
    assert dialog.charts["fallbacks"].bars == [("ttft_timeout", 1, "1")]
    assert dialog.summary.text().startswith("5 answers.")
    text = dialog.tables.toPlainText()
    assert "$0.0001" in text and "Fallbacks: 1 of 4 answers (25%)" in text
    # The README's picture: regenerated on request, never compared.
    if os.environ.get("HEARTH_WRITE_SCREENSHOTS"):
        target = Path(__file__).resolve().parents[2] / "docs" / "statistics.png"
        assert dialog.grab().save(str(target))
    dialog.close()


def test_the_statistics_view_of_an_empty_history_says_so(qtbot: QtBot, paths: Paths) -> None:
    dialog = StatsDialog(paths)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.figures is not None, timeout=10_000)
    assert dialog.summary.text().startswith(
        "No answers yet; ask something first, then look again.")
    assert all(chart.bars == [] for chart in dialog.charts.values())
    dialog.close()


def test_the_answer_details_show_the_trace() -> None:
    t = trace.build(prompt_ref="hearth-answer@3", route=_fallback_route(), question="q",
                    context=_chunks(), used=(1, 3), answer="[1]", status="answered",
                    provider="groq", model="llama")
    page = details_html(AnswerInfo("groq", "llama", trace=t))
    for expected in ("hearth-answer@3", "ttft_timeout", "Queue", "Generation", "/d/b.pdf",
                     "Vector", "Keyword", "Fused", "Cited", "2 openai_key",
                     "1 passages, 2 earlier messages", "$0.000120"):
        assert expected in page, expected
