"""Offline mode, enforced in one place: while it is on, this process refuses
every network connection that would leave the machine. It is on while the
offline setting is (`enable`/`disable`) or while a local-only question runs
(`hold`).

Loopback and Unix sockets stay allowed (they never leave the machine); every
other address raises `OfflineError` before a packet is sent.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.core.errors import HearthError


class OfflineError(HearthError, OSError):
    reason = "offline"


_lock = threading.RLock()
_persistent = False  # offline mode switched on for the whole session
_holds = 0  # questions that must stay on this machine, in flight now
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
    """Offline mode on: refuse outbound connections until `disable()`."""
    global _persistent
    with _lock:
        _persistent = True
        _apply()


def disable() -> None:
    """Offline mode off (connections held off by a `hold()` stay refused)."""
    global _persistent
    with _lock:
        _persistent = False
        _apply()


@contextmanager
def hold() -> Iterator[None]:
    """Refuse outbound connections while this block runs (one local-only
    question), whatever else happens meanwhile, then restore the setting."""
    global _holds
    with _lock:
        _holds += 1
        _apply()
    try:
        yield
    finally:
        with _lock:
            _holds -= 1
            _apply()


def _apply() -> None:
    if _persistent or _holds > 0:
        _patch()
    else:
        _unpatch()


def _patch() -> None:
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


def _unpatch() -> None:
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
