"""A loopback HTTP server that speaks the OpenAI and Anthropic streaming
formats and misbehaves on request: hang before headers, hang mid-stream, send
only keep-alives, answer 429 with Retry-After, 500, 403, 404, malformed SSE, or
cut the connection; or end a stream cleanly but too soon: without its end
marker ("early_end"), with no text ("only_done", "blank"), or never, ignoring
max_tokens ("endless"). Every request it receives is logged (for privacy checks).

Faults are queued per server: each request takes the next one ("ok" when none
is left). With `api_key` set, a request without that key (OpenAI's
Authorization: Bearer or Anthropic's x-api-key) is answered 401, as the real
services do. `close()` releases every hung request and joins every thread.
"""

from __future__ import annotations

import collections
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = ("Hello", " from", " the", " loopback", " server", ".")
# "endless" stops by itself after this many pieces (or when the client leaves).
ENDLESS_PIECES = 20_000


class FaultServer:
    def __init__(self, answer: tuple[str, ...] = ANSWER, retry_after: str = "0.2",
                 api_key: str | None = None, drip_s: float = 0.01) -> None:
        self.answer = answer
        self.drip_s = drip_s
        # Pieces each "endless" request managed to send, in order of requests.
        self.endless_sent: list[int] = []
        self.api_key = api_key
        self.retry_after = retry_after
        self.faults: collections.deque[str] = collections.deque()
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.gate = threading.Event()  # "gate": answer normally once this is set
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                received = time.perf_counter()
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    fault = server.faults.popleft() if server.faults else "ok"
                    if server.api_key is not None and server.api_key not in (
                            self.headers.get("x-api-key"),
                            (self.headers.get("authorization") or "").removeprefix("Bearer ")):
                        fault = "401"
                    server.requests.append({
                        "path": self.path, "body": body,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "raw": json.dumps(body), "fault": fault, "received_at": received,
                    })
                # One request per connection: a hung handler must not go on to
                # wait for a second request on the same socket.
                self.close_connection = True
                server._serve(self, fault, "messages" in self.path)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = False
        self._httpd.block_on_close = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="fault-server", daemon=True)
        self._thread.start()

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queue(self, *faults: str) -> None:
        with self._lock:
            self.faults.extend(faults)

    def close(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()  # joins the request threads
        self._thread.join(5)

    # -- responses -------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler, fault: str, anthropic: bool) -> None:
        if fault == "hang_headers":
            self.release.wait(30)
            return
        if fault == "gate":
            self.gate.wait(30)
        if fault.startswith("echo_"):
            self._echo(h, fault, anthropic)
            return
        if fault in ("429", "500", "401", "403", "404"):
            status = int(fault)
            payload = json.dumps({"error": {"message": f"fault {status}", "type": "fault"}})
            h.send_response(status)
            if status == 429:
                h.send_header("Retry-After", self.retry_after)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(payload.encode())
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()

        def chunk(data: str) -> None:
            raw = data.encode()
            h.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            h.wfile.flush()

        events = self._anthropic_events() if anthropic else self._openai_events()
        try:
            if fault == "keepalive":
                while not self.release.wait(0.05):
                    chunk(": keep-alive\n\n")
                return
            if fault == "malformed":
                chunk("data: {this is not json\n\n")
                h.wfile.write(b"0\r\n\r\n")
                return
            if fault == "cut":
                chunk(events[0][:10])
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault in ("early_end", "only_done", "blank"):
                # A clean end of the body (the last chunk), too soon.
                for event in self._short_events(fault, anthropic):
                    chunk(event)
                h.wfile.write(b"0\r\n\r\n")
                return
            if fault == "endless":
                self._endless(chunk, anthropic)
                return
            for i, event in enumerate(events):
                if fault == "hang_mid" and i == 3:
                    self.release.wait(30)
                    return
                if fault == "cut_mid" and i == 3:
                    h.connection.shutdown(socket.SHUT_RDWR)
                    return
                chunk(event)
            h.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the client went away: what a cancelled request does

    def _short_events(self, fault: str, anthropic: bool) -> list[str]:
        if fault == "early_end":  # the opening events and two pieces of text
            if anthropic:
                return self._anthropic_events()[:4]
            return self._openai_events()[:3]
        if fault == "blank":
            return (self._anthropic_events((" ", "\n")) if anthropic
                    else self._openai_events((" ", "\n")))
        if anthropic:  # only_done: a whole message without a word in it
            return [e for e in self._anthropic_events(()) if "content_block" not in e]
        return ["data: [DONE]\n\n"]

    def _endless(self, chunk: Any, anthropic: bool) -> None:
        """Text at `drip_s` a piece, whatever max_tokens said, until the client
        goes away (or ENDLESS_PIECES, or `close()`)."""
        with self._lock:
            index = len(self.endless_sent)
            self.endless_sent.append(0)
        # The opening events: the role (OpenAI); message and block start (Anthropic).
        opening = self._anthropic_events(())[:2] if anthropic else self._openai_events(())[:1]
        for event in opening:
            chunk(event)
        for i in range(ENDLESS_PIECES):
            piece = f" word{i}"
            if anthropic:
                chunk(_anthropic_event("content_block_delta", {"index": 0, "delta": {
                    "type": "text_delta", "text": piece}}))
            else:
                chunk(_openai_data({**_OPENAI_BASE, "choices": [
                    {"index": 0, "delta": {"content": piece}, "finish_reason": None}]}))
            self.endless_sent[index] = i + 1
            if self.release.wait(self.drip_s):
                return

    def _echo(self, h: BaseHTTPRequestHandler, fault: str, anthropic: bool) -> None:
        """A server that echoes the caller's key back: in a header and a JSON
        error body ("echo_401", "echo_500"), or in an SSE error event after
        the stream began ("echo_sse")."""
        key = (h.headers.get("x-api-key")
               or (h.headers.get("authorization") or "").removeprefix("Bearer "))
        message = f"invalid api key {key} (your key: {key})"
        if fault in ("echo_401", "echo_500"):
            status = int(fault[-3:])
            payload = json.dumps({"error": {"message": message, "type": "auth", "key": key}})
            h.send_response(status)
            h.send_header("X-Echo-Key", key)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(payload.encode())
            return
        h.send_response(200)
        h.send_header("X-Echo-Key", key)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        if anthropic:
            error = {"type": "error", "error": {"type": "authentication_error",
                                                "message": message}}
            h.wfile.write(f"event: error\ndata: {json.dumps(error)}\n\n".encode())
        else:
            error = {"error": {"message": message, "type": "invalid_request_error",
                               "code": key}}
            h.wfile.write(f"data: {json.dumps(error)}\n\n".encode())
        h.wfile.flush()

    def _openai_events(self, answer: tuple[str, ...] | None = None) -> list[str]:
        answer = self.answer if answer is None else answer
        base = _OPENAI_BASE
        out = [_openai_data({**base, "choices": [{"index": 0, "delta": {"role": "assistant",
                                                                         "content": ""},
                                                  "finish_reason": None}]})]
        for piece in answer:
            out.append(_openai_data({**base, "choices": [
                {"index": 0, "delta": {"content": piece}, "finish_reason": None}]}))
        out.append(_openai_data({**base, "choices": [{"index": 0, "delta": {},
                                                      "finish_reason": "stop"}]}))
        out.append(_openai_data({**base, "choices": [], "usage": {
            "prompt_tokens": 21, "completion_tokens": len(answer), "total_tokens":
            21 + len(answer)}}))
        out.append("data: [DONE]\n\n")
        return out

    def _anthropic_events(self, answer: tuple[str, ...] | None = None) -> list[str]:
        answer = self.answer if answer is None else answer
        ev = _anthropic_event
        out = [
            ev("message_start", {"message": {
                "id": "msg_1", "type": "message", "role": "assistant", "model": "fault-claude",
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 17, "output_tokens": 1}}}),
            ev("content_block_start", {"index": 0, "content_block": {"type": "text",
                                                                     "text": ""}}),
        ]
        for piece in answer:
            out.append(ev("content_block_delta", {"index": 0, "delta": {
                "type": "text_delta", "text": piece}}))
        out += [
            ev("content_block_stop", {"index": 0}),
            ev("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                 "usage": {"output_tokens": len(answer)}}),
            ev("message_stop", {}),
        ]
        return out


_OPENAI_BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0,
                "model": "fault-model"}


def _openai_data(obj: Any) -> str:
    return f"data: {json.dumps(obj)}\n\n"


def _anthropic_event(kind: str, obj: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **obj})}\n\n"
