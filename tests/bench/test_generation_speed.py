"""Generation speed through `hearth ask` against a bare llama-cpp-python loop.

Same model, prompt, threads and greedy sampling on both sides; the bare loop is
the ceiling. Rounds alternate so that load from other processes hits both
sides alike; medians are compared. Run: python -m pytest tests/bench -s
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest

from app.core.llm.local import default_threads
from app.core.models.files import read_metadata
from app.settings import DEFAULT_SYSTEM_PROMPT
from tests.bench.figures import Record
from tests.helpers import run_hearth

QUESTION = "Write a long story about a lighthouse keeper and a storm."
MAX_TOKENS = 256
ROUNDS = 5
TARGET = 0.95


def bare_loop_tokens_per_s(llm, prompt_tokens: list[int]) -> tuple[float, int]:
    import llama_cpp

    from app.settings import lookup

    first = last = 0.0
    n = 0
    # The same sampler as Hearth's defaults, so only the plumbing differs.
    penalty = float(lookup("generation.repeat_penalty").default)  # type: ignore[arg-type]
    for token in llm.generate(prompt_tokens, temp=0.0, top_p=0.95, repeat_penalty=penalty,
                              reset=True):
        now = time.perf_counter()
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
            break
        llm.detokenize([token])
        n += 1
        if n == 1:
            first = now
        last = now
        if n >= MAX_TOKENS:
            break
    return (n - 1) / (last - first), n


def hearth_ask_tokens_per_s(model: Path, threads: int) -> tuple[float, int]:
    r = run_hearth("ask", QUESTION, "--json", "--temperature", "0", "--max-tokens",
                   str(MAX_TOKENS), "--model", str(model), "--offline",
                   env={"HEARTH_LOG_LEVEL": "WARNING"})
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)["timings"]
    return t["tokens_per_s"], t["completion_tokens"]


@pytest.mark.bench
def test_hearth_ask_matches_the_bare_loop(model_path: Path, hearth_home: Path,
                                          record: Record) -> None:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    threads = default_threads()
    (hearth_home / "config").mkdir(parents=True)
    (hearth_home / "config" / "settings.toml").write_text(
        f"[model]\nthreads = {threads}\ncontext_size = 4096\n")
    llm = Llama(model_path=str(model_path), n_ctx=4096, n_batch=512, n_threads=threads,
                n_threads_batch=threads, n_gpu_layers=0, verbose=False)
    template = read_metadata(model_path).chat_template
    fmt = Jinja2ChatFormatter(template=template, eos_token="<|im_end|>", bos_token="")
    prompt = fmt(messages=[{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
                           {"role": "user", "content": QUESTION}]).prompt
    tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)

    bare, hearth = [], []
    for _ in range(ROUNDS):
        tps, n_bare = bare_loop_tokens_per_s(llm, tokens)
        bare.append(tps)
        tps, n_hearth = hearth_ask_tokens_per_s(model_path, threads)
        hearth.append(tps)
    llm.close()
    ratio = statistics.median(hearth) / statistics.median(bare)
    print(f"\nthreads={threads} tokens: bare {n_bare}, hearth ask {n_hearth}")
    print(f"bare llama-cpp-python loop: median {statistics.median(bare):.1f} tok/s "
          f"({', '.join(f'{x:.1f}' for x in bare)})")
    print(f"hearth ask:                 median {statistics.median(hearth):.1f} tok/s "
          f"({', '.join(f'{x:.1f}' for x in hearth)})")
    print(f"ratio hearth/bare: {ratio:.3f} (target >= {TARGET})")
    record("generation ÷ bare llama-cpp-python (tokens/s through hearth ask)", ratio, "×",
           at_least=TARGET, baseline="bare llama-cpp-python loop, same model, prompt and threads",
           threads=threads)
    assert n_bare == n_hearth, "both sides must generate the same greedy tokens"
    assert ratio >= TARGET
