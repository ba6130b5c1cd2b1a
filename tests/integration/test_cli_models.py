"""`hearth models …` end to end: the real CLI in a subprocess, a user catalog
entry pointing at a loopback server that serves the bundled GGUF."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.paths import Paths
from app.settings import Settings
from tests.helpers import run_hearth
from tests.model_server import ModelServer, write_catalog_copy


@pytest.fixture
def served(paths: Paths, model_path: Path) -> Iterator[ModelServer]:
    server = ModelServer(model_path)
    write_catalog_copy(paths.config_dir, model_path, server.url, "Smol copy", "tests")
    yield server
    server.close()


def test_list_json_has_installed_and_available_models_with_fit(served: ModelServer) -> None:
    out = run_hearth("models", "list", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["id"]: r for r in json.loads(out.stdout)}
    assert rows["smollm2-135m"]["current"] and rows["smollm2-135m"]["installed"]
    assert rows["qwen3-4b"]["state"] == "available"
    assert rows["qwen3-4b"]["size_bytes"] == 2497280640
    assert rows["qwen3-4b"]["fit"]["verdict"] in ("fits", "tight", "won't fit")
    assert rows["qwen3-4b"]["fit"]["needed_bytes"] > rows["qwen3-4b"]["size_bytes"]
    assert rows["mistral-7b"]["sha256"] == "unknown"
    assert rows["smol-copy"]["state"] == "available"


def test_pull_use_info_remove(served: ModelServer, paths: Paths, model_path: Path) -> None:
    out = run_hearth("models", "pull", "smol-copy")
    assert out.returncode == 0, out.stderr
    assert "sha256 verified" in out.stdout and "Fit: fits" in out.stdout
    target = paths.data_dir / "models" / "smol-copy.gguf"
    assert target.read_bytes() == model_path.read_bytes()
    again = run_hearth("models", "pull", "smol-copy")
    assert again.returncode == 0 and len(served.requests) == 1  # already there
    use = run_hearth("models", "use", "smol-copy")
    assert use.returncode == 0, use.stderr
    assert "now answers with Smol copy" in use.stdout
    assert Settings.load(paths).snapshot().model.path == str(target)
    info = json.loads(run_hearth("models", "info", "smol-copy", "--json").stdout)
    assert info["current"] and info["gguf"]["architecture"] == "llama"
    refused = run_hearth("models", "remove", "smol-copy")
    assert refused.returncode == 1 and "is the model in use" in refused.stderr
    assert run_hearth("models", "use", "smollm2-135m").returncode == 0
    assert Settings.load(paths).snapshot().model.path == ""
    removed = run_hearth("models", "remove", "smol-copy")
    assert removed.returncode == 0, removed.stderr
    assert not target.exists()


def test_pull_that_fails_says_one_sentence(served: ModelServer, paths: Paths) -> None:
    served.mode = "html"
    out = run_hearth("models", "pull", "smol-copy")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith("hearth: 127.0.0.1 sent a web page")
    assert "Traceback" not in out.stderr


def test_pull_in_offline_mode_is_refused(served: ModelServer, paths: Paths) -> None:
    assert run_hearth("config", "set", "network.offline", "true").returncode == 0
    out = run_hearth("models", "pull", "smol-copy")
    assert out.returncode == 1 and "offline mode" in out.stderr
    assert served.requests == []


def test_import_and_use_a_local_file(paths: Paths, model_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "Local.gguf"
    shutil.copyfile(model_path, source)
    out = run_hearth("models", "import", str(source), "--link")
    assert out.returncode == 0, out.stderr
    assert "Imported" in out.stdout and "linked" in out.stdout
    assert "architecture llama, Q4_1, context 8192, chat template yes" in out.stdout
    assert run_hearth("models", "use", "local").returncode == 0
    assert Settings.load(paths).snapshot().model.path == str(source)
    bad = tmp_path / "bad.gguf"
    bad.write_text("hello")
    out = run_hearth("models", "import", str(bad))
    assert out.returncode == 1 and "bad.gguf is not a GGUF model file" in out.stderr


def test_use_refuses_a_model_that_will_not_fit_unless_forced(
        paths: Paths, model_path: Path, tmp_path: Path) -> None:
    import psutil

    source = tmp_path / "huge.gguf"
    shutil.copyfile(model_path, source)
    with source.open("r+b") as fh:  # sparse: twice this machine's memory, no disk used
        fh.truncate(2 * psutil.virtual_memory().total)
    assert run_hearth("models", "import", str(source), "--link").returncode == 0
    out = run_hearth("models", "use", "huge")
    assert out.returncode == 1, out.stdout
    assert "will not fit" in out.stderr and "--force" in out.stderr
    assert Settings.load(paths).snapshot().model.path == ""
    forced = run_hearth("models", "use", "huge", "--force")
    assert forced.returncode == 0, forced.stderr
    settings = Settings.load(paths)
    model = settings.snapshot().model
    assert model.path == str(source) and model.ignore_fit is True
