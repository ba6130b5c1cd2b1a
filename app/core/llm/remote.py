"""What the remote providers share: the error they raise (with whether a retry
can help) and the translation of SDK and HTTP failures into it."""

from __future__ import annotations

import email.utils
import logging
import threading
import time
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

                self._client = self._make_client(
                    # Servers without keys (llama.cpp, Ollama) ignore this value.
                    api_key=self._key or "no-key",
                    base_url=self.config.base_url,
                    max_retries=0,
                    timeout=httpx2.Timeout(self.config.timeout_s + READ_BACKSTOP_S,
                                           connect=CONNECT_TIMEOUT_S),
                    default_headers=self.config.headers or None,
                )
            return self._client

    def _make_client(self, **options: Any) -> Any:
        raise NotImplementedError

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
