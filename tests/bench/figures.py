"""Benchmark figures: how a benchmark records one, the machine it ran on, and
the JSON file and Markdown table the runner (`python -m tests.bench`) writes."""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

# The runner names a file here; every figure and test outcome is appended as
# it happens, so a benchmark that crashes or times out later keeps its rows.
SINK_ENV = "HEARTH_BENCH_FIGURES"


@dataclass(frozen=True)
class Figure:
    test: str
    name: str
    value: float
    unit: str
    op: str  # ">=" or "<="
    bound: float
    ok: bool
    baseline: str | None = None  # what the bound was measured against, in the same run
    threads: int | None = None
    note: str = ""

    @property
    def target(self) -> str:
        sign = "≥" if self.op == ">=" else "≤"
        return f"{sign} {fmt(self.bound)} {self.unit}".rstrip()

    @property
    def against(self) -> str:
        return self.baseline or "absolute"


@dataclass(frozen=True)
class Outcome:
    test: str
    outcome: str  # pytest's: "passed", "failed", "skipped"


def make_figure(test: str, name: str, value: float, unit: str, *,
                at_least: float | None = None, at_most: float | None = None,
                baseline: str | None = None, threads: int | None = None,
                note: str = "") -> Figure:
    """A figure with its target; pass/fail is worked out here so the table can
    never disagree with the bound it shows."""
    if not name:
        raise ValueError("a benchmark figure needs a name")
    if (at_least is None) == (at_most is None):
        raise ValueError(f"the figure {name!r} needs one target: at_least or at_most")
    bound = float(at_least if at_least is not None else at_most)  # type: ignore[arg-type]
    value = float(value)
    if not math.isfinite(value) or not math.isfinite(bound):
        raise ValueError(f"the figure {name!r} is not a number: {value} against {bound}")
    op = ">=" if at_least is not None else "<="
    ok = value >= bound if op == ">=" else value <= bound
    return Figure(test, name, value, unit, op, bound, ok, baseline or None, threads, note)


class Record(Protocol):
    """The `record` fixture of tests/bench/conftest.py."""

    def __call__(self, name: str, value: float, unit: str, *,
                 at_least: float | None = None, at_most: float | None = None,
                 baseline: str | None = None, threads: int | None = None,
                 note: str = "") -> Figure: ...


class Recorder:
    """Figures of one pytest session, also appended to the runner's sink file."""

    def __init__(self, sink: Path | None = None) -> None:
        self.sink = sink
        self.figures: list[Figure] = []

    def record(self, test: str, name: str, value: float, unit: str, **target: Any) -> Figure:
        figure = make_figure(test, name, value, unit, **target)
        self.figures.append(figure)
        self._append({"figure": asdict(figure)})
        return figure

    def outcome(self, test: str, outcome: str) -> None:
        self._append({"outcome": asdict(Outcome(test, outcome))})

    def _append(self, entry: dict[str, Any]) -> None:
        if self.sink is None:
            return
        with self.sink.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


def read_sink(path: Path) -> tuple[list[Figure], list[Outcome]]:
    figures: list[Figure] = []
    outcomes: list[Outcome] = []
    if not path.exists():
        return figures, outcomes
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        if "figure" in entry:
            figures.append(Figure(**entry["figure"]))
        else:
            outcomes.append(Outcome(**entry["outcome"]))
    return figures, outcomes


@dataclass
class Machine:
    cpu_model: str
    physical_cores: int | None
    logical_cpus: int | None
    model_threads: int  # what Hearth gives llama.cpp by default
    embed_threads: int  # and the ONNX embedder
    ram_total_gib: float
    ram_available_gib: float
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float] | None = None
    python: str = field(default_factory=platform.python_version)
    system: str = field(default_factory=platform.platform)

    def short(self) -> str:
        return (f"{self.cpu_model}, {self.physical_cores} cores / {self.logical_cpus} CPUs, "
                f"{self.model_threads} threads")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def this_machine() -> Machine:
    import psutil

    from app.core.knowledge.embedder import default_threads as embed_threads
    from app.core.llm.local import default_threads as model_threads

    mem = psutil.virtual_memory()
    return Machine(cpu_model=cpu_model(), physical_cores=psutil.cpu_count(logical=False),
                   logical_cpus=psutil.cpu_count(logical=True), model_threads=model_threads(),
                   embed_threads=embed_threads(), ram_total_gib=round(mem.total / 2**30, 1),
                   ram_available_gib=round(mem.available / 2**30, 1),
                   load_start=_load())


def _load() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def finish(machine: Machine) -> Machine:
    machine.load_end = _load()
    return machine


def fmt(x: float) -> str:
    if x == int(x) and abs(x) < 1e9:
        return str(int(x))
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(figures: list[Figure], machine: Machine, silent: list[Outcome],
             header: dict[str, str]) -> str:
    load_end = machine.load_end or ("?", "?", "?")
    lines = ["# Hearth benchmarks", ""]
    lines += [f"- {k}: {v}" for k, v in header.items()]
    lines += [
        f"- Machine: {machine.cpu_model}; {machine.physical_cores} cores, "
        f"{machine.logical_cpus} logical CPUs; threads used: {machine.model_threads} for the "
        f"model, {machine.embed_threads} for embeddings (unless a row says otherwise); RAM "
        f"{machine.ram_total_gib} GiB ({machine.ram_available_gib} GiB available at the start)",
        f"- Load average (1, 5, 15 min): {', '.join(map(str, machine.load_start))} at the start, "
        f"{', '.join(map(str, load_end))} at the end",
        f"- Python {machine.python} on {machine.system}",
        "",
        "A target *against* a baseline was measured in the same run, so machine load "
        "hits both sides; *absolute* targets are fixed thresholds and move with the "
        "machine's load.",
        "",
        "| Figure | Value | Target | Against | Result | Threads | Machine | Benchmark |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        name = f.name + (f" ({f.note})" if f.note else "")
        lines.append("| " + " | ".join(_cell(c) for c in (
            name, f"{fmt(f.value)} {f.unit}".rstrip(), f.target, f.against,
            "pass" if f.ok else "**FAIL**",
            str(f.threads if f.threads is not None else machine.model_threads),
            machine.short(), f.test)) + " |")
    if silent:
        lines += ["", "Benchmarks that recorded no figure:", ""]
        lines += [f"- {o.test}: {o.outcome}" for o in silent]
    return "\n".join(lines) + "\n"


def without_figures(figures: list[Figure], outcomes: list[Outcome]) -> list[Outcome]:
    """The tests that ended (failed, skipped, errored) before recording anything:
    a table without them would hide a broken benchmark."""
    recorded = {f.test for f in figures}
    worst: dict[str, Outcome] = {}
    for o in outcomes:
        if o.test not in recorded and (o.test not in worst or o.outcome != "passed"):
            worst[o.test] = o
    return list(worst.values())


def write_results(out: Path, figures: list[Figure], outcomes: list[Outcome],
                  machine: Machine, header: dict[str, str]) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    silent = without_figures(figures, outcomes)
    data = {
        **header,
        "machine": asdict(machine),
        "figures": [{**asdict(f), "target": f.target, "against": f.against} for f in figures],
        "without_figures": [asdict(o) for o in silent],
        "passed": all(f.ok for f in figures) and not any(o.outcome == "failed" for o in silent),
    }
    json_path, md_path = out / "bench.json", out / "bench.md"
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(markdown(figures, machine, silent, header), encoding="utf-8")
    return json_path, md_path

