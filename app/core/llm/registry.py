"""The configured remote providers (`providers.toml` in the config folder) and
the price table (`app/resources/prices.toml`; a `prices.toml` in the config
folder overrides it).

Provider records hold no keys: those live in the keyring (`app.core.secrets`).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import tomli_w

from app.atomic import write_text_atomic
from app.bundled import resource
from app.core.errors import HearthError
from app.core.llm.provider import Capabilities
from app.paths import Paths

KINDS = ("openai", "anthropic")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,39}$")
RESERVED = ("local", "auto", "local-only", "remote-first")
PRICES_FILE = resource("prices.toml")


class ProviderConfigError(HearthError):
    reason = "invalid_request"


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    kind: str
    base_url: str
    model: str
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to wait for the first token before moving on to the next provider.
    timeout_s: float = 30.0
    # Requests judged heavy (long prompts, "deep") go to heavy providers first.
    heavy: bool = False
    # Overrides for what the price table says (0 / None: use the table).
    context_window: int = 0
    vision: bool | None = None
    # Seconds one whole answer may take (None: the routing.max_answer_s setting).
    max_answer_s: float | None = None

    def validate(self) -> ProviderConfig:
        if not NAME_RE.match(self.name) or self.name in RESERVED:
            raise ProviderConfigError(
                f"{self.name!r} cannot be a provider name; use lowercase letters, digits, "
                "'-' or '_' (and not local, auto, local-only or remote-first)."
            )
        if self.kind not in KINDS:
            raise ProviderConfigError(
                f"The provider kind must be openai or anthropic; got {self.kind!r}."
            )
        url = urlparse(self.base_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ProviderConfigError(
                f"{self.base_url!r} is not a web address; give one like "
                "https://api.openai.com/v1."
            )
        if not self.model.strip():
            raise ProviderConfigError("The model name is empty; give one with --model.")
        if not 0 < self.timeout_s <= 3600:
            raise ProviderConfigError("The timeout must be between 0 and 3600 seconds.")
        if self.max_answer_s is not None and not 0 < self.max_answer_s <= 86400:
            raise ProviderConfigError(
                "The longest answer time (max_answer_s) must be between 0 and 86400 seconds.")
        for key in self.headers:
            if key.lower() in ("authorization", "x-api-key", "api-key"):
                raise ProviderConfigError(
                    f"The header {key} would put a key in providers.toml; store keys with "
                    f"`hearth keys set {self.name}` instead."
                )
        return self


def providers_file(paths: Paths) -> Path:
    return paths.config_dir / "providers.toml"


def load_providers(paths: Paths) -> list[ProviderConfig]:
    """The configured providers, in fallback order."""
    path = providers_file(paths)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProviderConfigError(
            f"{path} could not be read ({exc}); fix or remove it."
        ) from exc
    out = []
    for i, raw in enumerate(data.get("provider", [])):
        try:
            out.append(ProviderConfig(**raw).validate())
        except TypeError as exc:
            raise ProviderConfigError(
                f"{path}: provider number {i + 1} has a field Hearth does not know ({exc})."
            ) from exc
    return out


def save_providers(paths: Paths, providers: list[ProviderConfig]) -> None:
    path = providers_file(paths)
    records = []
    for p in providers:
        record = {k: v for k, v in asdict(p).items() if v is not None}
        records.append(record)
    text = ("# Remote providers Hearth may fall back to, in order. Keys are not kept here:\n"
            "# they live in the OS keyring (`hearth keys set NAME`).\n\n"
            + tomli_w.dumps({"provider": records}))
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise ProviderConfigError(f"Cannot write {path}: {exc.strerror or exc}.") from exc


def add_provider(paths: Paths, config: ProviderConfig) -> None:
    config.validate()
    providers = load_providers(paths)
    if any(p.name == config.name for p in providers):
        raise ProviderConfigError(
            f"A provider called {config.name} already exists; remove it first."
        )
    save_providers(paths, [*providers, config])


def remove_provider(paths: Paths, name: str) -> None:
    providers = load_providers(paths)
    kept = [p for p in providers if p.name != name]
    if len(kept) == len(providers):
        raise unknown_provider(name, providers)
    save_providers(paths, kept)


def get_provider(paths: Paths, name: str) -> ProviderConfig:
    providers = load_providers(paths)
    for p in providers:
        if p.name == name:
            return p
    raise unknown_provider(name, providers)


def unknown_provider(name: str, providers: list[ProviderConfig]) -> ProviderConfigError:
    known = ", ".join(p.name for p in providers) or "none is set up yet"
    return ProviderConfigError(
        f"There is no provider called {name!r} (configured: {known}); "
        "`hearth providers add` sets one up."
    )


# -- prices and capabilities ------------------------------------------------------


def load_prices(paths: Paths | None = None) -> dict[str, dict[str, Any]]:
    """Model name -> {input, output, context, vision, tools}; the user's file wins."""
    table: dict[str, dict[str, Any]] = {}
    files: list[Traversable] = [PRICES_FILE]
    if paths is not None:
        files.append(paths.config_dir / "prices.toml")
    for path in files:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        for model, entry in data.get("models", {}).items():
            if isinstance(entry, dict):
                table.setdefault(model, {}).update(entry)
    return table


def capabilities_for(config: ProviderConfig, prices: dict[str, dict[str, Any]]) -> Capabilities:
    entry = prices.get(config.model, {})

    def num(key: str) -> float | None:
        value = entry.get(key)
        return float(value) if isinstance(value, int | float) else None

    context = config.context_window or int(entry.get("context", 0) or 0) or 8192
    vision = config.vision if config.vision is not None else bool(entry.get("vision", False))
    return Capabilities(
        max_context=context, vision=vision, tools=bool(entry.get("tools", False)), local=False,
        price_in_per_m=num("input"), price_out_per_m=num("output"),
    )


def cost_usd(caps: Capabilities, prompt_tokens: int, completion_tokens: int) -> float | None:
    if caps.price_in_per_m is None or caps.price_out_per_m is None:
        return None
    return (prompt_tokens * caps.price_in_per_m + completion_tokens * caps.price_out_per_m) / 1e6
