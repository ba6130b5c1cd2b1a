"""How the retriever puts vector and keyword scores on one 0..1 scale."""

from __future__ import annotations

from app.core.knowledge.retriever import KEYWORD_MIN_SPAN, SCALE_FLOOR, _scaled


def test_the_only_match_is_the_best_not_the_worst() -> None:
    # One file holds the rare word: its keyword score is the top of the scale.
    assert _scaled({"a": 4.95, "b": None}, min_span=KEYWORD_MIN_SPAN) == {"a": 1.0}


def test_a_wide_range_is_plain_min_max() -> None:
    assert _scaled({"a": 10.0, "b": 5.0, "c": 0.0}) == {"a": 1.0, "b": 0.5, "c": 0.0}


def test_scores_that_hardly_differ_are_not_spread_over_the_whole_scale() -> None:
    scaled = _scaled({"a": 10.0, "b": 9.9})
    assert scaled["a"] == 1.0
    # The range reaches SCALE_FLOOR of the best one down from it.
    assert abs(scaled["b"] - (1 - 0.1 / (SCALE_FLOOR * 10.0))) < 1e-9


def test_others_are_placed_on_the_scale_of_the_reference_set_and_clipped() -> None:
    scaled = _scaled({"a": 1.0, "b": 0.5, "c": 2.0, "d": -1.0}, over={"a", "b"}, min_span=0.5)
    assert scaled == {"a": 1.0, "b": 0.0, "c": 1.0, "d": 0.0}
