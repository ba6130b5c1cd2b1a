"""A loopback HTTP server that serves one file the way model mirrors do, and
misbehaves on request.

Modes (per server, or queued per request with `queue()`):
  range         honours Range requests (206), the normal case
  ignore-range  always answers 200 with the whole file
  cut:N         sends N bytes of the body, then drops the connection
  slow          sends the body in small pieces with pauses (for pause/cancel)
  wrong-length  announces a Content-Length larger than the file
  html          answers 200 with an HTML error page
  404 / 403 / 500 / 503   answers with that status
Every request is recorded (path, Range header, mode).
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HTML = b"<!doctype html><html><body><h1>Sign in to continue</h1></body></html>"


class ModelServer:
    def __init__(self, path: Path, mode: str = "range", slow_delay: float = 0.02) -> None:
        self.path = path
        self.data = path.read_bytes()
        self.mode = mode
        self.slow_delay = slow_delay
        self.queued: collections.deque[str] = collections.deque()
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server._lock:
                    mode = server.queued.popleft() if server.queued else server.mode
                    server.requests.append({"path": self.path, "mode": mode,
                                            "range": self.headers.get("Range")})
                self.close_connection = True
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    server._serve(self, mode)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="model-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/models/{self.path.name}"

    def queue(self, *modes: str) -> None:
        with self._lock:
            self.queued.extend(modes)

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _serve(self, h: BaseHTTPRequestHandler, mode: str) -> None:
        data = self.data
        if mode.isdigit():
            h.send_response(int(mode))
            h.send_header("Content-Type", "text/plain")
            h.send_header("Content-Length", "9")
            h.end_headers()
            h.wfile.write(b"not here\n")
            return
        if mode == "html":
            h.send_response(200)
            h.send_header("Content-Type", "text/html; charset=utf-8")
            h.send_header("Content-Length", str(len(HTML)))
            h.end_headers()
            h.wfile.write(HTML)
            return
        start = 0
        wanted = h.headers.get("Range")
        if wanted and mode not in ("ignore-range",):
            spec = wanted.removeprefix("bytes=").split("-", 1)[0]
            start = int(spec) if spec.isdigit() else 0
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
        body = memoryview(data)[start:]
        h.send_response(206 if start else 200)
        h.send_header("Content-Type", "application/octet-stream")
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        announced = len(body) + (4096 if mode == "wrong-length" else 0)
        h.send_header("Content-Length", str(announced))
        h.send_header("Accept-Ranges", "none" if mode == "ignore-range" else "bytes")
        h.end_headers()
        if mode.startswith("cut:"):
            h.wfile.write(body[: int(mode[4:])])
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "slow":
            for i in range(0, len(body), 64 * 1024):
                if self.release.is_set():
                    return
                h.wfile.write(body[i:i + 64 * 1024])
                time.sleep(self.slow_delay)
            return
        step = 1024 * 1024
        for i in range(0, len(body), step):
            h.wfile.write(body[i:i + step])


if __name__ == "__main__":  # a server in its own process (benchmarks): prints its URL
    import sys

    srv = ModelServer(Path(sys.argv[1]), mode=sys.argv[2] if len(sys.argv) > 2 else "range")
    print(srv.url, flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        srv.close()


def write_catalog_copy(config_dir: Path, model_path: Path, url: str, name: str,
                       good_for: str) -> None:
    """A user catalog with one entry, `smol-copy`: the bundled model served at `url`."""
    import hashlib

    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "catalog.toml").write_text(f'''
[models.smol-copy]
name = "{name}"
family = "SmolLM2"
parameters = 0.135
quantization = "Q4_1"
file = "smol-copy.gguf"
urls = ["{url}"]
sha256 = "{hashlib.sha256(model_path.read_bytes()).hexdigest()}"
size_bytes = {model_path.stat().st_size}
context_length = 8192
license = "Apache-2.0"
good_for = "{good_for}"
''')
