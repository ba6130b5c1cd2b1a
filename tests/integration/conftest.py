"""Loopback fault servers for the integration tests: `faulty` and `good` for
a failing provider and the one after it, `remote` where one is enough."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fault_server import FaultServer


def _server() -> Iterator[FaultServer]:
    server = FaultServer()
    yield server
    server.close()


faulty = pytest.fixture(_server, name="faulty")
good = pytest.fixture(_server, name="good")
remote = pytest.fixture(_server, name="remote")
