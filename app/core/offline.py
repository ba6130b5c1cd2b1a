"""The network policy, enforced in one place.

Each request carries its own policy: code that answers one question runs
inside `policy(allow_network=...)`, and every caller that may use the
network asks `network_allowed()` first or calls `require_network()` (the
router, the provider test, downloads). A process-wide backstop makes the
policy hold even for code that forgets to ask: while any request forbids the
network, or while offline mode is on (`enable()`, from the `network.offline`
setting at start-up and whenever it changes), socket connections and name
look-ups that would leave the machine are refused with `OfflineError`, but
only for the requests that forbid them: the policy lives in a context
variable, so one question held offline never changes another question's
answer running at the same time on another thread.

Loopback and Unix sockets stay allowed (they never leave the machine).
A streaming request runs through `iterate()`, which steps it inside its own
context; threads started for a request must run in a copy of its context
(`start_thread` here) to inherit it.
"""

from __future__ import annotations

import contextvars
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from app.core.errors import HearthError

T = TypeVar("T")


class OfflineError(HearthError, OSError):
    reason = "offline"


_lock = threading.RLock()
_persistent = False  # offline mode switched on for the whole process
_holds = 0  # requests in flight that forbid the network
# This request's policy: True (may use the network), False (must not).
_allowed: contextvars.ContextVar[bool] = contextvars.ContextVar("hearth_network_allowed",
                                                                default=True)
_original_connect: Any = None
_original_connect_ex: Any = None
_original_getaddrinfo: Any = None


def network_allowed() -> bool:
    """Whether the code running now may use the network: offline mode is off
    and the request it serves allows it."""
    return not _persistent and _allowed.get()


def require_network(what: str) -> None:
    """Raise OfflineError (one sentence naming `what`) unless the network may be used."""
    if not network_allowed():
        raise OfflineError(
            f"Hearth is offline, so {what} was not done; turn offline mode off "
            "(network.offline, or leave out --offline) to use the network.")


def is_enabled() -> bool:
    """Offline for the code running now (the same as `not network_allowed()`)."""
    return not network_allowed()


def is_persistent() -> bool:
    """Offline mode is on for the whole process."""
    return _persistent


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
    if (not network_allowed() and sock.family in (socket.AF_INET, socket.AF_INET6)
            and not _is_local(address[0])):
        raise OfflineError(
            f"Hearth is offline, so the connection to {address[0]} was refused; "
            "turn offline mode off to use the network."
        )


def enable() -> None:
    """Offline mode on for the whole process until `disable()`."""
    global _persistent
    with _lock:
        _persistent = True
        _apply()


def disable() -> None:
    """Offline mode off (requests that forbid the network still may not use it)."""
    global _persistent
    with _lock:
        _persistent = False
        _apply()


@contextmanager
def policy(allow_network: bool) -> Iterator[None]:
    """Run a block (one request) under its own network policy: with
    `allow_network=False` nothing it does reaches the network, and nothing
    else in the process is affected."""
    global _holds
    token = _allowed.set(allow_network and _allowed.get())
    if not allow_network:
        with _lock:
            _holds += 1
            _apply()
    try:
        yield
    finally:
        _allowed.reset(token)
        if not allow_network:
            with _lock:
                _holds -= 1
                _apply()


def iterate(items: Iterator[T], allow_network: bool) -> Iterator[T]:
    """Run a generator (one request that streams) under its own policy. Each
    step runs in the request's own context, so the policy never leaks into
    the code consuming the stream, even between steps or when the consumer
    drops the stream half-way."""
    global _holds
    context = contextvars.copy_context()
    context.run(_allowed.set, allow_network and _allowed.get())
    if not allow_network:
        with _lock:
            _holds += 1
            _apply()
    try:
        while True:
            try:
                item = context.run(next, items)
            except StopIteration:
                return
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            context.run(close)
        if not allow_network:
            with _lock:
                _holds -= 1
                _apply()


def hold() -> Any:
    """The block runs with the network forbidden (`policy(False)`)."""
    return policy(False)


def start_thread(target: Callable[[], object], name: str) -> threading.Thread:
    """A daemon thread that runs `target` under the current request's policy."""
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(target,), name=name, daemon=True)
    thread.start()
    return thread


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
        real_connect = _original_connect = socket.socket.connect
        real_connect_ex = _original_connect_ex = socket.socket.connect_ex
        real_getaddrinfo = _original_getaddrinfo = socket.getaddrinfo

        def connect(self: socket.socket, address: Any) -> None:
            _check(self, address)
            real_connect(self, address)

        def connect_ex(self: socket.socket, address: Any) -> int:
            _check(self, address)
            return real_connect_ex(self, address)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host is not None and not network_allowed() and not _is_local(
                host.decode() if isinstance(host, bytes) else host
            ):
                raise OfflineError(
                    f"Hearth is offline, so {host} was not looked up; "
                    "turn offline mode off to use the network."
                )
            return real_getaddrinfo(host, *args, **kwargs)

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


def backstop_installed() -> bool:
    """Whether socket connections are being checked now (for tests)."""
    return _original_connect is not None
