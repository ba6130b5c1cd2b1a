"""Offline mode, enforced in one place: once switched on, this process
refuses every network connection that would leave the machine.

Loopback and Unix sockets stay allowed (they never leave the machine); every
other address raises `OfflineError` before a packet is sent.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import Any

from app.core.errors import HearthError


class OfflineError(HearthError, OSError):
    reason = "offline"


_lock = threading.Lock()
_original_connect: Any = None
_original_connect_ex: Any = None
_original_getaddrinfo: Any = None


def _is_local(host: Any) -> bool:
    if not isinstance(host, str):
        return False
    if host in ("localhost", "localhost.localdomain", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        raise OfflineError(
            f"Hearth is offline, so the connection to {address[0]} was refused; "
            "turn offline mode off to use the network."
        )


def enable() -> None:
    """Refuse outbound connections from now on (idempotent)."""
    global _original_connect, _original_connect_ex, _original_getaddrinfo
    with _lock:
        if _original_connect is not None:
            return
        _original_connect = socket.socket.connect
        _original_connect_ex = socket.socket.connect_ex
        _original_getaddrinfo = socket.getaddrinfo

        def connect(self: socket.socket, address: Any) -> None:
            _check(self, address)
            return _original_connect(self, address)

        def connect_ex(self: socket.socket, address: Any) -> int:
            _check(self, address)
            return _original_connect_ex(self, address)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host is not None and not _is_local(
                host.decode() if isinstance(host, bytes) else host
            ):
                raise OfflineError(
                    f"Hearth is offline, so {host} was not looked up; "
                    "turn offline mode off to use the network."
                )
            return _original_getaddrinfo(host, *args, **kwargs)

        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
        socket.getaddrinfo = getaddrinfo


def disable() -> None:
    global _original_connect, _original_connect_ex, _original_getaddrinfo
    with _lock:
        if _original_connect is None:
            return
        socket.socket.connect = _original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = _original_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = _original_getaddrinfo
        _original_connect = _original_connect_ex = _original_getaddrinfo = None


def is_enabled() -> bool:
    return _original_connect is not None
