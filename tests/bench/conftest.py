"""Benchmarks run only when asked. `python -m tests.bench` runs them all and
writes their figures as one JSON file and one Markdown table;
`python -m pytest tests/bench/test_x.py -s` runs some and prints the table.

Each figure a benchmark prints and asserts is also given to the `record`
fixture, before the assertion, so that a figure that misses its target still
reaches the table:

    def test_cache_hit_latency(record: Record) -> None:
        ...
        record("cache hit, question to full answer p95", p95 * 1000, "ms", at_most=50)
        record("generation ÷ bare llama-cpp-python", ratio, "×", at_least=0.95,
               baseline="bare llama-cpp-python loop, same model and threads")
        assert ...

A figure needs exactly one target, `at_least` or `at_most`; one without is
refused (ValueError). `baseline` names what the target was measured against
in the same run, which keeps machine load out of the verdict; without it the
target is an absolute threshold and the table says so. `threads` when the
benchmark ran with other than Hearth's default thread count; `note` for a
few words more. `Record` comes from tests.bench.figures, for the type hint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.bench.figures import SINK_ENV, Figure, Record, Recorder, fmt

_recorder = Recorder(Path(os.environ[SINK_ENV]) if os.environ.get(SINK_ENV) else None)


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Record:
    test = request.node.nodeid

    def record(name: str, value: float, unit: str, **target: Any) -> Figure:
        return _recorder.record(test, name, value, unit, **target)

    return record


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Setup and teardown matter only when they fail: a benchmark that errors
    # before recording must still show up in the runner's table.
    if report.when == "call" or report.outcome != "passed":
        _recorder.outcome(report.nodeid, report.outcome)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _recorder.figures:
        return
    terminalreporter.section("benchmark figures")
    for f in _recorder.figures:
        verdict = "pass" if f.ok else "FAIL"
        terminalreporter.write_line(
            f"{verdict:4}  {f.name}: {fmt(f.value)} {f.unit} (target {f.target}, "
            f"against {f.against})")
