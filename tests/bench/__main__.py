"""Run every benchmark in tests/bench and write their figures, with the
machine they ran on, to DIR/bench.json and DIR/bench.md.

    python -m tests.bench [-k EXPR] [--out DIR] [other pytest arguments]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests.bench.figures import SINK_ENV, finish, read_sink, this_machine, write_results

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", dest="expr", help="only the benchmarks matching this pytest "
                        "expression")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results", metavar="DIR",
                        help="folder for bench.json and bench.md (default: bench-results)")
    args, rest = parser.parse_known_args(argv)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    sink = out / "figures.jsonl"
    sink.unlink(missing_ok=True)

    # pytest runs in a process of its own, so the runner's imports and memory
    # stay out of the figures; -s because the benchmarks print their details.
    cmd = [sys.executable, "-m", "pytest", str(BENCH), "-s"]
    if args.expr:
        cmd += ["-k", args.expr]
    cmd += rest
    machine = this_machine()
    started = datetime.now(UTC)
    rc = subprocess.call(cmd, cwd=REPO, env={**os.environ, SINK_ENV: str(sink)})
    finish(machine)
    figures, outcomes = read_sink(sink)
    sink.unlink(missing_ok=True)
    header = {
        "Started": started.isoformat(timespec="seconds"),
        "Finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "Command": " ".join(["python -m tests.bench", *(argv if argv is not None
                                                        else sys.argv[1:])]),
        "pytest exit code": str(rc),
    }
    json_path, md_path = write_results(out, figures, outcomes, machine, header)
    print()
    print(md_path.read_text(encoding="utf-8"))
    print(f"Written: {json_path} and {md_path}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
