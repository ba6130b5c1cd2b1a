"""Testing one remote provider with a tiny request, for `hearth providers test`
and the Settings dialog's "Test connection" button; the result is in words."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from app.core import offline, secrets
from app.core.llm.provider import CancelToken, TextDelta
from app.core.llm.registry import get_provider
from app.paths import Paths
from app.settings import Settings

PROMPT = "Reply with the single word OK."
HTTP_STATUS = re.compile(r"HTTP (\d{3})")
STATUS_WORDS = {401: "unauthorized", 403: "forbidden"}


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    provider: str
    model: str = ""
    reply: str = ""
    ttft_s: float | None = None
    total_s: float = 0.0
    # When it failed: the router's sentence, its reason, and the HTTP status if any.
    error: str = ""
    reason: str = ""
    status: int | None = None
    key_stored: bool = True

    @property
    def message(self) -> str:
        """One sentence for people."""
        if self.ok:
            ttft = f"first token in {self.ttft_s:.2f} s, " if self.ttft_s else ""
            return (f"{self.provider} works: {self.model} answered {self.reply!r} "
                    f"({ttft}{self.total_s:.2f} s in all).")
        if self.reason == "offline":
            return self.error
        if self.reason == "auth_failed":
            code = f"{self.status} {STATUS_WORDS.get(self.status or 0, '')}".strip() \
                if self.status else "unauthorized"
            if not self.key_stored:
                return (f"The server asked for a key ({code}) and none is stored for "
                        f"{self.provider}; enter one and test again.")
            return (f"The server refused the key ({code}); check the key for "
                    f"{self.provider} and test again.")
        return f"{self.provider} failed the test: {self.error}"


def probe_provider(settings: Settings, paths: Paths, name: str,
                   cancel: CancelToken | None = None) -> ProbeResult:
    """Send PROMPT to provider `name` only (no fallback) and report how it went.

    Uses its own router (and circuit breaker), so a provider skipped after
    failures elsewhere is still really tried. Raises HearthError when `name`
    is not configured."""
    from app.core.assistant import Assistant
    from app.core.llm.router import Answered, GenParams, RoutingError
    from app.core.prompting import PromptPlan

    get_provider(paths, name)
    # The test is one request like any other: offline mode (the setting, or
    # the process's) means nothing is sent, and the router is not even built.
    if settings["network.offline"] or not offline.network_allowed():
        return ProbeResult(False, name, reason="offline",
                           error=f"Hearth is offline, so nothing was sent to {name}; turn "
                                 "offline mode off (network.offline) to test it.")
    assistant = Assistant(settings, paths)
    try:
        router = assistant.router()
        started = time.perf_counter()
        answered: Answered | None = None
        text: list[str] = []
        try:
            for item in router.run(PromptPlan("", (), PROMPT),
                                   GenParams(max_tokens=8, temperature=0.0),
                                   cancel or CancelToken(), policy=name):
                if isinstance(item, Answered):
                    answered = item
                elif isinstance(item, TextDelta):
                    text.append(item.text)
        except RoutingError as exc:
            details = " ".join(a.detail for a in exc.route.attempts)
            found = HTTP_STATUS.search(details)
            return ProbeResult(False, name, error=str(exc), reason=exc.reason,
                               status=int(found.group(1)) if found else None,
                               total_s=time.perf_counter() - started,
                               key_stored=secrets.key_source(name) != "none")
        assert answered is not None
        return ProbeResult(True, name, answered.model, "".join(text).strip(), answered.ttft_s,
                           time.perf_counter() - started)
    finally:
        assistant.close()
