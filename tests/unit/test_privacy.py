"""The redaction pattern set: each kind of secret is caught, ordinary text is left alone."""

from __future__ import annotations

from collections import Counter

import pytest

from app.core.llm.registry import (
    ProviderConfig,
    ProviderConfigError,
    capabilities_for,
    cost_usd,
    load_prices,
)
from app.core.llm.remote import parse_retry_after
from app.core.privacy import redact

CASES = [
    ("anthropic_key", "key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    ("openai_key", "OPENAI=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"),
    ("github_token", "ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R"),
    ("aws_access_key", "id AKIAIOSFODNN7EXAMPLE here"),
    ("aws_secret_key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N"),
    ("url_password", "postgres://admin:s3cr3t-pw@db.internal:5432/app"),
    ("password", 'password: "correct-horse-battery"'),
    ("private_key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"),
    ("slack_token", "xoxb-1234567890-abcdefghij"),
    ("high_entropy_string", "token 9fQ2xL7pR4vT8kW1zN6bC3mJ5hD0gS2aY7eU4iO1"),
    ("password", "DB_PASSWORD=hunter2"),
    ("password", "passphrase = correct horse battery staple"),
]


@pytest.mark.parametrize(("kind", "text"), CASES)
def test_each_kind_is_redacted_and_counted(kind: str, text: str) -> None:
    counts: Counter[str] = Counter()
    out = redact(text, counts)
    assert f"[REDACTED {kind}]" in out and counts[kind] == 1, (out, counts)


def test_ordinary_text_is_left_alone() -> None:
    text = ("The quick brown fox read README.md at https://example.com/docs/page?id=42 "
            "and ran `pytest tests/unit -q` on commit a69d445; internationalization_config.")
    counts: Counter[str] = Counter()
    assert redact(text, counts) == text and not counts


def test_provider_records_are_validated() -> None:
    ok = ProviderConfig("groq", "openai", "https://api.groq.com/openai/v1", "m").validate()
    assert ok.name == "groq"
    for bad, words in [
        (ProviderConfig("Bad Name", "openai", "https://x/v1", "m"), "cannot be a provider name"),
        (ProviderConfig("x", "gemini", "https://x/v1", "m"), "must be openai or anthropic"),
        (ProviderConfig("x", "openai", "ftp://x", "m"), "is not a web address"),
        (ProviderConfig("x", "openai", "https://x", " "), "model name is empty"),
        (ProviderConfig("x", "openai", "https://x", "m", {"X-Api-Key": "k"}), "keys set x"),
    ]:
        with pytest.raises(ProviderConfigError, match=words):
            bad.validate()


def test_prices_give_capabilities_and_cost() -> None:
    caps = capabilities_for(ProviderConfig("o", "openai", "https://x", "gpt-4o-mini"),
                            load_prices())
    assert caps.max_context == 128000 and caps.vision and not caps.local
    assert cost_usd(caps, 1_000_000, 1_000_000) == pytest.approx(0.75)
    unknown = capabilities_for(ProviderConfig("o", "openai", "https://x", "mystery"), {})
    assert cost_usd(unknown, 10, 10) is None


def test_retry_after_forms() -> None:
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
