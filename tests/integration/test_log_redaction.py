"""Secrets never reach a file: a 127.0.0.1 server echoes the API key back in
response headers, JSON error bodies and SSE error events, Hearth logs at
DEBUG level, and then every file under HEARTH_HOME is searched for the key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fault_server import FaultServer
from tests.helpers import run_hearth

pytestmark = pytest.mark.slow

# One key shaped like a real one, one shaped like nothing at all: the second
# is caught only because Hearth remembers the keys it holds.
KEYS = {"openai": "sk-proj-Qe7tVw2Lx9Rb4Nk8Mz3Pa6Hc1Jd5Fg0Sy2Ut7Wo4",
        "anthropic": "plainsecretvaluewithoutshape"}


@pytest.fixture
def server() -> Iterator[FaultServer]:
    s = FaultServer()
    yield s
    s.close()


def test_an_echoed_key_never_lands_in_any_file(server: FaultServer, hearth_home: Path) -> None:
    env = {"HEARTH_LOG_LEVEL": "DEBUG", "HEARTH_ECHO_API_KEY": KEYS["openai"],
           "HEARTH_CLAUDE_API_KEY": KEYS["anthropic"]}
    for args in (["echo", "--kind", "openai", "--base-url", server.openai_url],
                 ["claude", "--kind", "anthropic", "--base-url", server.anthropic_url]):
        assert run_hearth("providers", "add", *args, "--model", "m", env=env).returncode == 0
    run_hearth("config", "set", "routing.retries", "0", env=env)
    outputs = []
    for fault, provider in [("echo_401", "echo"), ("echo_500", "echo"), ("echo_sse", "echo"),
                            ("echo_401", "claude"), ("echo_sse", "claude")]:
        server.queue(fault)
        r = run_hearth("ask", "Hello?", "--route", provider, "--no-files", "--json", env=env)
        assert r.returncode == 1, r.stdout + r.stderr
        outputs.append(r.stdout + r.stderr)
    server.queue("echo_401")
    test = run_hearth("providers", "test", "echo", env=env)
    outputs.append(test.stdout + test.stderr)
    # The server really had the keys and echoed them.
    seen = " ".join(v for req in server.requests for v in req["headers"].values())
    assert KEYS["openai"] in seen and KEYS["anthropic"] in seen
    files = [p for p in hearth_home.rglob("*") if p.is_file()]
    assert any(p.name == "hearth.log" for p in files)
    for path in files:
        data = path.read_bytes()
        for key in KEYS.values():
            assert key.encode() not in data, f"the key is in {path}"
    for out in outputs:
        for key in KEYS.values():
            assert key not in out
    log = next(p for p in files if p.name == "hearth.log").read_text()
    assert "[REDACTED" in log  # the echoed text was logged, redacted
