"""What the remote providers share: the error they raise (with whether a retry
can help), the translation of SDK and HTTP failures into it, and the client's
own bounds on an answer (its length, its time, a stop that ends a blocked read)."""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from app.core.errors import HearthError
from app.core.llm.provider import Capabilities
from app.core.offline import OfflineError

if TYPE_CHECKING:
    from app.core.llm.registry import ProviderConfig

log = logging.getLogger(__name__)

# Connecting should be quick; a slow first byte is the router's business.
CONNECT_TIMEOUT_S = 5.0
# The router ends a silent stream at the provider's timeout_s and says why
# ("stalled for 30 s mid-answer"); the HTTP read timeout is only a backstop,
# a little later, so that the two never race for the reason.
READ_BACKSTOP_S = 2.0
# Each streaming request gets a connection of its own: the socket of a reused
# keep-alive connection is never seen by the request's trace, so a stop could
# not end a read that waits on it for the headers. Questions are mostly
# further apart than the 5 s a pool keeps a connection, so little is lost.
MAX_CONNECTIONS = 100


class RemoteProviderBase:
    """What every remote provider keeps: its record, key, capabilities and one
    SDK client, built on first use (building one costs tens of milliseconds)."""

    def __init__(self, config: ProviderConfig, api_key: str | None,
                 capabilities: Capabilities) -> None:
        self.config = config
        self._key = api_key
        self._caps = capabilities
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def model(self) -> str:
        return self.config.model

    def capabilities(self) -> Capabilities:
        return self._caps

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import httpx2

                from app.core.secrets import check_key

                if self._key:
                    check_key(self._key, f"for {self.name}")

                http_client = self._make_http_client(
                    limits=httpx2.Limits(max_connections=MAX_CONNECTIONS,
                                         max_keepalive_connections=0),
                    event_hooks={"request": [_trace_sockets]},
                )
                self._client = self._make_client(
                    # Servers without keys (llama.cpp, Ollama) ignore this value.
                    api_key=self._key or "no-key",
                    base_url=self.config.base_url,
                    max_retries=0,
                    timeout=httpx2.Timeout(self.config.timeout_s + READ_BACKSTOP_S,
                                           connect=CONNECT_TIMEOUT_S),
                    default_headers=self.config.headers or None,
                    http_client=http_client,
                )
            return self._client

    def _make_client(self, **options: Any) -> Any:
        raise NotImplementedError

    def _make_http_client(self, **options: Any) -> Any:
        """The SDK's own httpx client (its defaults) with Hearth's options."""
        raise NotImplementedError

    def max_answer_s(self) -> float:
        """Seconds one whole answer may take: this provider's own limit, else
        the routing.max_answer_s setting."""
        if self.config.max_answer_s is not None:
            return self.config.max_answer_s
        from app.settings import Settings

        # Read when a request starts (on its attempt thread), so a change in
        # the Settings dialog applies to the next question.
        return Settings.load().snapshot().routing.max_answer_s

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class RemoteError(HearthError):
    """A remote request failed. `retryable`: a 429, a 5xx or a network error,
    where trying again (after `retry_after` seconds, if the server said) may work."""

    reason = "remote_failed"

    def __init__(self, message: str, *, reason: str, detail: str, retryable: bool = False,
                 status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.detail = detail
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


def cut_off(provider: str, text: str) -> RemoteError:
    """The stream closed cleanly but without its end marker ([DONE] or
    message_stop): what came is only the start of an answer."""
    return RemoteError(f"{provider} ended its answer early, without its end marker.",
                       reason="cut_off",
                       detail="answer cut off (stream ended without its end marker)",
                       # Before any text this is a dropped connection, worth a retry;
                       # after some, the router falls back (and never retries).
                       retryable=not text)


def empty_answer(provider: str) -> RemoteError:
    return RemoteError(f"{provider} sent an empty answer.", reason="empty_answer",
                       detail="empty answer")


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _caused_by_offline(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, OfflineError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def to_remote_error(provider: str, exc: BaseException, sdk: Any) -> RemoteError:
    """Translate an exception from `sdk` (the openai or anthropic module) or httpx."""
    import httpx2

    if isinstance(exc, RemoteError):
        return exc
    if _caused_by_offline(exc):
        return RemoteError(
            f"Hearth is offline, so nothing was sent to {provider}.",
            reason="offline", detail="offline mode is on",
        )
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", {}) or {}
        retry_after = parse_retry_after(headers.get("retry-after"))
        if status == 429:
            return RemoteError(f"{provider} is rate limiting requests (HTTP 429).",
                               reason="rate_limited", detail="rate limited (HTTP 429)",
                               retryable=True, status=status, retry_after=retry_after)
        if status >= 500:
            return RemoteError(f"{provider} had a server error (HTTP {status}).",
                               reason="server_error", detail=f"server error (HTTP {status})",
                               retryable=True, status=status, retry_after=retry_after)
        if status in (401, 403):
            return RemoteError(
                f"{provider} refused the API key (HTTP {status}); set it with "
                f"`hearth keys set {provider}`.",
                reason="auth_failed", detail=f"API key refused (HTTP {status})", status=status)
        return RemoteError(f"{provider} refused the request (HTTP {status}).",
                           reason="bad_request", detail=f"request refused (HTTP {status})",
                           status=status)
    if isinstance(exc, sdk.APITimeoutError | httpx2.TimeoutException):
        return RemoteError(f"{provider} did not answer in time.", reason="network_error",
                           detail="network timeout", retryable=True)
    if isinstance(exc, sdk.APIConnectionError | httpx2.TransportError):
        return RemoteError(f"The connection to {provider} failed.", reason="network_error",
                           detail="connection failed", retryable=True)
    log.warning("%s sent a response Hearth could not read: %s: %s", provider,
                type(exc).__name__, str(exc)[:200])
    return RemoteError(f"{provider} sent a response Hearth could not read.",
                       reason="bad_response", detail="malformed response")


def estimate_tokens(text: str) -> int:
    """About four characters a token: used only where a server reports no usage."""
    return max(1, (len(text) + 3) // 4) if text else 0


# -- the client's own bounds on one answer -----------------------------------------


class AnswerLimits:
    """Bounds one streamed answer whatever the server does: at most
    `max_tokens` tokens (a server may ignore the limit it was sent) and at
    most `max_answer_s` seconds from the request to the end of the answer."""

    def __init__(self, provider: str, max_tokens: int, max_answer_s: float) -> None:
        self.provider = provider
        self.max_tokens = max_tokens
        self.max_answer_s = max_answer_s
        self.started = time.monotonic()
        self.deltas = 0
        self.reported = 0

    def count(self, text: str) -> None:
        # Each piece of text counts as one token, unless the server's own
        # running count says more. A piece carries at least one token (one
        # for OpenAI-compatible servers, a few for Anthropic), so this count
        # never runs ahead of the server's: an honest server that stops at
        # max_tokens is never cut short, which estimate_tokens' four
        # characters a token (too many for English with long words) would do.
        if text:
            self.deltas += 1

    def server_count(self, completion_tokens: int | None) -> None:
        if completion_tokens:
            self.reported = max(self.reported, completion_tokens)

    @property
    def tokens(self) -> int:
        return max(self.deltas, self.reported)

    @property
    def over_tokens(self) -> bool:
        return self.tokens > self.max_tokens

    def note(self) -> str:
        return (f"{self.provider} ignored the token limit; Hearth stopped reading at "
                f"{self.max_tokens} tokens")

    def check_time(self) -> None:
        """Raise `too_slow` once the answer has taken longer than allowed.

        Checked at each event of the stream: the router ends a stream that
        goes silent for its timeout_s, so an answer overruns this bound by
        at most that long."""
        spent = time.monotonic() - self.started
        if spent > self.max_answer_s:
            raise RemoteError(
                f"{self.provider} was still answering after {self.max_answer_s:g} s, so "
                "Hearth stopped reading (routing.max_answer_s sets this limit).",
                reason="too_slow", detail=f"answer took longer than {self.max_answer_s:g} s")


# -- ending a blocked read ---------------------------------------------------------

# The request being sent on this thread, for the client's request hook.
_sending: contextvars.ContextVar[ReadInterrupt | None] = contextvars.ContextVar(
    "hearth_sending", default=None)


class ReadInterrupt:
    """Ends, from another thread, a read blocked on one request's socket.

    Closing a socket does not wake a thread blocked reading it (on Linux the
    read waits on until its timeout); shutting it down does: the read returns
    at once and the SDK raises, which the provider reports as cancelled. The
    sockets come from httpcore's `trace` extension as connections open, and
    from the response's `network_stream` once the headers are in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._fired = False
        self._closed = False

    @contextlib.contextmanager
    def sending(self) -> Iterator[None]:
        """While the SDK sends a request on this thread, trace its sockets."""
        token = _sending.set(self)
        try:
            yield
        finally:
            _sending.reset(token)

    def trace(self, event: str, info: dict[str, Any]) -> None:
        # connect_tcp, start_tls (and a proxy's) return the new network stream.
        self.watch(info.get("return_value"))

    def watch(self, network_stream: Any) -> None:
        get = getattr(network_stream, "get_extra_info", None)
        sock = get("socket") if callable(get) else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if self._closed:
                return
            if not self._fired:
                self._sockets.append(sock)
                return
        _shutdown(sock)

    def watch_response(self, response: Any) -> None:
        extensions = getattr(response, "extensions", None) or {}
        self.watch(extensions.get("network_stream"))

    def fire(self) -> None:
        with self._lock:
            self._fired = True
            sockets = [] if self._closed else list(self._sockets)
        for sock in sockets:
            _shutdown(sock)

    def close(self) -> None:
        """The request is over: later stops leave its (closed) sockets alone."""
        with self._lock:
            self._closed = True
            self._sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    # socket.socket's own method: an SSLSocket's would drop its TLS state under
    # the reading thread; the blocked read only needs the TCP stream ended.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _trace_sockets(request: Any) -> None:
    """httpx request hook: hand the request's connections to the interrupt
    of the provider sending it."""
    interrupt = _sending.get()
    if interrupt is not None:
        request.extensions["trace"] = interrupt.trace
