"""The share of a local prompt that passages from the user's files may take."""

from __future__ import annotations

from app.core.llm.local import MIN_ANSWER_TOKENS
from app.core.llm.pacing import PromptSpeed, passage_budget


def test_without_a_known_speed_passages_take_at_most_half_the_context() -> None:
    assert passage_budget(4096, 100, None, 20.0) == 2048
    # A long conversation leaves less: the answer keeps its room.
    assert passage_budget(4096, 3000, None, 20.0) == 4096 - 3000 - MIN_ANSWER_TOKENS
    assert passage_budget(4096, 4090, None, 20.0) == 0


def test_a_slow_machine_gets_fewer_passages_so_the_first_token_is_in_time() -> None:
    # 50 tokens/s and a 20 s deadline: half of it reads 500 tokens, 100 of
    # which are the question and instructions.
    assert passage_budget(4096, 100, 50.0, 20.0) == 400
    assert passage_budget(4096, 600, 50.0, 20.0) == 0
    # A fast machine is bound by the context window again.
    assert passage_budget(4096, 100, 5000.0, 20.0) == 2048


def test_prompt_speed_keeps_the_slowest_of_the_last_few() -> None:
    speed = PromptSpeed()
    assert speed.get("m") is None
    speed.record("m", 1000, 2.0)
    speed.record("m", 1000, 1.0)
    assert speed.get("m") == 500.0
    speed.record("m", 10, 5.0)  # too short a prompt to say anything
    assert speed.get("m") == 500.0
    for _ in range(PromptSpeed.KEEP):
        speed.record("m", 1000, 0.5)
    assert speed.get("m") == 2000.0  # the slow spell has passed
    assert speed.get("other") is None
