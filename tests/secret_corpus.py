"""Seeded corpora for redaction: secrets of many kinds, each inside a line of
the kind of file it is usually found in, and ordinary prose and code with no
secrets at all.

The secrets are made up here from a fixed seed (shaped like the real ones,
valid for nothing), so no real credential is stored in the repository.
"""

from __future__ import annotations

import base64
import json
import random
import string
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"


@dataclass(frozen=True)
class Seeded:
    kind: str
    text: str  # the line or block as it appears in a file
    secret: str  # what must never leave the machine


def _r(rng: random.Random, chars: str, n: int) -> str:
    return "".join(rng.choice(chars) for _ in range(n))


def _jwt(rng: random.Random) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    head = part({"alg": "HS256", "typ": "JWT"})
    body = part({"sub": _r(rng, string.digits, 10), "name": "Ada", "iat": 1700000000})
    return f"{head}.{body}.{_r(rng, ALNUM + '-_', 43)}"


def _pem(rng: random.Random, label: str) -> tuple[str, str]:
    body = "\n".join(_r(rng, B64, 64) for _ in range(6))
    block = f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"
    return block, body


def secrets(seed: int = 12) -> list[Seeded]:
    """At least fifty kinds of secret, each in a realistic line."""
    rng = random.Random(seed)
    r = lambda chars, n: _r(rng, chars, n)  # noqa: E731
    out: list[Seeded] = []

    def add(kind: str, template: str, secret: str) -> None:
        out.append(Seeded(kind, template.replace("{s}", secret), secret))

    add("aws_access_key", "aws_access_key_id = {s}", "AKIA" + r(UPPER_DIGITS, 16))
    add("aws_secret_key", "aws_secret_access_key = {s}", r(B64, 40))
    add("aws_session_key", "AWS_SESSION_ACCESS_KEY_ID={s}", "ASIA" + r(UPPER_DIGITS, 16))
    add("github_classic", "git clone https://github.com/acme/app # token {s}",
        "ghp_" + r(ALNUM, 36))
    add("github_fine_grained", "GITHUB_TOKEN={s}", "github_pat_" + r(ALNUM + "_", 82))
    add("github_oauth", "oauth: {s}", "gho_" + r(ALNUM, 36))
    add("github_app", "installation token {s} expires in an hour", "ghs_" + r(ALNUM, 36))
    add("gitlab_pat", "export GITLAB_TOKEN={s}", "glpat-" + r(ALNUM + "_-", 20))
    add("slack_bot", "SLACK_BOT_TOKEN: {s}", "xoxb-" + r(string.digits, 12) + "-"
        + r(string.digits, 13) + "-" + r(ALNUM, 24))
    add("slack_user", "The token was {s} until we rotated it.", "xoxp-" + r(string.digits, 12)
        + "-" + r(string.digits, 12) + "-" + r(string.digits, 13) + "-" + r(HEX, 32))
    add("slack_webhook", "webhook_url = {s}", "https://hooks.slack.com/services/T"
        + r(UPPER_DIGITS, 8) + "/B" + r(UPPER_DIGITS, 8) + "/" + r(ALNUM, 24))
    add("stripe_live_secret", "stripe.api_key = \"{s}\"", "sk_live_" + r(ALNUM, 24))
    add("stripe_restricted", "STRIPE_KEY={s}", "rk_live_" + r(ALNUM, 24))
    add("openai_project", "OPENAI_API_KEY={s}", "sk-proj-" + r(ALNUM + "-_", 48))
    add("openai_legacy", "client = OpenAI(api_key=\"{s}\")", "sk-" + r(ALNUM, 20) + "T3BlbkFJ"
        + r(ALNUM, 20))
    add("anthropic", "ANTHROPIC_API_KEY={s}", "sk-ant-api03-" + r(ALNUM + "-_", 93) + "AA")
    add("google_api", "maps key: {s}", "AIza" + r(ALNUM + "-_", 35))
    add("google_oauth_secret", "\"client_secret\": \"{s}\",", "GOCSPX-" + r(ALNUM + "-_", 28))
    add("huggingface", "huggingface-cli login --token {s}", "hf_" + r(ALNUM, 34))
    add("groq", "GROQ_API_KEY={s}", "gsk_" + r(ALNUM, 52))
    add("replicate", "REPLICATE_API_TOKEN={s}", "r8_" + r(ALNUM, 37))
    add("perplexity", "Use {s} for the search API.", "pplx-" + r(ALNUM, 48))
    add("xai", "XAI_API_KEY={s}", "xai-" + r(ALNUM, 80))
    add("jwt", "Authorization header was eyJ... full: {s}", _jwt(rng))
    rsa, rsa_body = _pem(rng, "RSA PRIVATE KEY")
    add("rsa_private_key", "{s}", rsa)
    out[-1] = Seeded("rsa_private_key", rsa, rsa_body)
    ssh, ssh_body = _pem(rng, "OPENSSH PRIVATE KEY")
    out.append(Seeded("openssh_private_key", f"id_ed25519:\n{ssh}\n", ssh_body))
    ec, ec_body = _pem(rng, "EC PRIVATE KEY")
    out.append(Seeded("ec_private_key", ec, ec_body))
    pgp, pgp_body = _pem(rng, "PGP PRIVATE KEY BLOCK")
    out.append(Seeded("pgp_private_key", pgp, pgp_body))
    add("postgres_url", "DATABASE_URL=postgres://app:{s}@db.internal:5432/app",
        r(ALNUM, 14))
    add("mongodb_url", "mongodb+srv://admin:{s}@cluster0.example.net/test", r(ALNUM, 10))
    add("redis_url_short", "redis://default:{s}@cache:6379/0", r(string.ascii_lowercase, 6))
    add("db_password_env", "DB_PASSWORD={s}", r(ALNUM, 9))
    add("postgres_password_env", "POSTGRES_PASSWORD={s}", "hunter" + r(string.digits, 2))
    add("mysql_root_password", "  MYSQL_ROOT_PASSWORD: {s}", r(string.ascii_lowercase, 7))
    add("short_password", "password: {s}", r(ALNUM, 5))
    add("passphrase_words", "passphrase = {s}", "correct horse battery staple")
    add("quoted_multiword_password", '{"user": "ada", "password": "{s}"}',
        "my dog has fleas 42")
    add("yaml_quoted_password", "  password: '{s}'", "open sesame please")
    add("ini_password", "pwd = {s}", r(ALNUM + "!#%", 12))
    add("properties_password", "spring.datasource.password={s}", r(ALNUM, 16))
    add("netrc_like", "db password: {s}", r(ALNUM, 11))
    add("client_secret", "CLIENT_SECRET = \"{s}\"", r(ALNUM, 32))
    add("twilio", "TWILIO_API_KEY={s}", "SK" + r(HEX, 32))
    add("sendgrid", "sendgrid key {s}", "SG." + r(ALNUM + "-_", 22) + "." + r(ALNUM + "-_", 43))
    add("npm", "//registry.npmjs.org/:_authToken={s}", "npm_" + r(ALNUM, 36))
    add("pypi", "password = {s}", "pypi-AgEIcHlwaS5vcmc" + r(ALNUM + "-_", 60))
    add("discord_bot", "DISCORD_TOKEN={s}", r("MN", 1) + r(ALNUM, 23) + "." + r(ALNUM + "-_", 6)
        + "." + r(ALNUM + "-_", 27))
    add("telegram_bot", "bot = Bot('{s}')", r(string.digits, 9) + ":AA" + r(ALNUM + "_-", 33))
    add("mailchimp", "mailchimp: {s}", r(HEX, 32) + "-us" + r(string.digits, 2))
    add("square", "SQUARE_SECRET={s}", "sq0csp-" + r(ALNUM + "-_", 43))
    add("azure_storage", "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={s};"
        "EndpointSuffix=core.windows.net", r(B64, 86) + "==")
    add("ibm_cloud_iam", "ibm_cloud_iam_key = \"{s}\"", r(ALNUM + "-_", 44))
    add("artifactory", "artifactory_key: {s}", "AKC" + r(ALNUM, 70))
    add("bearer_header", "curl -H \"Authorization: Bearer {s}\" https://api.example.com",
        r(ALNUM, 40))
    add("basic_header", "Authorization: Basic {s}",
        base64.b64encode(f"ada:{r(ALNUM, 10)}".encode()).decode())
    add("digitalocean", "DO_TOKEN={s}", "dop_v1_" + r(HEX, 64))
    add("shopify", "shopify access token {s}", "shpat_" + r(HEX, 32))
    add("atlassian", "JIRA_TOKEN={s}", "ATATT3" + r(ALNUM + "_-", 180))
    add("linear", "linear: {s}", "lin_api_" + r(ALNUM, 40))
    add("notion", "NOTION_TOKEN={s}", "ntn_" + r(ALNUM, 46))
    add("age_key", "# age key\n{s}", "AGE-SECRET-KEY-1" + r(UPPER_DIGITS, 58))
    add("sentry", "SENTRY_AUTH_TOKEN={s}", "sntrys_" + r(ALNUM, 60))
    add("doppler", "doppler token {s}", "dp.st.dev." + r(ALNUM, 40))
    add("generic_random", "Use this key for the staging API: {s}", r(ALNUM, 32))
    add("hex_key", "api_key = {s}", r(HEX, 40))
    add("non_ascii_password", "password: {s}", "pässwörd-Ünïcode-7")
    add("spaced_api_key", "api_key = \"{s}\"", "clé secrète 42 ünïcode")
    add("session_secret", "SESSION_SECRET='{s}'", r(ALNUM, 24))
    add("signing_key", "signing_key: {s}", r(ALNUM, 28))
    add("connection_string_password", "Server=db;Database=app;User Id=sa;Password={s};",
        r(ALNUM, 12))
    return out


# -- ordinary text ----------------------------------------------------------------------

_STDLIB_MODULES = ("textwrap", "argparse", "json/__init__", "csv", "shutil", "pathlib",
                   "logging/__init__", "calendar", "difflib", "fractions", "statistics",
                   "tomllib/_parser", "zipfile/__init__", "http/server", "email/utils",
                   "configparser", "urllib/parse", "inspect", "dataclasses", "enum")


def ordinary_passages(lines_per_passage: int = 30) -> list[str]:
    """Ordinary prose and code with no secrets: Hearth's README, docs and
    sources (less the redaction code and its tests) and a set of modules
    of Python's standard library, cut into passages like the index does."""
    files = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").rglob("*.md"))]
    files += [p for p in sorted((REPO / "app").rglob("*.py"))
              if p.name not in ("privacy.py", "secrets.py")]
    stdlib = Path(sys.modlib if hasattr(sys, "modlib") else Path(json.__file__).parent.parent)
    files += [stdlib / f"{name}.py" for name in _STDLIB_MODULES]
    passages: list[str] = []
    for path in files:
        if not path.is_file():
            continue
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for i in range(0, len(lines), lines_per_passage):
            chunk = "\n".join(lines[i:i + lines_per_passage]).strip()
            if chunk:
                passages.append(chunk)
    return passages
