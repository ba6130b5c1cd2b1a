"""Generation while a folder is being indexed by another process.

Interleaved in each round: the bundled model answering alone; `hearth index
add` of real files alone (its wall time); the same index with answers given
meanwhile, each holding the answering mark as the assistant does, so the
indexer steps aside; and, for reference, answers without the mark. Medians
over the rounds. Run:

    .venv/bin/python -m pytest tests/bench/test_generation_while_indexing.py -s
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pytest

from app.core import foreground
from app.core.llm.local import default_threads
from app.paths import Paths
from app.settings import DEFAULT_SYSTEM_PROMPT
from tests.bench.corpus import copy_corpus
from tests.bench.figures import Record
from tests.helpers import REPO
from tests.kb_helpers import wait_for

pytestmark = [pytest.mark.bench, pytest.mark.timeout(3600)]

QUESTION = "Write a long story about a lighthouse keeper and a storm."
MAX_TOKENS = int(os.environ.get("BENCH_TOKENS", "128"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
FILES = int(os.environ.get("BENCH_FILES", "400"))
ANSWERS_PER_INDEX = 3
TOKENS_RATIO = 0.8  # tokens/s while indexing, at least this share of alone
FIRST_TOKEN_RATIO = 1.5  # first token while indexing, at most this multiple of alone


def _committed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(con.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


class Index:
    """`hearth index add` of a fresh copy of the corpus in a data folder of its own."""

    def __init__(self, home: Path, folder: Path) -> None:
        self.home = home
        self.paths = Paths.under(home)
        env = {**os.environ, "HEARTH_HOME": str(home), "HEARTH_LOG_LEVEL": "WARNING"}
        env.pop("QT_QPA_PLATFORM", None)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "app", "index", "add", str(folder)],
                                     cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.db = home / "data" / "knowledge" / "manifest.sqlite3"
        self.wall = 0.0

    def running(self) -> bool:
        return self.proc.poll() is None

    def committed(self) -> int:
        return _committed(self.db)

    def wait_for_progress(self, than: int) -> None:
        """Until more passages than `than` are committed or the index is done."""
        wait_for(lambda: self.committed() > than or not self.running(), timeout=600,
                 interval=0.05, what="the index to commit more passages")

    def finish(self) -> float:
        _, err = self.proc.communicate(timeout=1200)
        self.wall = time.perf_counter() - self.started
        assert self.proc.returncode == 0, err
        assert "Done in" in err, err
        return self.wall


class Generator:
    def __init__(self, model: Path) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from app.core.models.files import read_metadata

        threads = default_threads()
        self.llm = Llama(model_path=str(model), n_ctx=4096, n_batch=512, n_threads=threads,
                         n_threads_batch=threads, n_gpu_layers=0, verbose=False)
        fmt = Jinja2ChatFormatter(template=read_metadata(model).chat_template,
                                  eos_token="<|im_end|>", bos_token="")
        prompt = fmt(messages=[{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
                               {"role": "user", "content": QUESTION}]).prompt
        self.tokens = self.llm.tokenize(prompt.encode(), add_bos=False, special=True)

    def answer(self, mark: AbstractContextManager[Any]) -> tuple[float, float]:
        """(tokens/s after the first, seconds to the first token), the whole
        prompt read again each time."""
        import llama_cpp

        self.llm.reset()
        n = 0
        with mark:
            start = time.perf_counter()
            first = last = start
            for token in self.llm.generate(self.tokens, temp=0.0, reset=True):
                now = time.perf_counter()
                if llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token):
                    break
                n += 1
                if n == 1:
                    first = now
                last = now
                if n >= MAX_TOKENS:
                    break
        assert n >= 16
        return (n - 1) / (last - first), first - start

    def close(self) -> None:
        self.llm.close()


def _homes(root: Path) -> Iterator[Path]:
    n = 0
    while True:
        n += 1
        yield root / f"home-{n}"


@pytest.mark.skipif(sys.platform != "linux", reason="measured on Linux")
def test_generation_keeps_its_speed_while_indexing(model_path: Path, tmp_path: Path,
                                                   record: Record) -> None:
    folder = tmp_path / "corpus"
    copy_corpus(folder, FILES)
    homes = _homes(tmp_path)
    gen = Generator(model_path)
    alone_tps: list[float] = []
    alone_first: list[float] = []
    marked_tps: list[float] = []
    marked_first: list[float] = []
    plain_tps: list[float] = []
    plain_first: list[float] = []
    index_alone: list[float] = []
    index_with: list[float] = []
    loads: list[float] = []
    try:
        gen.answer(nullcontext())  # warm: pages mapped, caches filled
        for _ in range(ROUNDS):
            loads.append(os.getloadavg()[0])
            for _ in range(2):
                tps, first = gen.answer(nullcontext())
                alone_tps.append(tps)
                alone_first.append(first)

            index = Index(next(homes), folder)  # alone
            index_alone.append(index.finish())

            # Answers while indexing, each holding the mark; between answers
            # the index is let on until it has committed more.
            index = Index(next(homes), folder)
            index.wait_for_progress(0)
            for _ in range(ANSWERS_PER_INDEX):
                if not index.running():
                    break
                done = index.committed()
                tps, first = gen.answer(foreground.answering(index.paths))
                marked_tps.append(tps)
                marked_first.append(first)
                index.wait_for_progress(done)
            index_with.append(index.finish())

            # For reference: the same without the mark.
            index = Index(next(homes), folder)
            index.wait_for_progress(0)
            if index.running():
                tps, first = gen.answer(nullcontext())
                plain_tps.append(tps)
                plain_first.append(first)
            index.finish()

            for _ in range(2):
                tps, first = gen.answer(nullcontext())
                alone_tps.append(tps)
                alone_first.append(first)
    finally:
        gen.close()

    med = statistics.median
    tps_ratio = med(marked_tps) / med(alone_tps)
    first_ratio = med(marked_first) / med(alone_first)
    slowdown = med(index_with) / med(index_alone)
    print(f"\n{FILES} files, {ROUNDS} rounds, {MAX_TOKENS} tokens, threads {default_threads()}, "
          f"load average at the rounds' start {', '.join(f'{x:.2f}' for x in loads)}")
    print(f"alone:              {med(alone_tps):6.1f} tok/s, first token "
          f"{med(alone_first) * 1000:6.0f} ms  ({_list(alone_tps)}; first "
          f"{_list(alone_first, 1000)} ms)")
    print(f"indexing, marked:   {med(marked_tps):6.1f} tok/s, first token "
          f"{med(marked_first) * 1000:6.0f} ms  ({_list(marked_tps)}; first "
          f"{_list(marked_first, 1000)} ms)")
    if plain_tps:
        print(f"indexing, no mark:  {med(plain_tps):6.1f} tok/s, first token "
              f"{med(plain_first) * 1000:6.0f} ms  ({_list(plain_tps)}; first "
              f"{_list(plain_first, 1000)} ms)")
    print(f"ratios while indexing (marked): tokens/s {tps_ratio:.2f} (>= {TOKENS_RATIO}), "
          f"first token {first_ratio:.2f} (<= {FIRST_TOKEN_RATIO})")
    print(f"index wall time: alone {med(index_alone):.1f} s ({_list(index_alone)}), with "
          f"{ANSWERS_PER_INDEX} answers {med(index_with):.1f} s ({_list(index_with)}); "
          f"slowdown {slowdown:.2f}x; load average now {os.getloadavg()[0]:.2f}")
    alone = "the same model answering alone, interleaved rounds"
    record("generation while indexing ÷ alone (tokens/s)", tps_ratio, "×",
           at_least=TOKENS_RATIO, baseline=alone, threads=default_threads())
    record("first token while indexing ÷ alone", first_ratio, "×", at_most=FIRST_TOKEN_RATIO,
           baseline=alone, threads=default_threads())
    assert tps_ratio >= TOKENS_RATIO
    assert first_ratio <= FIRST_TOKEN_RATIO


def _list(xs: list[float], scale: float = 1.0) -> str:
    return ", ".join(f"{x * scale:.1f}" for x in xs)
