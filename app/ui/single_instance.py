"""One Hearth per user and HEARTH_HOME: the first instance listens on a local
socket (QLocalServer); a later launch hands its request to it (QLocalSocket)
and exits. Requests are one JSON object per line, answered with "ok".

Requests: {"action": "show"}, {"action": "quick-ask"},
{"action": "ask", "question": "..."}.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from app.paths import Paths, get_paths

log = logging.getLogger(__name__)

ACTIONS = ("show", "quick-ask", "ask")
DELIVERED, NO_INSTANCE, NO_ANSWER = "delivered", "no-instance", "no-answer"


def server_name(paths: Paths | None = None) -> str:
    """Derived from the user and the config folder, so each HEARTH_HOME (each
    test) gets its own instance."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    key = f"{user}\0{(paths or get_paths()).config_dir}"
    return "hearth-" + hashlib.sha256(key.encode()).hexdigest()[:20]


def hand_off(request: dict[str, Any], name: str | None = None,
             timeout_ms: int = 3000) -> str:
    """Give `request` to the running instance: DELIVERED, NO_INSTANCE, or
    NO_ANSWER (something listens but did not confirm)."""
    sock = QLocalSocket()
    sock.connectToServer(name or server_name())
    if not sock.waitForConnected(300):
        return NO_INSTANCE
    sock.write(json.dumps(request).encode() + b"\n")
    sock.flush()
    reply = b""
    while b"\n" not in reply and sock.waitForReadyRead(timeout_ms):
        reply += bytes(sock.readAll().data())
    sock.disconnectFromServer()
    return DELIVERED if reply.strip() == b"ok" else NO_ANSWER


class InstanceServer(QObject):
    """Listens for requests from later launches; emits each valid one."""

    request_received = Signal(dict)

    def __init__(self, name: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name or server_name()
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._on_connection)
        self._buffers: dict[QLocalSocket, bytes] = {}

    def listen(self) -> bool:
        if self.server.listen(self.name):
            return True
        # A socket file left by an instance that crashed: nobody answered the
        # hand-off before we got here, so it is stale.
        QLocalServer.removeServer(self.name)
        ok = self.server.listen(self.name)
        if not ok:
            log.warning("single-instance socket unavailable: %s", self.server.errorString())
        return ok

    def close(self) -> None:
        sockets, self._buffers = list(self._buffers), {}
        for sock in sockets:
            sock.readyRead.disconnect()
            sock.disconnected.disconnect()
            sock.abort()
            sock.deleteLater()
        self.server.close()

    def _on_connection(self) -> None:
        while self.server.hasPendingConnections():
            sock = self.server.nextPendingConnection()
            self._buffers[sock] = b""
            sock.readyRead.connect(lambda s=sock: self._on_ready(s))
            sock.disconnected.connect(lambda s=sock: self._forget(s))
            if sock.bytesAvailable():
                self._on_ready(sock)

    def _forget(self, sock: QLocalSocket) -> None:
        if self._buffers.pop(sock, None) is not None:
            sock.deleteLater()

    def _on_ready(self, sock: QLocalSocket) -> None:
        data = self._buffers.get(sock, b"") + bytes(sock.readAll().data())
        if len(data) > 1_000_000:  # nobody legitimate sends this much
            self._forget(sock)
            return
        *lines, rest = data.split(b"\n")
        self._buffers[sock] = rest
        for line in lines:
            request = _parse(line)
            sock.write(b"ok\n" if request else b"error\n")
            sock.flush()
            if request:
                self.request_received.emit(request)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        request = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(request, dict) or request.get("action") not in ACTIONS:
        return None
    if request["action"] == "ask" and not isinstance(request.get("question"), str):
        return None
    return request
