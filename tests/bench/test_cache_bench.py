"""Cache-hit latency: from the question to the whole earlier answer, against
a full local answer to the same question in the same process (a ratio, so
the machine's speed cancels out). Run with `pytest tests/bench -s`."""

from __future__ import annotations

import statistics
import time

from app.core.assistant import AskOptions, Assistant
from app.core.events import Finished
from app.paths import Paths
from app.settings import Settings

OPTS = AskOptions(max_tokens=64, temperature=0.0, seed=1, use_files=False,
                  system_prompt="Answer in one short sentence.")
QUESTION = "How much flour goes into the pancake batter?"
PARAPHRASES = ("How much flour is in the pancake batter?",
               "How much flour goes in the pancake batter?",
               "How much flour goes into pancake batter?",
               "how much flour goes into the pancake batter")


def timed(assistant: Assistant, question: str, opts: AskOptions = OPTS) -> tuple[float,
                                                                                Finished]:
    start = time.perf_counter()
    events = list(assistant.ask(question, None, opts))
    elapsed = time.perf_counter() - start
    done = events[-1]
    assert isinstance(done, Finished) and done.trace is not None, done
    return elapsed, done


def test_a_cache_hit_is_at_least_ten_times_faster_than_a_local_answer(
        settings: Settings, paths: Paths) -> None:
    assistant = Assistant(settings, paths)
    try:
        # Load the model and the embedder first: neither is what is compared.
        timed(assistant, "Say hello.", AskOptions(max_tokens=4, use_files=False))
        full_s, first = timed(assistant, QUESTION)
        assert first.finish_reason == "stop" and first.trace is not None
        assert first.trace.cache == "miss"
        hits = []
        for question in PARAPHRASES * 3:
            hit_s, done = timed(assistant, question)
            assert done.trace is not None and done.trace.cache == "hit", question
            hits.append(hit_s)
        # Asked anew, the same question runs the model again: the baseline twice.
        again_s, _ = timed(assistant, QUESTION, AskOptions(**{**OPTS.__dict__, "fresh": True}))
    finally:
        assistant.close()
    local_s = min(full_s, again_s)
    hit_s = statistics.median(hits)
    ratio = local_s / hit_s
    print(f"\ncache hit {hit_s * 1000:.1f} ms (median of {len(hits)}, p95 "
          f"{sorted(hits)[int(0.95 * len(hits)) - 1] * 1000:.1f} ms); full local answer "
          f"{local_s * 1000:.0f} ms; {ratio:.0f}x faster")
    assert ratio >= 10
