"""The shipped catalog is valid and real; user catalogs merge over it; a bad
entry is named with its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.models.catalog import CATALOG_FILE, CatalogError, load_catalog
from app.paths import Paths


def test_shipped_catalog_loads_with_about_eight_real_models() -> None:
    catalog = load_catalog()
    models = [e for e in catalog if not e.bundled]
    assert 8 <= len(models) <= 14
    params = sorted(e.parameters for e in models)
    assert params[0] <= 0.5 and 7.0 <= params[-1] <= 8.5
    for e in models:
        assert e.urls and all(u.startswith("https://") for u in e.urls)
        assert e.size_bytes > 100_000_000
        assert e.layers and e.heads and e.kv_heads and e.head_dim
    # every checksum is either a real sha256 or honestly unknown (never invented)
    assert sum(e.sha256 is None for e in models) <= 2
    families = {e.family.split()[0] for e in models}
    assert {"Qwen2.5", "Qwen3", "Llama", "Gemma", "Phi-4", "Mistral"} <= families


def test_bundled_model_is_an_entry_matching_the_installed_file(model_path: Path) -> None:
    bundled = load_catalog().bundled()
    assert bundled is not None and bundled.file == model_path.name
    assert bundled.size_bytes == model_path.stat().st_size
    import hashlib

    assert bundled.sha256 == hashlib.sha256(model_path.read_bytes()).hexdigest()


def test_user_catalog_is_merged_over_the_shipped_one(paths: Paths) -> None:
    paths.config_dir.mkdir(parents=True)
    (paths.config_dir / "catalog.toml").write_text('''
[models."qwen3-4b"]
urls = ["https://mirror.example/Qwen3-4B-Q4_K_M.gguf"]

[models.my-model]
name = "My model"
family = "Mine"
parameters = 1.0
quantization = "Q8_0"
file = "mine.gguf"
urls = ["https://example.org/mine.gguf"]
sha256 = "unknown"
size_bytes = 1000000
context_length = 4096
license = "MIT"
good_for = "testing"
''')
    catalog = load_catalog(paths)
    assert catalog.get("qwen3-4b").urls == ("https://mirror.example/Qwen3-4B-Q4_K_M.gguf",)
    assert catalog.get("qwen3-4b").sha256 is not None  # other fields kept
    mine = catalog.get("my-model")
    assert mine.sha256 is None and mine.name == "My model"
    assert catalog.warnings == []


def test_user_entry_with_a_missing_field_is_named_and_left_out(paths: Paths) -> None:
    paths.config_dir.mkdir(parents=True)
    (paths.config_dir / "catalog.toml").write_text('''
[models.broken]
name = "Broken"
file = "broken.gguf"
''')
    catalog = load_catalog(paths)
    assert "broken" not in catalog.entries
    assert len(catalog.warnings) == 1
    assert "model 'broken' has no 'family' field" in catalog.warnings[0]
    assert len(catalog) == len(load_catalog())


def test_shipped_catalog_with_a_missing_field_raises_naming_it(tmp_path: Path) -> None:
    text = CATALOG_FILE.read_text().replace('license = "MIT"\n', "", 1)
    bad = tmp_path / "catalog.toml"
    bad.write_text(text)
    with pytest.raises(CatalogError, match=r"model 'phi4-mini' has no 'license' field"):
        load_catalog(shipped=bad)


@pytest.mark.parametrize(("line", "message"), [
    ('sha256 = "abc"', "64 hex digits"),
    ("size_bytes = \"big\"", "'size_bytes' has the wrong type"),
    ('file = "../evil.gguf"', "plain file name"),
    ("urls = []", "no download address"),
    ("colour = 3", "unknown field 'colour'"),
])
def test_bad_fields_are_named(paths: Paths, line: str, message: str) -> None:
    paths.config_dir.mkdir(parents=True)
    (paths.config_dir / "catalog.toml").write_text(f'[models."qwen3-4b"]\n{line}\n')
    catalog = load_catalog(paths)
    assert len(catalog.warnings) == 1 and message in catalog.warnings[0]
    assert "'qwen3-4b'" in catalog.warnings[0]


def test_user_catalog_that_is_not_toml_is_reported(paths: Paths) -> None:
    paths.config_dir.mkdir(parents=True)
    (paths.config_dir / "catalog.toml").write_text("[models\n")
    catalog = load_catalog(paths)
    assert "is not valid TOML" in catalog.warnings[0]
    assert len(catalog) == len(load_catalog())


def test_unknown_id_is_one_sentence() -> None:
    with pytest.raises(CatalogError, match="no model 'nope' in the catalog"):
        load_catalog().get("nope")
