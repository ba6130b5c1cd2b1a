"""Importing .gguf files (checked with llama.cpp's gguf reader and llama.cpp
itself), the installed list, removing, and switching models without ever
being left without one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.core.assistant import Assistant
from app.core.errors import ModelLoadError
from app.core.llm.provider import CancelToken, ChatMessage, ChatRequest, TextDelta
from app.core.models.catalog import load_catalog
from app.core.models.library import (
    LibraryError,
    best_fitting,
    current,
    find_installed,
    import_model,
    inspect_gguf,
    installed,
    overview,
    remove,
)
from app.paths import Paths
from app.settings import Settings


def _gguf_of_unknown_architecture(path: Path) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), "hearthtest")
    writer.add_name("Not a real model")
    writer.add_context_length(2048)
    writer.add_block_count(2)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_inspect_reads_what_the_bundled_file_says(model_path: Path) -> None:
    info = inspect_gguf(model_path)
    assert info.architecture == "llama"
    assert info.quantization == "Q4_1"
    assert info.context_length == 8192
    assert info.chat_template is True and info.warnings == ()
    assert (info.block_count, info.head_count, info.head_count_kv, info.head_dim) == (
        30, 9, 3, 64)


def test_import_copies_the_bundled_file_and_lists_it(paths: Paths, model_path: Path,
                                                     tmp_path: Path) -> None:
    source = tmp_path / "My-Model.Q4_1.gguf"
    shutil.copyfile(model_path, source)
    catalog = load_catalog(paths)
    model = import_model(paths, catalog, source)
    assert model.id == "my-model.q4_1" and not model.linked
    assert model.path.parent == paths.data_dir / "models"
    assert model.path.read_bytes() == model_path.read_bytes()
    assert model.info["architecture"] == "llama"
    assert [m.id for m in installed(paths, catalog)] == ["smollm2-135m", "my-model.q4_1"]
    rows = {r.id: r for r in overview(paths, catalog, Settings.load(paths))}
    assert rows["my-model.q4_1"].installed is not None
    assert rows["my-model.q4_1"].fit.verdict == "fits"
    removed = remove(paths, catalog, model.id, "")
    assert not removed.path.exists()
    assert [m.id for m in installed(paths, catalog)] == ["smollm2-135m"]


def test_import_with_link_keeps_the_file_where_it_is(paths: Paths, model_path: Path,
                                                     tmp_path: Path) -> None:
    source = tmp_path / "linked.gguf"
    shutil.copyfile(model_path, source)
    catalog = load_catalog(paths)
    model = import_model(paths, catalog, source, link=True)
    assert model.linked and model.path == source
    assert not (paths.data_dir / "models" / "linked.gguf").exists()
    remove(paths, catalog, model.id, "")
    assert source.exists()  # removing a link never deletes the user's file


def test_import_of_a_corrupt_copy_is_refused(paths: Paths, model_path: Path,
                                             tmp_path: Path) -> None:
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(model_path.read_bytes()[: 3_000_000])
    with pytest.raises(ModelLoadError, match=r"cut.gguf is damaged or truncated"):
        import_model(paths, load_catalog(paths), bad)
    assert not (paths.data_dir / "models").exists() or not list(
        (paths.data_dir / "models").glob("*.gguf"))


def test_import_of_a_file_that_is_not_gguf(paths: Paths, tmp_path: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_text("these are my notes, not a model")
    with pytest.raises(ModelLoadError, match=r"notes.gguf is not a GGUF model file"):
        import_model(paths, load_catalog(paths), bad)


def test_import_of_an_architecture_llama_cpp_cannot_load(paths: Paths, tmp_path: Path) -> None:
    path = _gguf_of_unknown_architecture(tmp_path / "odd.gguf")
    info = inspect_gguf(path)
    assert info.architecture == "hearthtest"
    # and a model without a chat template gets a warning, not silent garbage
    assert not info.chat_template and "has no chat template" in info.warnings[0]
    with pytest.raises(ModelLoadError, match=r"architecture 'hearthtest', which this llama.cpp "
                                             "build cannot load") as exc:
        import_model(paths, load_catalog(paths), path)
    assert exc.value.reason == "unsupported_architecture"


def test_bundled_and_in_use_models_cannot_be_removed(paths: Paths, model_path: Path,
                                                     tmp_path: Path) -> None:
    catalog = load_catalog(paths)
    with pytest.raises(LibraryError, match="comes with Hearth"):
        remove(paths, catalog, "smollm2-135m", "")
    source = tmp_path / "inuse.gguf"
    shutil.copyfile(model_path, source)
    model = import_model(paths, catalog, source)
    with pytest.raises(LibraryError, match="is the model in use"):
        remove(paths, catalog, model.id, str(model.path))
    with pytest.raises(LibraryError, match="not downloaded yet; `hearth models pull qwen3-4b`"):
        find_installed(paths, catalog, "qwen3-4b")


def test_best_fitting_suggestion_is_the_largest_that_fits(paths: Paths) -> None:
    catalog = load_catalog(paths)
    settings = Settings.load(paths)
    gib = 1024**3
    small = best_fitting(overview(paths, catalog, settings, gpus=[], ram_free=3 * gib))
    big = best_fitting(overview(paths, catalog, settings, gpus=[], ram_free=32 * gib))
    assert small is not None and big is not None
    assert small.entry and big.entry and small.entry.parameters < big.entry.parameters
    assert big.fit.verdict == "fits" and small.fit.ram_needed <= 0.75 * 3 * gib
    assert best_fitting(overview(paths, catalog, settings, gpus=[], ram_free=100)) is None


def _ask(assistant: Assistant) -> str:
    provider = assistant.local_provider()
    request = ChatRequest(messages=(ChatMessage("user", "Say hello"),), max_tokens=4,
                          temperature=0.0)
    return "".join(i.text for i in provider.stream(request, CancelToken())
                   if isinstance(i, TextDelta))


@pytest.mark.slow
def test_switching_to_a_model_that_fails_keeps_the_old_one_working(
        paths: Paths, settings: Settings, model_path: Path, tmp_path: Path) -> None:
    assistant = Assistant(settings, paths)
    try:
        before = assistant.local_provider()
        before.load()
        broken = tmp_path / "broken.gguf"
        broken.write_bytes(model_path.read_bytes()[:4_000_000])
        with pytest.raises(ModelLoadError):
            assistant.switch_model(str(broken))
        assert settings.snapshot().model.path == ""
        assert assistant.local_provider() is before  # still loaded, still the one
        assert _ask(assistant).strip()
        # a working model switches, and the setting follows
        good = tmp_path / "good.gguf"
        shutil.copyfile(model_path, good)
        loaded = assistant.switch_model(str(good))
        assert loaded.path == good and settings.snapshot().model.path == str(good)
        assert Settings.load(paths).snapshot().model.path == str(good)
        assert assistant.local_provider().loaded is not None
        assert assistant.local_provider() is not before
        assert current(paths, load_catalog(paths), str(good)) is None  # not in the library
        assert _ask(assistant).strip()
    finally:
        assistant.close()


@pytest.mark.slow
def test_switch_that_had_to_unload_first_restores_the_old_model(
        paths: Paths, settings: Settings, model_path: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """When both models cannot be in memory together the old one is unloaded
    first; if the new one then fails, the old one comes back."""
    monkeypatch.setattr("app.core.assistant._fits_beside", lambda *_a: False)
    assistant = Assistant(settings, paths)
    try:
        assistant.local_provider().load()
        broken = tmp_path / "broken.gguf"
        broken.write_bytes(b"GGUF" + b"\0" * 100)
        with pytest.raises(ModelLoadError):
            assistant.switch_model(str(broken))
        assert assistant.local_config().path == model_path
        assert _ask(assistant).strip()
    finally:
        assistant.close()
