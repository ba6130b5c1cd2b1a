"""Testing one remote provider with a tiny request, for `hearth providers test`
and the Settings dialog's "Test connection" button; the result is in words,
and a failure names its cause and the address it happened at."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.core import offline, secrets
from app.core.errors import HearthError, as_phrase
from app.core.llm.provider import CancelToken, ChatMessage, ChatRequest, StreamEnd, TextDelta
from app.core.llm.registry import ProviderConfig, capabilities_for, get_provider, load_prices
from app.core.llm.remote import CONNECT_TIMEOUT_S, READ_BACKSTOP_S, RemoteError
from app.paths import Paths
from app.settings import Settings

PROMPT = "Reply with the single word OK."
STATUS_WORDS = {401: "unauthorized", 403: "forbidden", 404: "not found"}


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    provider: str
    model: str = ""
    reply: str = ""
    ttft_s: float | None = None
    total_s: float = 0.0
    # When it failed: what went wrong in words, a short reason code, the HTTP
    # status if any, and the one sentence for people.
    error: str = ""
    reason: str = ""
    status: int | None = None
    key_stored: bool = True
    explanation: str = ""

    @property
    def message(self) -> str:
        """One sentence for people."""
        if self.ok:
            ttft = f"first token in {self.ttft_s:.2f} s, " if self.ttft_s else ""
            return (f"{self.provider} works: {self.model} answered {self.reply!r} "
                    f"({ttft}{self.total_s:.2f} s in all).")
        return self.explanation or f"{self.provider} failed the test: {self.error}"


def probe_provider(settings: Settings, paths: Paths, name: str,
                   cancel: CancelToken | None = None) -> ProbeResult:
    """Test the configured provider `name` with its stored key. Raises
    HearthError when `name` is not configured."""
    config = get_provider(paths, name)
    return probe_config(settings, paths, config, None, cancel)


def probe_config(settings: Settings, paths: Paths, config: ProviderConfig,
                 key: str | None = None, cancel: CancelToken | None = None) -> ProbeResult:
    """Send PROMPT to `config` once, with `key` (or, when None, the key stored
    for its name), and report how it went. The provider need not be saved: the
    Settings dialog tests what is in its form.

    One request, no retries and no fallback, straight to the provider: a test
    should say at once what is wrong, not after the router's backoff."""
    from app.core.llm.anthropic import AnthropicProvider
    from app.core.llm.openai_compat import OpenAICompatProvider

    name = config.name
    # The test is one request like any other: offline mode (the setting, or
    # the process's) means nothing is sent.
    if settings.snapshot().network.offline or not offline.network_allowed():
        return ProbeResult(False, name, reason="offline",
                           error=f"Hearth is offline, so nothing was sent to {name}; turn "
                                 "offline mode off (network.offline) to test it.",
                           explanation=f"Hearth is offline, so nothing was sent to {name}; "
                                       "turn offline mode off (network.offline) to test it.")
    if key:
        from app.core.privacy import remember_secret

        key = key.strip()
        remember_secret(key)  # a typed key is redacted from logs like a stored one
    else:
        key = secrets.get_key(name)
    kind = AnthropicProvider if config.kind == "anthropic" else OpenAICompatProvider
    provider = kind(config, key, capabilities_for(config, load_prices(paths)))
    request = ChatRequest((ChatMessage("user", PROMPT),), max_tokens=8, temperature=0.0)
    started = time.perf_counter()
    first: float | None = None
    text: list[str] = []
    model = config.model
    try:
        for item in provider.stream(request, cancel or CancelToken()):
            if isinstance(item, TextDelta):
                first = first or time.perf_counter()
                text.append(item.text)
            elif isinstance(item, StreamEnd):
                model = item.model or model
    except HearthError as exc:
        status = exc.status if isinstance(exc, RemoteError) else None
        return ProbeResult(False, name, error=str(exc), reason=exc.reason, status=status,
                           total_s=time.perf_counter() - started, key_stored=bool(key),
                           explanation=explain(config, exc, bool(key)))
    finally:
        provider.close()
    return ProbeResult(True, name, model, "".join(text).strip(),
                       first - started if first is not None else None,
                       time.perf_counter() - started)


def address(base_url: str) -> str:
    """host:port of a base URL, with the scheme's default port spelled out."""
    parts = urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or base_url
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    for _ in range(12):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


def explain(config: ProviderConfig, exc: HearthError, key_stored: bool) -> str:
    """Why a test request failed, in one sentence: the cause, the address,
    and what to check."""
    at = address(config.base_url)
    name = config.name
    status = exc.status if isinstance(exc, RemoteError) else None
    if exc.reason == "offline":
        return str(exc)
    if status is not None:
        code = f"{status} {STATUS_WORDS.get(status, '')}".strip()
        if status in (401, 403):
            if not key_stored:
                return (f"The server at {at} asked for a key ({code}) and none is stored for "
                        f"{name}; enter one and test again.")
            return (f"The server at {at} refused the key ({code}); check the key for {name} "
                    "and test again.")
        if status == 404:
            return (f"Nothing was found at {config.base_url} (HTTP 404) — is the base URL "
                    f"right (OpenAI-compatible ones usually end in /v1), and does the server "
                    f"have the model {config.model!r}?")
        return (f"The server at {at} answered HTTP {code}: {as_phrase(str(exc))} — check "
                "the model name and the base URL.")
    for cause in _causes(exc):
        kind = type(cause).__name__
        if isinstance(cause, ConnectionRefusedError):
            return f"Connection refused at {at} — is the server running, is the URL right?"
        if isinstance(cause, socket.gaierror):
            host = urlsplit(config.base_url).hostname or config.base_url
            return (f"The server name {host} could not be found (DNS lookup failed) — is the "
                    "URL right, and is this computer online?")
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (f"The secure connection to {at} was refused: its certificate is not "
                    f"trusted ({cause.verify_message}) — is the URL right, and is the "
                    "certificate trusted on this computer?")
        if isinstance(cause, ssl.SSLError):
            why = str(cause.reason or cause).replace("_", " ").lower()
            return (f"The secure (TLS) connection to {at} failed ({why}) — "
                    "does the server speak HTTPS, or should the URL start with http://?")
        if kind == "ConnectTimeout":
            return (f"No connection to {at} within {CONNECT_TIMEOUT_S:g} s — is the server "
                    "up, and is no firewall in the way?")
        if kind in ("ReadTimeout", "APITimeoutError") or isinstance(cause, TimeoutError):
            waited = config.timeout_s + READ_BACKSTOP_S
            return (f"The server at {at} took the request but sent no answer within "
                    f"{waited:g} s — is it overloaded, or is something else listening on "
                    "that port?")
    if exc.reason == "network_error":
        detail = next((str(c) for c in _causes(exc) if isinstance(c, OSError) and str(c)), "")
        why = f" ({detail})" if detail else ""
        return (f"The connection to {at} failed{why} — is the server running, is the URL "
                "right?")
    if exc.reason == "bad_response":
        return (f"The server at {at} answered, but not in the {config.kind} format Hearth "
                "expects — is the kind right, and does the base URL point at the API?")
    return f"{name} failed the test: {as_phrase(str(exc))}."
