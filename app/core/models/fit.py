"""Will a model fit this machine? Estimates before download and before load.

What a llama.cpp model needs: its weights (the file, memory-mapped), the f16
key/value cache for the chosen context, and the compute buffers (dominated by
the attention scores of one batch: context x batch x heads x 4 bytes), plus a
small runtime floor. On a build with GPU offload the layers that fit in free
VRAM go there and the rest stays in RAM.

The verdict is "fits" (needed <= 75 % of what is free), "tight" (up to all of
it: it loads, but other programs will be squeezed) or "won't fit".
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass

from app.core.models.files import GiB, ModelMetadata

log = logging.getLogger(__name__)

# The compute buffer: a fixed part (output and graph) plus the attention
# scores of one batch. Calibrated on what llama.cpp reports for the bundled
# model (99 MiB at 2k context, 166 MiB at 8k); it also gives the ~250 MiB
# llama.cpp reports for an 8B Llama at 4k.
RUNTIME_FLOOR_BYTES = 80 * 1024**2
SCORE_BYTES_X10 = 24  # bytes per context x batch x head entry, times 10
MAX_UBATCH = 512
FITS_SHARE = 0.75
# VRAM kept free for the GPU's own compute buffer and the driver.
VRAM_RESERVE_BYTES = 512 * 1024**2

FITS, TIGHT, WONT_FIT = "fits", "tight", "won't fit"


@dataclass(frozen=True)
class Shape:
    """What the estimate needs to know about a model."""

    file_size: int
    n_layers: int | None
    n_heads: int | None
    kv_heads: int | None
    head_dim: int | None

    @classmethod
    def from_metadata(cls, meta: ModelMetadata, file_size: int) -> Shape:
        heads = meta.head_count
        head_dim = meta.key_length or (
            meta.embedding_length // heads if meta.embedding_length and heads else None)
        return cls(file_size, meta.block_count, heads, meta.head_count_kv or heads, head_dim)

    def kv_cache_bytes(self, n_ctx: int) -> int:
        if not (self.n_layers and self.kv_heads and self.head_dim):
            # Unknown shape: a typical 4-bit model's cache at 4k is ~ a tenth of it.
            return int(self.file_size * 0.1 * n_ctx / 4096)
        return 2 * self.n_layers * n_ctx * self.kv_heads * self.head_dim * 2

    def compute_bytes(self, n_ctx: int, n_batch: int = MAX_UBATCH) -> int:
        ubatch = min(n_batch, MAX_UBATCH, n_ctx)
        heads = self.n_heads or (self.kv_heads * 4 if self.kv_heads else 32)
        return n_ctx * ubatch * heads * SCORE_BYTES_X10 // 10 + RUNTIME_FLOOR_BYTES


@dataclass(frozen=True)
class GpuMemory:
    name: str
    free: int
    total: int


def gpu_memory() -> list[GpuMemory]:
    """Free and total memory of each GPU llama.cpp can use (none on a CPU build)."""
    try:
        import llama_cpp
        from llama_cpp._ggml import libggml

        if not llama_cpp.llama_supports_gpu_offload():
            return []
        lib = libggml
        lib.ggml_backend_dev_count.restype = ctypes.c_size_t
        lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
        lib.ggml_backend_dev_get.restype = ctypes.c_void_p
        lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
        lib.ggml_backend_dev_type.restype = ctypes.c_int
        lib.ggml_backend_dev_name.argtypes = [ctypes.c_void_p]
        lib.ggml_backend_dev_name.restype = ctypes.c_char_p
        lib.ggml_backend_dev_memory.argtypes = [
            ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]
        out: list[GpuMemory] = []
        for i in range(lib.ggml_backend_dev_count()):
            dev = lib.ggml_backend_dev_get(i)
            if lib.ggml_backend_dev_type(dev) not in (1, 2):  # GPU, integrated GPU
                continue
            free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
            lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
            name = (lib.ggml_backend_dev_name(dev) or b"GPU").decode("utf-8", "replace")
            out.append(GpuMemory(name, int(free.value), int(total.value)))
        return out
    except Exception:  # a build without these symbols: treat as no GPU
        log.debug("could not query GPU memory", exc_info=True)
        return []


def plan_gpu_layers(shape: Shape, n_ctx: int, vram_free: int) -> int:
    """How many layers fit in `vram_free` (llama.cpp counts the output layer as
    one more: n_layers + 1 means everything)."""
    if not shape.n_layers or vram_free <= VRAM_RESERVE_BYTES:
        return 0
    per_layer = (shape.file_size + shape.kv_cache_bytes(n_ctx)) / (shape.n_layers + 1)
    room = vram_free - VRAM_RESERVE_BYTES - shape.compute_bytes(n_ctx)
    return max(0, min(shape.n_layers + 1, int(room // per_layer)))


@dataclass(frozen=True)
class FitEstimate:
    weights: int
    kv_cache: int
    compute: int
    n_ctx: int
    ram_free: int
    vram_free: int | None = None
    gpu_layers: int = 0
    n_layers: int | None = None

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.compute

    @property
    def offloaded(self) -> int:
        """Bytes that go to the GPU."""
        if not self.gpu_layers or not self.n_layers:
            return 0
        share = min(1.0, self.gpu_layers / (self.n_layers + 1))
        return int((self.weights + self.kv_cache) * share)

    @property
    def ram_needed(self) -> int:
        return self.total - self.offloaded

    @property
    def verdict(self) -> str:
        if self.ram_needed <= FITS_SHARE * self.ram_free:
            return FITS
        if self.ram_needed <= self.ram_free:
            return TIGHT
        return WONT_FIT

    @property
    def fits(self) -> bool:
        return self.verdict != WONT_FIT

    def summary(self) -> str:
        """e.g. "fits: about 1.4 GB (0.9 GB weights + 0.4 GB context + 0.1 GB
        buffers) of 18.2 GB free"."""
        parts = (f"{_gb(self.weights)} weights + {_gb(self.kv_cache)} context + "
                 f"{_gb(self.compute)} buffers")
        where = f"of {_gb(self.ram_free)} free"
        if self.vram_free is not None:
            where += (f"; {self.gpu_layers} of {(self.n_layers or 0) + 1} layers on the GPU "
                      f"({_gb(self.vram_free)} VRAM free)")
        return f"{self.verdict}: about {_gb(self.ram_needed)} ({parts}) {where}"


def _gb(n: float) -> str:
    return f"{n / GiB:.1f} GB"


def available_ram() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def estimate(shape: Shape, n_ctx: int, *, n_batch: int = MAX_UBATCH,
             ram_free: int | None = None, gpus: list[GpuMemory] | None = None,
             gpu_layers: int = -1) -> FitEstimate:
    """The estimate for `shape` at `n_ctx` tokens of context, with as many
    layers on the GPU as fit when `gpu_layers` is -1 (and there is a GPU)."""
    ram = available_ram() if ram_free is None else ram_free
    gpus = gpu_memory() if gpus is None else gpus
    vram = max((g.free for g in gpus), default=None)
    layers = 0
    if vram is not None:
        layers = plan_gpu_layers(shape, n_ctx, vram) if gpu_layers < 0 else gpu_layers
    return FitEstimate(
        weights=shape.file_size, kv_cache=shape.kv_cache_bytes(n_ctx),
        compute=shape.compute_bytes(n_ctx, n_batch), n_ctx=n_ctx, ram_free=ram,
        vram_free=vram, gpu_layers=layers, n_layers=shape.n_layers)
