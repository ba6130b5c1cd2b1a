"""Hearth's settings, typed: generated from the declarations in app/settings.py
by `python -m app.settings_codegen`. Do not edit; a test fails when it is stale.

Read settings through `Settings.snapshot()` (a `SettingsSnapshot`, immutable,
taken at the moment it is asked for); write and subscribe with a `Key`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, cast

KnowledgeChromaMode = Literal["embedded", "server"]
LoggingLevel = Literal["debug", "info", "warning", "error"]
UiTheme = Literal["system", "light", "dark"]


class Key(StrEnum):
    """A setting's name, for Settings.set and Settings.subscribe."""

    MODEL_PATH = "model.path"
    MODEL_CONTEXT_SIZE = "model.context_size"
    MODEL_THREADS = "model.threads"
    MODEL_GPU_LAYERS = "model.gpu_layers"
    MODEL_BATCH_SIZE = "model.batch_size"
    MODEL_IGNORE_FIT = "model.ignore_fit"
    MODELS_KEEP_DOWNLOADING_IN_TRAY = "models.keep_downloading_in_tray"
    GENERATION_MAX_TOKENS = "generation.max_tokens"
    GENERATION_TEMPERATURE = "generation.temperature"
    GENERATION_TOP_P = "generation.top_p"
    GENERATION_REPEAT_PENALTY = "generation.repeat_penalty"
    GENERATION_SYSTEM_PROMPT = "generation.system_prompt"
    GENERATION_PROMPT = "generation.prompt"
    KNOWLEDGE_MAX_FILE_MB = "knowledge.max_file_mb"
    KNOWLEDGE_RECONCILE_MINUTES = "knowledge.reconcile_minutes"
    KNOWLEDGE_DEBOUNCE_MS = "knowledge.debounce_ms"
    KNOWLEDGE_TOP_K = "knowledge.top_k"
    KNOWLEDGE_MMR = "knowledge.mmr"
    KNOWLEDGE_MIN_RELEVANCE = "knowledge.min_relevance"
    KNOWLEDGE_EMBED_THREADS = "knowledge.embed_threads"
    KNOWLEDGE_CHROMA_MODE = "knowledge.chroma_mode"
    KNOWLEDGE_CHROMA_URL = "knowledge.chroma_url"
    NETWORK_OFFLINE = "network.offline"
    ROUTING_POLICY = "routing.policy"
    ROUTING_TTFT_TIMEOUT_S = "routing.ttft_timeout_s"
    ROUTING_READING_ALLOWANCE = "routing.reading_allowance"
    ROUTING_STALL_TIMEOUT_S = "routing.stall_timeout_s"
    ROUTING_HEAVY_PROMPT_TOKENS = "routing.heavy_prompt_tokens"
    ROUTING_REMOTE_FALLBACK = "routing.remote_fallback"
    ROUTING_RETRIES = "routing.retries"
    ROUTING_MAX_ANSWER_S = "routing.max_answer_s"
    ROUTING_BREAKER_FAILURES = "routing.breaker_failures"
    ROUTING_BREAKER_COOLDOWN_S = "routing.breaker_cooldown_s"
    PRIVACY_REDACT_SECRETS = "privacy.redact_secrets"
    CACHE_ENABLED = "cache.enabled"
    CACHE_MIN_SIMILARITY = "cache.min_similarity"
    LOGGING_LEVEL = "logging.level"
    LOGGING_MAX_MB = "logging.max_mb"
    LOGGING_BACKUPS = "logging.backups"
    UI_THEME = "ui.theme"
    UI_CLOSE_TO_TRAY = "ui.close_to_tray"
    UI_QUICK_ASK_SHORTCUT = "ui.quick_ask_shortcut"
    UI_START_MINIMISED = "ui.start_minimised"
    UI_START_AT_LOGIN = "ui.start_at_login"


@dataclass(frozen=True)
class ModelSettings:
    """The model.* settings."""

    #: GGUF model file to use; empty means the bundled SmolLM2-135M-Instruct.
    path: str = ""

    #: Context window in tokens (0 = the model's trained length).
    context_size: int = 4096

    #: CPU threads for generation (0 = one per physical core).
    threads: int = 0

    #: Layers offloaded to the GPU (-1 = as many as fit in free VRAM when the build supports
    #: offload, else 0).
    gpu_layers: int = -1

    #: Tokens evaluated per batch while reading the prompt.
    batch_size: int = 512

    #: Load the model even when Hearth estimates that it will not fit in free memory.
    ignore_fit: bool = False


@dataclass(frozen=True)
class ModelsSettings:
    """The models.* settings."""

    #: Model downloads go on while the window is closed to the tray; otherwise they pause and
    #: resume at the next start.
    keep_downloading_in_tray: bool = False


@dataclass(frozen=True)
class GenerationSettings:
    """The generation.* settings."""

    #: Most tokens in one answer.
    max_tokens: int = 512

    #: Sampling temperature (0 = always the likeliest token).
    temperature: float = 0.7

    #: Nucleus sampling: keep the likeliest tokens up to this probability.
    top_p: float = 0.95

    #: Local model: how strongly to avoid repeating recent words (1 = not at all).
    repeat_penalty: float = 1.1

    #: Instructions given to the model before every conversation (empty = the instructions of the
    #: prompt in generation.prompt).
    system_prompt: str = ""

    #: The versioned prompt (ID@VERSION, e.g. hearth-answer@2) that frames instructions and
    #: passages from your files; empty = the newest default.
    prompt: str = ""


@dataclass(frozen=True)
class KnowledgeSettings:
    """The knowledge.* settings."""

    #: Files larger than this many megabytes are not indexed.
    max_file_mb: int = 20

    #: While watching, rescan folders this often for changes that were missed (0 = only at start-
    #: up).
    reconcile_minutes: int = 10

    #: Wait this long after a file stops changing before indexing it.
    debounce_ms: int = 300

    #: Passages from your files given to the model with each question.
    top_k: int = 6

    #: Reorder the files found to prefer varied ones over near-duplicates (MMR).
    mmr: bool = False

    #: Passages less similar to the question than this (cosine, 0 to 1) are not given to the model;
    #: 0 gives the best ones always.
    min_relevance: float = 0.35

    #: CPU threads for embedding (0 = one per physical core, at most 8).
    embed_threads: int = 0

    #: Where the vector index lives: embedded (in the data folder) or server.
    chroma_mode: KnowledgeChromaMode = "embedded"

    #: The Chroma server's address, used when knowledge.chroma_mode is server.
    chroma_url: str = "http://localhost:8000"


@dataclass(frozen=True)
class NetworkSettings:
    """The network.* settings."""

    #: Offline mode: nothing is sent over the network.
    offline: bool = False


@dataclass(frozen=True)
class RoutingSettings:
    """The routing.* settings."""

    #: Who answers: auto (the local model, then the remote providers in order), local-only, remote-
    #: first, or the name of one configured provider.
    policy: str = "auto"

    #: Seconds to wait for the local model's first token before falling back (only when a remote
    #: provider can take over).
    ttft_timeout_s: float = 20.0

    #: While the local model is still reading a long prompt, it may take up to this many times
    #: routing.ttft_timeout_s longer before falling back (0 = none).
    reading_allowance: float = 5.0

    #: Seconds the local model may go without a new token mid-answer before falling back.
    stall_timeout_s: float = 10.0

    #: Prompts longer than this many tokens go to the heavy remote model first (0 = never).
    heavy_prompt_tokens: int = 0

    #: Allow remote providers at all; false means nothing is ever sent to one.
    remote_fallback: bool = True

    #: Retries of a remote request after a 429, a server error or a network error.
    retries: int = 2

    #: Seconds a remote provider may take for one whole answer before Hearth stops reading it and
    #: moves on.
    max_answer_s: float = 300.0

    #: Failures in a row after which a remote provider is skipped for a while.
    breaker_failures: int = 3

    #: Seconds a remote provider that keeps failing is skipped.
    breaker_cooldown_s: float = 60.0


@dataclass(frozen=True)
class PrivacySettings:
    """The privacy.* settings."""

    #: Redact keys, tokens and passwords from everything sent to a remote provider.
    redact_secrets: bool = True


@dataclass(frozen=True)
class CacheSettings:
    """The cache.* settings."""

    #: A question close enough to an earlier one, over the same files, model, prompt and route,
    #: gets the earlier answer at once (marked so, with Ask again).
    enabled: bool = True

    #: How close (cosine of the questions' embeddings, 0.5 to 1) a question must be to an earlier
    #: one to get its answer; higher serves fewer paraphrases.
    min_similarity: float = 0.93


@dataclass(frozen=True)
class LoggingSettings:
    """The logging.* settings."""

    #: How much Hearth writes to its log files (the HEARTH_LOG_LEVEL environment variable wins);
    #: only debug writes long texts such as passages in full.
    level: LoggingLevel = "info"

    #: A log file is rotated when it reaches this size, in MB.
    max_mb: int = 2

    #: Rotated log files kept beside each log (hearth.log.1 …).
    backups: int = 3


@dataclass(frozen=True)
class UiSettings:
    """The ui.* settings."""

    #: Window colours.
    theme: UiTheme = "system"

    #: Closing the window keeps Hearth running in the system tray.
    close_to_tray: bool = True

    #: System-wide shortcut for the quick-ask popup (needs the optional pynput package and X11,
    #: Windows or macOS; empty = off).
    quick_ask_shortcut: str = "<ctrl>+<alt>+space"

    #: Start with the window hidden: Hearth waits in the system tray (where there is one; otherwise
    #: the window starts minimised).
    start_minimised: bool = False

    #: Start Hearth when you log in (an XDG autostart entry on Linux; not yet on Windows or macOS).
    start_at_login: bool = False


@dataclass(frozen=True)
class SettingsSnapshot:
    """Every setting at one moment; the defaults when built with no arguments."""

    model: ModelSettings = field(default_factory=ModelSettings)
    models: ModelsSettings = field(default_factory=ModelsSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    knowledge: KnowledgeSettings = field(default_factory=KnowledgeSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    ui: UiSettings = field(default_factory=UiSettings)

    @classmethod
    def from_values(cls, v: Mapping[str, bool | int | float | str]) -> SettingsSnapshot:
        """Built from validated values by key (Settings holds them so)."""
        return cls(
            model=ModelSettings(
                path=_str(v["model.path"]),
                context_size=_int(v["model.context_size"]),
                threads=_int(v["model.threads"]),
                gpu_layers=_int(v["model.gpu_layers"]),
                batch_size=_int(v["model.batch_size"]),
                ignore_fit=_bool(v["model.ignore_fit"]),
            ),
            models=ModelsSettings(
                keep_downloading_in_tray=_bool(v["models.keep_downloading_in_tray"]),
            ),
            generation=GenerationSettings(
                max_tokens=_int(v["generation.max_tokens"]),
                temperature=_float(v["generation.temperature"]),
                top_p=_float(v["generation.top_p"]),
                repeat_penalty=_float(v["generation.repeat_penalty"]),
                system_prompt=_str(v["generation.system_prompt"]),
                prompt=_str(v["generation.prompt"]),
            ),
            knowledge=KnowledgeSettings(
                max_file_mb=_int(v["knowledge.max_file_mb"]),
                reconcile_minutes=_int(v["knowledge.reconcile_minutes"]),
                debounce_ms=_int(v["knowledge.debounce_ms"]),
                top_k=_int(v["knowledge.top_k"]),
                mmr=_bool(v["knowledge.mmr"]),
                min_relevance=_float(v["knowledge.min_relevance"]),
                embed_threads=_int(v["knowledge.embed_threads"]),
                chroma_mode=cast(KnowledgeChromaMode, _str(v["knowledge.chroma_mode"])),
                chroma_url=_str(v["knowledge.chroma_url"]),
            ),
            network=NetworkSettings(
                offline=_bool(v["network.offline"]),
            ),
            routing=RoutingSettings(
                policy=_str(v["routing.policy"]),
                ttft_timeout_s=_float(v["routing.ttft_timeout_s"]),
                reading_allowance=_float(v["routing.reading_allowance"]),
                stall_timeout_s=_float(v["routing.stall_timeout_s"]),
                heavy_prompt_tokens=_int(v["routing.heavy_prompt_tokens"]),
                remote_fallback=_bool(v["routing.remote_fallback"]),
                retries=_int(v["routing.retries"]),
                max_answer_s=_float(v["routing.max_answer_s"]),
                breaker_failures=_int(v["routing.breaker_failures"]),
                breaker_cooldown_s=_float(v["routing.breaker_cooldown_s"]),
            ),
            privacy=PrivacySettings(
                redact_secrets=_bool(v["privacy.redact_secrets"]),
            ),
            cache=CacheSettings(
                enabled=_bool(v["cache.enabled"]),
                min_similarity=_float(v["cache.min_similarity"]),
            ),
            logging=LoggingSettings(
                level=cast(LoggingLevel, _str(v["logging.level"])),
                max_mb=_int(v["logging.max_mb"]),
                backups=_int(v["logging.backups"]),
            ),
            ui=UiSettings(
                theme=cast(UiTheme, _str(v["ui.theme"])),
                close_to_tray=_bool(v["ui.close_to_tray"]),
                quick_ask_shortcut=_str(v["ui.quick_ask_shortcut"]),
                start_minimised=_bool(v["ui.start_minimised"]),
                start_at_login=_bool(v["ui.start_at_login"]),
            ),
        )


DEFAULTS = SettingsSnapshot()


def _bool(value: object) -> bool:
    assert isinstance(value, bool), value
    return value


def _int(value: object) -> int:
    assert isinstance(value, int) and not isinstance(value, bool), value
    return value


def _float(value: object) -> float:
    assert isinstance(value, int | float) and not isinstance(value, bool), value
    return float(value)


def _str(value: object) -> str:
    assert isinstance(value, str), value
    return value
