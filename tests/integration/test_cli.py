"""The real `hearth` command in a subprocess, each with its own HEARTH_HOME."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import run_hearth

pytestmark = pytest.mark.slow


def test_ask_json_has_every_field() -> None:
    r = run_hearth("ask", "Say hi.", "--json", "--max-tokens", "16", "--offline")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    for key in ("answer", "model", "provider", "conversation_id", "timings", "route"):
        assert key in data
    for key in ("ttft_s", "tokens_per_s", "prompt_tokens", "completion_tokens"):
        assert key in data["timings"]
    assert data["provider"] == "local" and data["answer"]
    assert data["timings"]["completion_tokens"] > 0 and data["timings"]["ttft_s"] > 0
    from app.core.prompts import load_prompt

    assert data["prompt"] == load_prompt().ref and data["local_only"] is False


def test_ask_with_a_versioned_prompt_and_an_unknown_one() -> None:
    r = run_hearth("ask", "Say hi.", "--json", "--max-tokens", "4", "--offline",
                   "--prompt", "hearth-answer@1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["prompt"] == "hearth-answer@1"
    bad = run_hearth("ask", "Say hi.", "--max-tokens", "4", "--offline", "--prompt", "nope@3")
    assert bad.returncode == 1
    assert "There is no prompt 'nope@3'; available: hearth-answer@1, hearth-answer@2" in (
        bad.stderr)


def test_ask_streams_text_and_a_summary_line_then_continues() -> None:
    r = run_hearth("ask", "Say hi.", "--max-tokens", "12")
    assert r.returncode == 0 and r.stdout.strip()
    assert "answered by local/SmolLM2" in r.stderr
    conv = r.stderr.split("conversation ")[1].split()[0]
    r2 = run_hearth("ask", "And again.", "--max-tokens", "8", "--conversation", conv, "--json")
    assert r2.returncode == 0, r2.stderr
    assert json.loads(r2.stdout)["conversation_id"].startswith(conv)
    listed = run_hearth("conversations", "--json")
    assert [c["id"][:8] for c in json.loads(listed.stdout)] == [conv]


def test_question_from_stdin() -> None:
    r = run_hearth("ask", "--json", "--max-tokens", "8", input="What is 2+2?")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["answer"]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d / "missing.gguf", "does not exist"),
        (lambda d: d, "is a folder, not a GGUF file"),
        (lambda d: (d / "junk.gguf").write_bytes(os.urandom(1000)) and d / "junk.gguf",
         "is not a GGUF model file"),
    ],
)
def test_bad_model_is_one_sentence_and_exit_1(tmp_path: Path, make, expected: str) -> None:
    model = make(tmp_path)
    r = run_hearth("ask", "hello", "--model", str(model))
    assert r.returncode == 1
    assert expected in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_truncated_model_no_traceback(tmp_path: Path, model_path: Path) -> None:
    bad = tmp_path / "half.gguf"
    with model_path.open("rb") as src:
        bad.write_bytes(src.read(40_000_000))
    r = run_hearth("ask", "hello", "--model", str(bad))
    assert r.returncode == 1 and "could not be" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("question", ["", "  \n\t"])
def test_empty_question_is_a_usage_error(question: str) -> None:
    r = run_hearth("ask", question)
    assert r.returncode == 2
    assert r.stderr == ('hearth: the question is empty; give one, e.g. hearth ask "What is in '
                        'my notes?"\n')


def test_config_set_model_path_refuses_a_missing_or_wrong_file(
        tmp_path: Path, model_path: Path) -> None:
    missing = tmp_path / "gone.gguf"
    r = run_hearth("config", "set", "model.path", str(missing))
    assert r.returncode == 1
    assert r.stderr == (f"hearth: model.path was not changed: the model file {missing} does "
                        "not exist.\n")
    text = tmp_path / "notes.gguf"
    text.write_text("just some notes")
    r = run_hearth("config", "set", "model.path", str(text))
    assert r.returncode == 1 and r.stderr == (
        "hearth: model.path was not changed: notes.gguf is not a GGUF model file (llama.cpp "
        "models end in .gguf).\n")
    header_only = tmp_path / "header.gguf"
    header_only.write_bytes(model_path.read_bytes()[:64])
    r = run_hearth("config", "set", "model.path", str(header_only))
    assert r.returncode == 1 and "could not be read; it may be corrupt or truncated" in r.stderr
    assert run_hearth("config", "get", "model.path").stdout.strip() == ""
    ok = run_hearth("config", "set", "model.path", str(model_path))
    assert ok.returncode == 0, ok.stderr
    assert run_hearth("config", "get", "model.path").stdout.strip() == str(model_path)
    assert run_hearth("config", "set", "model.path", "").returncode == 0  # back to bundled


def test_config_set_get_list_and_refusal() -> None:
    assert run_hearth("config", "set", "model.context_size", "2048").returncode == 0
    assert run_hearth("config", "get", "model.context_size").stdout.strip() == "2048"
    listed = json.loads(run_hearth("config", "list", "--json").stdout)
    assert listed["model.context_size"] == 2048
    bad = run_hearth("config", "set", "generation.temperature", "9")
    assert bad.returncode == 1
    assert "generation.temperature must be a number from 0 to 2" in bad.stderr
    unknown = run_hearth("config", "get", "nope.nope")
    assert unknown.returncode == 1 and "There is no setting called" in unknown.stderr


def test_broken_settings_file_warns_and_still_answers(hearth_home: Path) -> None:
    cfg = hearth_home / "config"
    cfg.mkdir(parents=True)
    (cfg / "settings.toml").write_text("this is = = not toml")
    r = run_hearth("ask", "hi", "--max-tokens", "4", "--json")
    assert r.returncode == 0
    assert "not valid TOML" in r.stderr and "using default settings" in r.stderr
    assert (cfg / "settings.toml").read_text() == "this is = = not toml"


def test_unwritable_data_dir_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_hearth("ask", "hi", env={"HEARTH_HOME": str(blocker / "home")})
    assert r.returncode == 1
    assert "Hearth cannot create its folder" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_doctor_reports_build_model_dirs_and_keyring() -> None:
    r = run_hearth("doctor", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(r.stdout)
    assert data["llama_cpp"]["installed"] and data["llama_cpp"]["backend"] == "CPU"
    assert data["llama_cpp"]["gpu_offload"] is False
    assert {"AVX2", "SSE3"} <= set(data["llama_cpp"]["cpu_features"])
    assert data["model"]["loads"] and data["model"]["bundled"]
    assert data["dirs"]["data_dir"]["path"].startswith(data["dirs"]["HEARTH_HOME"])
    assert data["keyring"]["name"]
    human = run_hearth("doctor", "--no-load")
    assert human.returncode == 0 and "backend CPU" in human.stdout


def test_no_display_points_at_hearth_ask() -> None:
    env = {"DISPLAY": "", "WAYLAND_DISPLAY": ""}
    r = run_hearth(env=env)
    assert r.returncode == 3
    assert "no display" in r.stderr and "hearth ask" in r.stderr


def test_usage_errors_exit_2() -> None:
    assert run_hearth("frobnicate").returncode == 2
    assert run_hearth("ask", "x", "--max-tokens", "0").returncode == 2
