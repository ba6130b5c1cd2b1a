"""Redaction against the seeded corpora: every kind of secret caught, and
ordinary prose and code left (almost) alone."""

from __future__ import annotations

from collections import Counter

from app.core.privacy import detector_names, find_secrets, redact, redact_known, remember_secret
from tests.secret_corpus import ordinary_passages, secrets


def test_every_seeded_kind_is_caught() -> None:
    seeded = secrets()
    assert len({s.kind for s in seeded}) >= 50
    missed = [(s.kind, s.text) for s in seeded if s.secret in redact(s.text)]
    assert missed == []


def test_hearth_rules_cover_what_detect_secrets_leaves_out() -> None:
    cases = {
        "DB_PASSWORD=hunter22": "hunter22",
        "password: abc12": "abc12",  # five characters
        "passphrase = correct horse battery staple": "correct horse battery staple",
        'password = "my dog has fleas"': "my dog has fleas",
        "  MYSQL_ROOT_PASSWORD: swordfish": "swordfish",
        "password: pässwörd Ünïcode 7": "pässwörd Ünïcode 7",
    }
    for text, secret in cases.items():
        out = redact(text)
        assert secret not in out and "[REDACTED password]" in out, (text, out)
        assert all(word not in out for word in secret.split() if len(word) > 3), out


def test_detect_secrets_rule_set_is_in_use() -> None:
    names = detector_names()
    assert {"aws_access_key", "github_token", "slack_token", "stripe_access_key",
            "json_web_token", "twilio_api_key", "sendgrid_api_key"} <= set(names)
    twilio = "SK" + "0123456789abcdef" * 2
    assert find_secrets(f"TWILIO={twilio}")  # a detect-secrets rule, not one of Hearth's


def test_code_that_names_secrets_is_not_a_secret() -> None:
    for text in ("password = os.environ['DB_PASSWORD']", "token = tokenizer.encode(text)",
                 "def login(user: str, password: str) -> None:",
                 "api_key = settings.api_key", "password: ${DB_PASSWORD}",
                 "The password is required to log in.", "passages = '\\n'.join(parts)"):
        counts: Counter[str] = Counter()
        assert redact(text, counts) == text and not counts, text


def test_ordinary_prose_and_code_has_few_false_positives() -> None:
    passages = ordinary_passages()
    assert len(passages) > 1000
    flagged = [p for p in passages if find_secrets(p)]
    assert len(flagged) / len(passages) <= 0.005, flagged[:5]


def test_keys_hearth_holds_are_redacted_whatever_their_shape() -> None:
    remember_secret("plainwordsonlykey")
    assert redact_known("the server said: plainwordsonlykey is wrong") == (
        "the server said: [REDACTED api_key] is wrong")
