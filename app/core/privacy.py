"""The privacy gate every remote request passes, and the redaction every log
line passes: text from local-only folders is withheld, secrets are replaced by
`[REDACTED <kind>]`, with counts by kind (never the secret itself).

Secrets are found by Yelp's detect-secrets rule set (its regex detectors for
cloud, SaaS and package-registry credentials, its Shannon-entropy measure and
its false-positive heuristics) plus Hearth's own rules, which detect-secrets
leaves out because it scans source files line by line, not prose: whole
private-key blocks, keys of the model providers Hearth talks to, and
`name = value` assignments of passwords, passphrases and tokens whatever
their length, including `*_PASSWORD=` variables and quoted values with spaces.
Detection never calls detect-secrets' verifiers (they would use the network).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from app.core.llm.provider import ChatMessage
from app.core.prompting import ContextChunk, PromptPlan

Span = tuple[int, int, str]  # start, end, kind

# -- Hearth's own rules ------------------------------------------------------------

# (kind, pattern); each runs only on text that holds its literal part (the
# hint after the last "|" in `_HINTS`), which keeps the scan cheap.
_PROVIDER_KEYS: tuple[tuple[str, str], ...] = (
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}"),
    ("openai_key", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
    ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("gitlab_token", r"\bglpat-[A-Za-z0-9_\-]{20,}"),
    ("slack_token", r"\bxox[abposre]-[A-Za-z0-9\-]{10,}"),
    ("slack_webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_\-]{20,}"),
    ("stripe_key", r"\b(?:[rs]k|pk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}"),
    ("google_oauth_secret", r"\bGOCSPX-[A-Za-z0-9_\-]{20,}"),
    ("groq_key", r"\bgsk_[A-Za-z0-9]{20,}"),
    ("huggingface_token", r"\bhf_[A-Za-z0-9]{30,}"),
    ("replicate_token", r"\br8_[A-Za-z0-9]{30,}"),
    ("perplexity_key", r"\bpplx-[A-Za-z0-9]{30,}"),
    ("xai_key", r"\bxai-[A-Za-z0-9]{30,}"),
    ("digitalocean_token", r"\bdo[opr]_v1_[a-f0-9]{64}"),
    ("shopify_token", r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    ("atlassian_token", r"\bATATT3[A-Za-z0-9_\-=]{30,}"),
    ("linear_key", r"\blin_api_[A-Za-z0-9]{30,}"),
    ("notion_token", r"\b(?:secret_|ntn_)[A-Za-z0-9]{40,}"),
    ("doppler_token", r"\bdp\.(?:st|pt|ct|sa|scim|audit)\.[A-Za-z0-9_\-.]{30,}"),
    ("sentry_token", r"\bsntry[su]_[A-Za-z0-9_=+/]{30,}"),
    ("age_secret_key", r"\bAGE-SECRET-KEY-1[0-9A-Z]{50,}"),
    ("aws_access_key", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    ("azure_connection_string",
     r"\b(?:AccountKey|SharedAccessKey|SharedAccessSignature)=[A-Za-z0-9+/=%]{20,}"),
    ("jwt", r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
)

_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)", re.S)
_SSH_PUTTY = re.compile(r"PuTTY-User-Key-File-\d:.*?Private-MAC: [0-9a-f]+", re.S)

# Password-like names: any value at all is a secret, whatever its length.
_STRONG = r"pass(?:word|wd|phrase|code)?|pwd|secret|credentials?|private[_\-]?key"
# Token-like names: the value must look random (see _looks_random).
_WEAK = (r"(?:api|access|auth|client|app|bearer|refresh|session|master|signing|"
         r"encryption|license)[_\-]?(?:key|token|secret)|apikey|token|auth")
# The name ends with the keyword (DB_PASSWORD, spring.datasource.password),
# so `passages`, `secrets_dir` or `tokenize` are not taken for one.
_NAME = (rf"(?P<name>(?:[A-Za-z0-9]+[_.\-])*?(?:(?P<strong>{_STRONG})|(?P<weak>{_WEAK})))"
         r"(?![A-Za-z0-9])")
_ASSIGNMENT = re.compile(
    rf"(?i)(?<![A-Za-z0-9_.\-]){_NAME}[\"'\]]?[ \t]*(?::=|=>|[:=])[ \t]*"
    r"(?:(?P<q>[\"'`])(?P<quoted>[^\n]*?)(?P=q)|(?P<bare>[^\s\"'`,;&<>()\[\]{}][^\n]*))")
# Bearer / Basic credentials in a header line.
_AUTH_HEADER = re.compile(r"(?i)\b(?:authorization|proxy-authorization)[\"']?\s*[:=]\s*[\"']?"
                          r"(?:bearer|basic|token|digest)\s+(?P<v>[A-Za-z0-9._~+/=\-]{8,})")
_URL_PASSWORD = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@]+:(?P<v>[^@\s/]+)@")

# Values that name a secret instead of being one (detect-secrets' heuristics
# cover calls, indexing and templates; these are the prose and type cases).
_NOT_A_VALUE = re.compile(
    r"(?i)^(?:str|int|bytes|bool|float|dict|list|any|string|number|boolean|secretstr|"
    r"optional\b.*|none|null|nil|true|false|undefined|required|optional|empty|"
    r"\*+|x{3,}|\.{3}|…|-+|_+|n/a|tbd|todo|changeme|"
    r"(?:os\.)?(?:environ|getenv)\b.*|process\.env\b.*|env\(.*|self\.\w+|args\.\w+|"
    r"settings\.\w+|config\.\w+|%\(.*|\$\w+|\$\{.*)$")
# `password: str = ""`, `f(password: str)`: a typed name in code, not a value.
_ANNOTATED = re.compile(
    r"^(?:str|int|bytes|bool|float|Any|None|SecretStr|SecretBytes|string|"
    r"(?:Optional|list|dict|Union)\[[^\]]*\])\s*(?:[),=|]|$)")
_COMMENT = re.compile(r"\s+(?:#|//)\s.*$")
_WEAK_UNQUOTED_STOP = re.compile(r"[\s]")


def _looks_random(value: str) -> bool:
    """A token-like value: long enough, with digits or mixed case."""
    if len(value) < 8:
        return False
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value),
                   any(c.isdigit() for c in value)))
    return (classes >= 2 and any(c.isdigit() for c in value)) or classes == 3


# -- detect-secrets --------------------------------------------------------------------

# Public IP addresses are not secrets; high-entropy strings and keywords are
# handled below with rules fit for prose (detect-secrets only looks inside quotes).
_SKIPPED_DETECTORS = {"Public IP (ipv4)"}
# Lines worth giving to detect-secrets' detectors: every secret they find is a
# long token, a URL with credentials or a key header; other lines are skipped,
# which keeps a 4,000-token prompt well under a millisecond of regex work.
_SUSPECT = re.compile(r"[A-Za-z0-9+/=_\-.:]{20,}|://\S+@|PRIVATE KEY")
_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{20,}={0,2}")
_HEX = re.compile(r"^[0-9a-fA-F]+$")

_ds_lock = threading.Lock()
# How detect-secrets writes the assignment in its `NAME = value` patterns.
_ASSIGNED = "(?:=|:|:=|=>| +|::)"


@dataclass(frozen=True)
class _Detector:
    kind: str
    plugin: Any
    patterns: tuple[re.Pattern[str], ...]
    # Patterns for `NAME = value` with a key/password/token name: run only on
    # lines that hold such a word (they are the slow ones).
    named: tuple[re.Pattern[str], ...] = ()


@functools.cache
def _detect_secrets() -> tuple[tuple[_Detector, ...], Any, Any]:
    with _ds_lock:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
        from detect_secrets.filters import heuristic
        from detect_secrets.plugins.base import RegexBasedDetector
        from detect_secrets.plugins.high_entropy_strings import (
            Base64HighEntropyString,
            HexHighEntropyString,
        )

        detectors = []
        mapping: dict[str, Any] = get_mapping_from_secret_type_to_class()
        for secret_type, cls in sorted(mapping.items()):
            if secret_type in _SKIPPED_DETECTORS or not issubclass(cls, RegexBasedDetector):
                continue
            plugin = cls()
            kind = re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")
            named = tuple(p for p in plugin.denylist if _ASSIGNED in p.pattern)
            plain = tuple(p for p in plugin.denylist if p not in named)
            detectors.append(_Detector(kind, plugin, plain, named))
        return tuple(detectors), (Base64HighEntropyString(), HexHighEntropyString()), heuristic


def detector_names() -> list[str]:
    """The detect-secrets detectors in use (for `hearth doctor` and tests)."""
    return [d.kind for d in _detect_secrets()[0]]


# -- finding ---------------------------------------------------------------------------


def _assignment_spans(text: str, heuristic: Any) -> Iterable[Span]:
    for m in _ASSIGNMENT.finditer(text):
        strong = m.group("strong") is not None
        if m.group("quoted") is not None:
            value, start = m.group("quoted"), m.start("quoted")
            if not value.strip() or (not strong and not _looks_random(value.strip())):
                continue
        else:
            bare = m.group("bare")
            start = m.start("bare")
            if strong:
                value = _COMMENT.sub("", bare).rstrip()
                if _ANNOTATED.match(value):
                    continue
            else:
                value = _WEAK_UNQUOTED_STOP.split(bare, 1)[0].rstrip(".,;")
                if not _looks_random(value):
                    continue
        value = value.rstrip()
        if _NOT_A_VALUE.match(value) or heuristic.is_templated_secret(value):
            continue
        line_start = text.rfind("\n", 0, m.start()) + 1
        line_end = text.find("\n", m.end())
        line = text[line_start:line_end if line_end >= 0 else len(text)]
        if m.group("bare") is not None and heuristic.is_indirect_reference(line):
            continue
        if strong and len(value) < 3 and m.group("quoted") is None:
            continue
        name = m.group("name").lower()
        kind = ("aws_secret_key" if "aws" in name and "secret" in name
                else "password" if strong else "token")
        yield start, start + len(value), kind


class _Lines:
    """Some lines of a text joined by newlines, with a map from offsets in
    the joined text back to offsets in the whole text: the slower rules run
    only on the lines that could hold what they look for."""

    def __init__(self, text: str, offsets: Iterable[int]) -> None:
        self.starts: list[int] = []
        self.joined_starts: list[int] = []
        parts: list[str] = []
        length = 0
        last = -1
        for offset in sorted(offsets):
            start = text.rfind("\n", 0, offset) + 1
            if start <= last:
                continue
            end = text.find("\n", offset)
            end = len(text) if end < 0 else end
            self.starts.append(start)
            self.joined_starts.append(length)
            parts.append(text[start:end])
            length += end - start + 1
            last = start
        self.text = "\n".join(parts)

    def back(self, offset: int) -> int:
        i = bisect.bisect_right(self.joined_starts, offset) - 1
        return self.starts[i] + offset - self.joined_starts[i]

    def spans(self, found: Iterable[Span]) -> list[Span]:
        return [(self.back(s), self.back(s) + e - s, k) for s, e, k in found]


_DIGIT = re.compile(r"\d")


def _random_looking(word: str) -> bool:
    return ((not word.islower() and not word.isupper()) or word.isalpha()
            or _DIGIT.search(word) is not None)


def _all(text: str, needle: str) -> Iterable[int]:
    at = text.find(needle)
    while at >= 0:
        yield at
        at = text.find(needle, at + 1)


def _suspect_offsets(text: str) -> list[int]:
    """Where a token-shaped secret could be: every detector below needs a
    random-looking run of 20 or more characters (digits, or mixed case, or
    one unbroken run of letters), a URL with credentials or an
    Authorization header. Most lines of prose and code have none."""
    offsets: list[int] = []
    for word in {w for w in text.split() if len(w) >= 20}:
        if _random_looking(word):
            offsets += _all(text, word)
    for needle in ("://", "uthorization", "UTHORIZATION"):
        offsets += _all(text, needle)
    return offsets


def _detect_secrets_spans(text: str, detectors: Sequence[_Detector],
                          named: bool = False) -> Iterable[Span]:
    for det in detectors:
        for pattern in det.named if named else det.patterns:
            for m in pattern.finditer(text):
                whole = m.group(0)
                for value in set(det.plugin.analyze_string(whole)):
                    at = whole.find(value)
                    if value and at >= 0:
                        yield m.start() + at, m.start() + at + len(value), det.kind


def _entropy_spans(text: str, entropy: Any, heuristic: Any) -> Iterable[Span]:
    b64, hexa = entropy
    for m in _TOKEN.finditer(text):
        token = m.group(0).strip("=-_")
        if len(token) < 20 or token.startswith("REDACTED"):
            continue
        if not any(c.isdigit() for c in token) or not any(c.isalpha() for c in token):
            continue
        if heuristic.is_sequential_string(token) or heuristic.is_potential_uuid(token):
            continue
        if _identifier_like(token):
            continue
        if _HEX.match(token):
            # Hashes and ids: only long ones, as detect-secrets' hex rule.
            if len(token) < 32 or hexa.calculate_shannon_entropy(token) < hexa.entropy_limit:
                continue
        elif b64.calculate_shannon_entropy(token) < min(b64.entropy_limit,
                                                         0.86 * _log2(len(token))):
            continue
        start = m.start() + m.group(0).find(token)
        yield start, start + len(token), "high_entropy_string"


_SEGMENTS = re.compile(r"[-_/+]")


def _identifier_like(token: str) -> bool:
    """Names, versions and paths (qwen2.5-7b-instruct-q4_k_m, en-us/library/...):
    three or more short parts. Random keys have few separators and long runs."""
    parts = [p for p in _SEGMENTS.split(token) if p]
    return len(parts) >= 3 and max(len(p) for p in parts) < 12


def _log2(n: int) -> float:
    import math

    return math.log2(n)


_KEYWORDS = ("pass", "pw", "secret", "credential", "key", "token", "auth")


def _keyword_offsets(text: str) -> list[int]:
    """Where a secret-naming word is followed, on its line, by `=` or `:`."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a few characters grow when lowered ("İ")
        lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    offsets: list[int] = []
    for word in _KEYWORDS:
        for at in _all(lowered, word):
            end = lowered.find("\n", at)
            window = lowered[at:end if 0 <= end < at + 120 else at + 120]
            if "=" in window or ":" in window:
                offsets.append(at)
    return offsets


def find_secrets(text: str, cached: bool = True) -> list[Span]:
    """Every secret in `text` as (start, end, kind), sorted, not overlapping;
    where two rules overlap the first one's kind is kept and the span widened.
    Results are cached by text: history and passages recur from request to request."""
    return list(_find_cached(text)) if cached and len(text) < 200_000 else _find(text)


@functools.lru_cache(maxsize=1024)
def _find_cached(text: str) -> tuple[Span, ...]:
    return tuple(_find(text))


def _find(text: str) -> list[Span]:
    detectors, entropy, heuristic = _detect_secrets()
    found: list[Span] = []
    # A key block spans many lines: searched in the whole text, when present.
    if "PRIVATE KEY" in text:
        found += [(m.start(), m.end(), "private_key") for m in _PRIVATE_KEY.finditer(text)]
    if "PuTTY-User-Key-File" in text:
        found += [(m.start(), m.end(), "private_key") for m in _SSH_PUTTY.finditer(text)]
    suspect = _Lines(text, _suspect_offsets(text))
    if suspect.text:
        t = suspect.text
        own: list[Span] = []
        for kind, hints, pattern in _provider_patterns():
            if any(h in t for h in hints):
                own += [(m.start(), m.end(), kind) for m in pattern.finditer(t)]
        own += [(m.start("v"), m.end("v"), "url_password") for m in _URL_PASSWORD.finditer(t)]
        own += [(m.start("v"), m.end("v"), "auth_header") for m in _AUTH_HEADER.finditer(t)]
        found += suspect.spans(own)
    named = _Lines(text, _keyword_offsets(text))
    if named.text:
        found += named.spans(_assignment_spans(named.text, heuristic))
    if suspect.text:
        found += suspect.spans(_detect_secrets_spans(suspect.text, detectors))
        found += suspect.spans(_entropy_spans(suspect.text, entropy, heuristic))
        both = set(suspect.starts) & set(named.starts)
        if both:
            lines = _Lines(text, both)
            found += lines.spans(_detect_secrets_spans(lines.text, detectors, named=True))
    return _merge(found)


_LITERAL = re.compile(r"[A-Za-z0-9_\-]{2,}")


@functools.cache
def _provider_patterns() -> tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...]:
    """Each pattern with the literals one of which any match must contain
    (its leading fixed text), found from the pattern itself."""
    out = []
    for kind, source in _PROVIDER_KEYS:
        body = source.removeprefix("\\b")
        if body.startswith("(?:") and body.index(")") > 0:
            alternatives = body[3:body.index(")")].split("|")
        else:
            alternatives = [body]
        hints = []
        for alt in alternatives:
            m = _LITERAL.match(alt.replace("\\.", "."))
            hints.append(m.group(0) if m else "")
        if not all(hints):
            hints = [""]
        out.append((kind, tuple(hints), re.compile(source)))
    return tuple(out)


def _merge(spans: list[Span]) -> list[Span]:
    """Overlapping spans become one; its kind is that of the rule found first."""
    ranked = sorted(((s, e, k, i) for i, (s, e, k) in enumerate(spans) if s < e),
                    key=lambda t: t[0])
    merged: list[list[Any]] = []
    for start, end, kind, rank in ranked:
        if merged and start < merged[-1][1]:
            last = merged[-1]
            last[1] = max(last[1], end)
            if rank < last[3]:
                last[2], last[3] = kind, rank
            continue
        merged.append([start, end, kind, rank])
    return [(s, e, k) for s, e, k, _ in merged]


_SEPARATOR = "\n\n"


def find_secrets_many(texts: Sequence[str]) -> list[list[Span]]:
    """`find_secrets` for several texts at once (one search over all of them,
    far cheaper than one per text); no span crosses from one text to the next."""
    starts: list[int] = []
    pos = 0
    for text in texts:
        starts.append(pos)
        pos += len(text) + len(_SEPARATOR)
    out: list[list[Span]] = [[] for _ in texts]
    for start, end, kind in find_secrets(_SEPARATOR.join(texts)):
        i = bisect.bisect_right(starts, start) - 1
        local_start = start - starts[i]
        size = len(texts[i])
        if local_start < size:
            out[i].append((local_start, min(end - starts[i], size), kind))
    return out


def apply(text: str, spans: Sequence[Span], counts: Counter[str] | None = None) -> str:
    out: list[str] = []
    pos = 0
    for start, end, kind in spans:
        out.append(text[pos:start])
        out.append(f"[REDACTED {kind}]")
        if counts is not None:
            counts[kind] += 1
        pos = end
    out.append(text[pos:])
    return "".join(out)


def redact(text: str, counts: Counter[str] | None = None, cached: bool = True) -> str:
    """`text` with every secret found replaced; `counts` gains one per secret by kind."""
    if not text:
        return text
    spans = find_secrets(text, cached)
    return apply(text, spans, counts) if spans else text


# -- known secrets (the keys Hearth itself holds) ---------------------------------------

_known: set[str] = set()
_known_lock = threading.Lock()
_known_pattern: re.Pattern[str] | None = None


def remember_secret(value: str | None) -> None:
    """Redact `value` wherever it appears from now on (an API key Hearth read
    from the keyring or the environment), whatever it looks like."""
    global _known_pattern
    if not value or len(value) < 4:
        return
    with _known_lock:
        if value in _known:
            return
        _known.add(value)
        _known_pattern = re.compile("|".join(
            re.escape(v) for v in sorted(_known, key=len, reverse=True)))


def redact_known(text: str, counts: Counter[str] | None = None) -> str:
    pattern = _known_pattern
    if pattern is None:
        return text

    def one(m: re.Match[str]) -> str:
        if counts is not None:
            counts["api_key"] += 1
        return "[REDACTED api_key]"

    return pattern.sub(one, text)


def redact_all(text: str, counts: Counter[str] | None = None, cached: bool = True) -> str:
    """Known secrets first, then everything `find_secrets` finds."""
    return redact(redact_known(text, counts), counts, cached)


# -- the gate --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outbound:
    """A prompt ready to leave the machine, and what was taken out of it."""

    plan: PromptPlan
    redactions: dict[str, int]
    local_only_dropped: int
    # Earlier messages not sent because they hold local-only text.
    history_withheld: int = 0


def _withhold_history(history: Sequence[ChatMessage]) -> tuple[tuple[ChatMessage, ...], int]:
    """History without local-only messages; the question a withheld answer
    replied to goes too, so turns still alternate."""
    drop: set[int] = set()
    for i, m in enumerate(history):
        if not m.local_only:
            continue
        drop.add(i)
        if m.role == "assistant" and i > 0 and history[i - 1].role == "user":
            drop.add(i - 1)
        elif m.role == "user" and i + 1 < len(history) and history[i + 1].role == "assistant":
            drop.add(i + 1)
    kept = tuple(m for i, m in enumerate(history) if i not in drop)
    return kept, len(drop)


def _split_secrets(chunks: Sequence[ContextChunk]) -> dict[int, list[Span]]:
    """Passages that continue one another in the same file are also searched
    as one text, so a secret cut in two by the passage boundary is found and
    redacted on both sides."""
    spans: dict[int, list[Span]] = {}
    by_file: dict[str, list[int]] = {}
    for i, c in enumerate(chunks):
        by_file.setdefault(c.path, []).append(i)
    for indexes in by_file.values():
        indexes.sort(key=lambda i: (chunks[i].page or 0, chunks[i].start_line or 0))
        for a, b in itertools.pairwise(indexes):
            ca, cb = chunks[a], chunks[b]
            if ca.end_line is None or cb.start_line is None or ca.page != cb.page:
                continue
            if cb.start_line > ca.end_line + 1:
                continue
            for sep in ("", "\n"):
                joined = ca.text + sep + cb.text
                cut = len(ca.text)
                for start, end, kind in find_secrets(joined):
                    if start < cut < end + len(sep):
                        spans.setdefault(a, []).append((start, cut, kind))
                        spans.setdefault(b, []).append((0, max(0, end - cut - len(sep)), kind))
    return spans


def prepare_outbound(plan: PromptPlan, redact_secrets: bool = True) -> Outbound:
    """Drop local-only passages and the messages that quote them, then redact
    secrets everywhere in the prompt."""
    kept = tuple(c for c in plan.context if not c.local_only)
    dropped = len(plan.context) - len(kept)
    history, withheld = _withhold_history(plan.history)
    counts: Counter[str] = Counter()
    if not redact_secrets:
        return Outbound(replace(plan, history=history, context=kept), {}, dropped, withheld)
    texts = [redact_known(t, counts) for t in
             (plan.system, *(m.content for m in history), plan.question,
              *(c.text for c in kept))]
    spans = find_secrets_many(texts)
    first_chunk = 2 + len(history)
    for i, extra in _split_secrets(
            [replace(c, text=t) for c, t in zip(kept, texts[first_chunk:], strict=True)]
    ).items():
        spans[first_chunk + i] = _merge(spans[first_chunk + i] + extra)
    clean = [apply(t, s, counts) if s else t for t, s in zip(texts, spans, strict=True)]
    plan = replace(
        plan,
        system=clean[0],
        history=tuple(ChatMessage(m.role, t) for m, t in zip(history, clean[1:], strict=False)),
        question=clean[1 + len(history)],
        context=tuple(replace(c, text=t) for c, t in zip(kept, clean[first_chunk:],
                                                         strict=True)),
    )
    return Outbound(plan, dict(sorted(counts.items())), dropped, withheld)
