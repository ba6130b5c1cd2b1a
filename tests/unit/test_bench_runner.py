"""The benchmark runner's results: figures with targets, written as JSON and
as a Markdown table with the machine they ran on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.figures import (
    Machine,
    Outcome,
    Recorder,
    make_figure,
    read_sink,
    write_results,
)

MACHINE = Machine(cpu_model="Test CPU 3000", physical_cores=2, logical_cpus=4,
                  model_threads=2, embed_threads=2, ram_total_gib=16.0,
                  ram_available_gib=12.5, load_start=(0.5, 0.4, 0.3), load_end=(1.5, 0.9, 0.4))
GEN = "tests/bench/test_generation_speed.py::test_gen"
FALLBACK = "tests/bench/test_router_bench.py::test_fallback"


def test_a_figure_without_a_target_is_refused() -> None:
    with pytest.raises(ValueError, match="needs one target"):
        make_figure(GEN, "generation ÷ bare", 0.97, "×")
    with pytest.raises(ValueError, match="needs one target"):
        make_figure(GEN, "generation ÷ bare", 0.97, "×", at_least=0.9, at_most=1.1)
    with pytest.raises(ValueError, match="not a number"):
        make_figure(GEN, "generation ÷ bare", float("nan"), "×", at_least=0.95)
    recorder = Recorder()
    with pytest.raises(ValueError):
        recorder.record(GEN, "generation ÷ bare", 0.97, "×", baseline="bare loop")
    assert recorder.figures == []


def test_pass_or_fail_follows_the_target() -> None:
    assert make_figure(GEN, "r", 0.95, "×", at_least=0.95).ok
    assert not make_figure(GEN, "r", 0.94, "×", at_least=0.95).ok
    assert make_figure(GEN, "p95", 100, "ms", at_most=100).ok
    assert not make_figure(GEN, "p95", 100.5, "ms", at_most=100).ok


def test_recorded_figures_are_written_as_json_and_a_markdown_table(tmp_path: Path) -> None:
    sink = tmp_path / "figures.jsonl"
    recorder = Recorder(sink)
    recorder.record(GEN, "generation ÷ bare llama-cpp-python", 0.9731, "×", at_least=0.95,
                    baseline="bare llama-cpp-python loop", threads=2)
    recorder.outcome(GEN, "passed")
    recorder.record(FALLBACK, "fallback latency p95", 123.4, "ms", at_most=100)
    recorder.outcome(FALLBACK, "failed")
    recorder.outcome("tests/bench/test_x.py::test_broken", "failed")
    figures, outcomes = read_sink(sink)
    assert figures == recorder.figures

    json_path, md_path = write_results(tmp_path / "out", figures, outcomes, MACHINE,
                                       {"pytest exit code": "1"})

    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["passed"] is False
    assert data["machine"]["cpu_model"] == "Test CPU 3000"
    assert data["machine"]["load_start"] == [0.5, 0.4, 0.3]
    assert data["machine"]["load_end"] == [1.5, 0.9, 0.4]
    gen, fallback = data["figures"]
    assert (gen["value"], gen["target"], gen["ok"], gen["against"]) == (
        0.9731, "≥ 0.95 ×", True, "bare llama-cpp-python loop")
    assert (fallback["target"], fallback["ok"], fallback["against"]) == (
        "≤ 100 ms", False, "absolute")
    assert data["without_figures"] == [{"test": "tests/bench/test_x.py::test_broken",
                                        "outcome": "failed"}]

    md = md_path.read_text(encoding="utf-8")
    assert "Test CPU 3000; 2 cores, 4 logical CPUs" in md
    assert "0.5, 0.4, 0.3 at the start, 1.5, 0.9, 0.4 at the end" in md
    assert "16.0 GiB" in md
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| Figure | Value | Target | Against | Result |")
    assert rows[1] == ("| generation ÷ bare llama-cpp-python | 0.973 × | ≥ 0.95 × | "
                       "bare llama-cpp-python loop | pass | 2 | Test CPU 3000, 2 cores / "
                       f"4 CPUs, 2 threads | {GEN} |")
    assert "| fallback latency p95 | 123 ms | ≤ 100 ms | absolute | **FAIL** |" in rows[2]
    assert "- tests/bench/test_x.py::test_broken: failed" in md


def test_an_empty_run_still_writes_both_files(tmp_path: Path) -> None:
    json_path, md_path = write_results(tmp_path, [], [Outcome("t::a", "skipped")], MACHINE, {})
    assert json.loads(json_path.read_text(encoding="utf-8"))["figures"] == []
    assert "- t::a: skipped" in md_path.read_text(encoding="utf-8")
