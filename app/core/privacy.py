"""The privacy gate every remote request passes: reference chunks from
local-only folders are removed and secrets are redacted, with counts by kind.

Redaction uses a tested pattern set (keys of the common providers, private key
blocks, JWTs, passwords in URLs, AWS keys, `password = ...` assignments and
generic high-entropy tokens). A secret is replaced by `[REDACTED <kind>]`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from app.core.llm.provider import ChatMessage
from app.core.prompting import PromptPlan


def _whole(kind: str) -> Callable[[re.Match[str]], tuple[str, str]]:
    return lambda m: (kind, f"[REDACTED {kind}]")


def _group(kind: str, group: int) -> Callable[[re.Match[str]], tuple[str, str]]:
    def sub(m: re.Match[str]) -> tuple[str, str]:
        start, end = m.span(group)
        base = m.start()
        text = m.group(0)
        return kind, text[: start - base] + f"[REDACTED {kind}]" + text[end - base:]

    return sub


# Order matters: the specific patterns run before the generic ones, and a
# redacted span never matches again (the marker has no secret-like tokens).
_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], tuple[str, str]]], ...] = (
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?"
                r"(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\Z)", re.S),
     _whole("private_key")),
    (re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}"), _whole("anthropic_key")),
    (re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"), _whole("openai_key")),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"),
     _whole("github_token")),
    (re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}"), _whole("gitlab_token")),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"), _whole("slack_token")),
    (re.compile(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"), _whole("stripe_key")),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"), _whole("google_api_key")),
    (re.compile(r"\bgsk_[A-Za-z0-9]{20,}"), _whole("groq_key")),
    (re.compile(r"\bhf_[A-Za-z0-9]{30,}"), _whole("huggingface_token")),
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"), _whole("aws_access_key")),
    (re.compile(r"(?i)aws_?secret_?(?:access_?)?key\W{0,3}[:=]\s*[\"']?([A-Za-z0-9/+=]{40})"),
     _group("aws_secret_key", 1)),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
     _whole("jwt")),
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@]+:([^@\s/]+)@"),
     _group("url_password", 1)),
    (re.compile(r"(?i)\b(?:password|passwd|pwd|secret|api[_\-]?key|access[_\-]?token|"
                r"auth[_\-]?token)\b[\"']?\s*[:=]\s*[\"']?([^\s\"',;]{6,})"),
     _group("password", 1)),
)

_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-]{32,}")


def _entropy(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _high_entropy(token: str) -> bool:
    # Mixed letters and digits, and close to random: hashes, keys, tokens;
    # not long words or identifiers.
    has_digit = any(c.isdigit() for c in token)
    has_alpha = any(c.isalpha() for c in token)
    return has_digit and has_alpha and _entropy(token) >= 4.0


def redact(text: str, counts: Counter[str] | None = None) -> str:
    """`text` with every secret found replaced; `counts` gains one per secret by kind."""
    counts = counts if counts is not None else Counter()
    for pattern, sub in _PATTERNS:
        def one(m: re.Match[str], sub: Callable[[re.Match[str]], tuple[str, str]] = sub) -> str:
            kind, replacement = sub(m)
            counts[kind] += 1
            return replacement

        text = pattern.sub(one, text)

    def generic(m: re.Match[str]) -> str:
        token = m.group(0)
        if token.startswith("REDACTED") or not _high_entropy(token):
            return token
        counts["high_entropy_token"] += 1
        return "[REDACTED high_entropy_token]"

    return _TOKEN.sub(generic, text)


@dataclass(frozen=True)
class Outbound:
    """A prompt ready to leave the machine, and what was taken out of it."""

    plan: PromptPlan
    redactions: dict[str, int]
    local_only_dropped: int


def prepare_outbound(plan: PromptPlan, redact_secrets: bool = True) -> Outbound:
    """Drop local-only reference chunks, then redact secrets everywhere in the prompt."""
    kept = tuple(c for c in plan.context if not c.local_only)
    dropped = len(plan.context) - len(kept)
    counts: Counter[str] = Counter()
    if redact_secrets:
        plan = replace(
            plan,
            system=redact(plan.system, counts),
            history=tuple(ChatMessage(m.role, redact(m.content, counts)) for m in plan.history),
            question=redact(plan.question, counts),
            context=tuple(replace(c, text=redact(c.text, counts)) for c in kept),
        )
    else:
        plan = replace(plan, context=kept)
    return Outbound(plan, dict(sorted(counts.items())), dropped)
