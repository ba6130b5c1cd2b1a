"""Fit estimates against the real memory the bundled model takes, GPU layer
planning, and the CPU fallback when offload fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.core.errors import ModelTooLargeError
from app.core.llm import local
from app.core.llm.local import LocalModelConfig, LocalProvider
from app.core.llm.provider import CancelToken, ChatMessage, ChatRequest, TextDelta
from app.core.models.files import check_model_file, read_metadata
from app.core.models.fit import (
    FITS,
    TIGHT,
    WONT_FIT,
    GpuMemory,
    Shape,
    estimate,
    plan_gpu_layers,
)

# The estimate must be within this share of what the process really takes.
TOLERANCE = 0.25

MEASURE = r"""
import json, sys, psutil
proc = psutil.Process()
import llama_cpp  # the library itself is not the model's memory
before = proc.memory_info().rss
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=int(sys.argv[2]), n_batch=512, verbose=False)
# Fill the whole context: every weight, every cache cell and the largest
# attention batch are then really in memory (untouched pages are not).
n_ctx = int(sys.argv[2])
tokens = (llm.tokenize(b"word " * 2000) * (n_ctx // 2000 + 1))[: n_ctx - 1]
llm.eval(tokens)
after = proc.memory_info().rss
print(json.dumps({"used": after - before}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("n_ctx", [1024, 2048])
def test_estimate_matches_the_bundled_models_real_memory_use(model_path: Path,
                                                             n_ctx: int) -> None:
    size = check_model_file(model_path)
    shape = Shape.from_metadata(read_metadata(model_path), size)
    fit = estimate(shape, n_ctx, ram_free=64 * 1024**3, gpus=[])
    out = subprocess.run([sys.executable, "-c", MEASURE, str(model_path), str(n_ctx)],
                         capture_output=True, text=True, timeout=120, check=True)
    used = json.loads(out.stdout.strip().splitlines()[-1])["used"]
    error = abs(fit.total - used) / used
    print(f"n_ctx={n_ctx}: estimated {fit.total / 2**20:.0f} MiB, "
          f"measured {used / 2**20:.0f} MiB, off by {error:.0%}")
    assert error <= TOLERANCE


def test_verdicts_with_the_numbers() -> None:
    gib = 1024**3
    shape = Shape(2 * gib, 32, 32, 8, 128)
    assert estimate(shape, 4096, ram_free=16 * gib, gpus=[]).verdict == FITS
    tight = estimate(shape, 4096, ram_free=int(3.0 * gib), gpus=[])
    assert tight.verdict == TIGHT
    wont = estimate(shape, 4096, ram_free=2 * gib, gpus=[])
    assert wont.verdict == WONT_FIT and not wont.fits
    text = wont.summary()
    assert text.startswith("won't fit: about 2.") and "2.0 GB weights" in text
    assert "0.5 GB context" in text and "of 2.0 GB free" in text


def test_gpu_layers_are_as_many_as_fit_in_free_vram() -> None:
    gib = 1024**3
    shape = Shape(4 * gib, 32, 32, 8, 128)
    assert plan_gpu_layers(shape, 4096, 0) == 0
    assert plan_gpu_layers(shape, 4096, 64 * gib) == 33  # everything, output layer too
    some = plan_gpu_layers(shape, 4096, 3 * gib)
    assert 0 < some < 33
    fit = estimate(shape, 4096, ram_free=8 * gib, gpus=[GpuMemory("GPU0", 3 * gib, 8 * gib)])
    assert fit.gpu_layers == some
    assert fit.ram_needed < fit.total
    assert "layers on the GPU" in fit.summary()


def test_a_model_too_large_for_memory_is_refused_before_loading(
        model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.core.models.fit.available_ram", lambda: 50 * 1024**2)
    with (LocalProvider(LocalModelConfig(path=model_path, context_size=2048)) as provider,
          pytest.raises(ModelTooLargeError, match=r"needs about .* but only 0.0 GB is free")):
        provider.load()
    # the explicit override loads it anyway
    with LocalProvider(LocalModelConfig(path=model_path, context_size=2048,
                                        check_memory=False)) as provider:
        assert provider.load().n_ctx == 2048


def test_cpu_build_says_where_the_model_runs(engine: LocalProvider) -> None:
    loaded = engine.load()
    assert loaded.gpu_layers == 0
    assert loaded.offload == "CPU only: this llama.cpp build has no GPU offload"
    assert loaded.fallback is None
    assert loaded.fit is not None and loaded.fit.verdict == FITS


def test_failed_gpu_offload_falls_back_to_the_cpu_and_says_why(
        model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """There is no GPU here: the build is made to claim offload and 2 GB of
    free VRAM, and the GPU load fails the way an out-of-memory CUDA load does.
    The CPU load that follows is the real one."""
    real = local.new_llama
    calls: list[int] = []

    def fake_gpu_load(**kwargs: Any) -> Any:
        calls.append(kwargs["n_gpu_layers"])
        if kwargs["n_gpu_layers"]:
            raise ValueError(f"Failed to load model from file: {kwargs['model_path']}")
        return real(**kwargs)

    monkeypatch.setattr(local, "gpu_offload_supported", lambda: True)
    monkeypatch.setattr(local, "gpu_memory", lambda: [GpuMemory("Fake GPU", 2 * 1024**3,
                                                                 8 * 1024**3)])
    monkeypatch.setattr(local, "new_llama", fake_gpu_load)
    with LocalProvider(LocalModelConfig(path=model_path, context_size=2048)) as provider:
        loaded = provider.load()
        assert calls == [31, 0]  # all 30 layers + output planned, then the CPU
        assert loaded.gpu_layers == 0
        assert loaded.fallback is not None and "GPU offload of 31 layers failed" in (
            loaded.fallback)
        assert loaded.offload.startswith("CPU fallback:")
        request = ChatRequest(messages=(ChatMessage("user", "Say hi"),), max_tokens=4,
                              temperature=0.0)
        text = "".join(i.text for i in provider.stream(request, CancelToken())
                       if isinstance(i, TextDelta))
        assert text.strip()


def test_doctor_reports_the_offload_state(model_path: Path) -> None:
    from tests.helpers import run_hearth

    out = run_hearth("doctor", "--json")
    data = json.loads(out.stdout)
    assert data["model"]["offload"] == "CPU only: this llama.cpp build has no GPU offload"
    assert data["model"]["gpu_fallback"] is None
    assert data["model"]["fit"].startswith("fits: about")
    text = run_hearth("doctor").stdout
    assert "Offload       CPU only" in text and "Memory        fits" in text
