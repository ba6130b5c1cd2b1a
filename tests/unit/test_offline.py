from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from app.core import offline


@pytest.fixture
def offline_on() -> Iterator[None]:
    offline.enable()
    yield
    offline.disable()


def test_outbound_connections_are_refused(offline_on: None) -> None:
    with pytest.raises(offline.OfflineError, match="offline"):
        socket.create_connection(("192.0.2.10", 443), timeout=1)
    with socket.socket() as s, pytest.raises(offline.OfflineError):
        s.connect(("8.8.8.8", 53))
    with pytest.raises(offline.OfflineError):
        socket.getaddrinfo("example.com", 443)


def test_loopback_still_works(offline_on: None) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = threading.Thread(target=lambda: server.accept()[0].close())
    accepted.start()
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    accepted.join(5)
    server.close()


def test_disable_restores_the_network_stack() -> None:
    original = socket.socket.connect
    offline.enable()
    assert offline.is_enabled() and socket.socket.connect is not original
    offline.disable()
    assert not offline.is_enabled() and socket.socket.connect is original


def test_holds_nest_with_the_setting() -> None:
    with offline.hold():
        assert offline.is_enabled()
        offline.enable()
        offline.disable()  # the setting going off does not drop a hold
        assert offline.is_enabled()
        with offline.hold():
            assert offline.is_enabled()
        assert offline.is_enabled()
    assert not offline.is_enabled()
    offline.enable()
    with offline.hold():
        pass
    assert offline.is_enabled()  # a hold ending does not drop the setting
    offline.disable()
    assert not offline.is_enabled()
