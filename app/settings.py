"""Hearth's settings: each declared once (name, type, default, description),
stored as TOML in the config folder, validated when read and when changed.

A broken settings file never stops Hearth and is never overwritten: the bad
keys (or, for a file that is not TOML at all, every key) fall back to their
defaults and a warning names them.
"""

from __future__ import annotations

import contextlib
import math
import threading
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from app.atomic import write_text_atomic
from app.paths import Paths, get_paths
from app.settings_types import Key, SettingsSnapshot

__all__ = ["SETTINGS", "Key", "Setting", "Settings", "SettingsError", "SettingsSnapshot",
           "lookup"]

Value = bool | int | float | str


class SettingsError(ValueError):
    """A setting name or value was refused; the message says why in words."""


@dataclass(frozen=True)
class Setting:
    key: str
    type: type
    default: Value
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None

    def allowed(self) -> str:
        """The allowed values, in words, for error messages and `config list`."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.type is bool:
            return "true or false"
        if self.minimum is not None and self.maximum is not None:
            kind = "a whole number" if self.type is int else "a number"
            return f"{kind} from {_fmt(self.minimum)} to {_fmt(self.maximum)}"
        return "text" if self.type is str else self.type.__name__

    def validate(self, value: object) -> Value:
        """Return `value` as this setting's type, or raise SettingsError."""
        bad = SettingsError(f"{self.key} must be {self.allowed()}; got {value!r}.")
        if self.type is bool:
            if not isinstance(value, bool):
                raise bad
            return value
        checked: Value
        if self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad
            checked = value
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad
            checked = float(value)
            if not math.isfinite(checked):
                raise bad
        elif isinstance(value, str):  # self.type is str: the only other kind
            checked = value
        else:
            raise bad
        if self.choices is not None and checked not in self.choices:
            raise bad
        if isinstance(checked, int | float):
            if self.minimum is not None and checked < self.minimum:
                raise bad
            if self.maximum is not None and checked > self.maximum:
                raise bad
        return checked

    def parse(self, text: str) -> Value:
        """Parse a value typed on the command line, then validate it."""
        value: Any = text
        if self.type is bool:
            lowered = text.strip().lower()
            if lowered in ("true", "yes", "on", "1"):
                value = True
            elif lowered in ("false", "no", "off", "0"):
                value = False
        elif self.type in (int, float):
            with contextlib.suppress(ValueError):
                value = self.type(text.strip())
        return self.validate(value)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


DEFAULT_SYSTEM_PROMPT = (
    "You are Hearth, a helpful assistant that runs on the user's own computer. "
    "Answer clearly and concisely."
)

SETTINGS: tuple[Setting, ...] = (
    Setting("model.path", str, "",
            "GGUF model file to use; empty means the bundled SmolLM2-135M-Instruct."),
    Setting("model.context_size", int, 4096,
            "Context window in tokens (0 = the model's trained length).", 0, 262144),
    Setting("model.threads", int, 0,
            "CPU threads for generation (0 = one per physical core).", 0, 512),
    Setting("model.gpu_layers", int, -1,
            "Layers offloaded to the GPU (-1 = as many as fit in free VRAM when the build "
            "supports offload, else 0).", -1, 10000),
    Setting("model.batch_size", int, 512,
            "Tokens evaluated per batch while reading the prompt.", 1, 8192),
    Setting("model.ignore_fit", bool, False,
            "Load the model even when Hearth estimates that it will not fit in free memory."),
    Setting("models.keep_downloading_in_tray", bool, False,
            "Model downloads go on while the window is closed to the tray; otherwise they "
            "pause and resume at the next start."),
    Setting("generation.max_tokens", int, 512,
            "Most tokens in one answer.", 1, 65536),
    Setting("generation.temperature", float, 0.7,
            "Sampling temperature (0 = always the likeliest token).", 0.0, 2.0),
    Setting("generation.top_p", float, 0.95,
            "Nucleus sampling: keep the likeliest tokens up to this probability.", 0.0, 1.0),
    Setting("generation.repeat_penalty", float, 1.1,
            "Local model: how strongly to avoid repeating recent words (1 = not at all).",
            1.0, 2.0),
    Setting("generation.system_prompt", str, "",
            "Instructions given to the model before every conversation (empty = the "
            "instructions of the prompt in generation.prompt)."),
    Setting("generation.prompt", str, "",
            "The versioned prompt (ID@VERSION, e.g. hearth-answer@2) that frames "
            "instructions and passages from your files; empty = the newest default."),
    Setting("knowledge.max_file_mb", int, 20,
            "Files larger than this many megabytes are not indexed.", 1, 4096),
    Setting("knowledge.reconcile_minutes", int, 10,
            "While watching, rescan folders this often for changes that were missed "
            "(0 = only at start-up).", 0, 1440),
    Setting("knowledge.debounce_ms", int, 300,
            "Wait this long after a file stops changing before indexing it.", 0, 60000),
    Setting("knowledge.top_k", int, 6,
            "Passages from your files given to the model with each question.", 1, 50),
    Setting("knowledge.mmr", bool, False,
            "Reorder the files found to prefer varied ones over near-duplicates (MMR)."),
    Setting("knowledge.min_relevance", float, 0.35,
            "Passages less similar to the question than this (cosine, 0 to 1) are not given "
            "to the model; 0 gives the best ones always.", 0.0, 1.0),
    Setting("knowledge.embed_threads", int, 0,
            "CPU threads for embedding (0 = one per physical core, at most 8).", 0, 256),
    Setting("knowledge.chroma_mode", str, "embedded",
            "Where the vector index lives: embedded (in the data folder) or server.",
            choices=("embedded", "server")),
    Setting("knowledge.chroma_url", str, "http://localhost:8000",
            "The Chroma server's address, used when knowledge.chroma_mode is server."),
    Setting("network.offline", bool, False,
            "Offline mode: nothing is sent over the network."),
    Setting("routing.policy", str, "auto",
            "Who answers: auto (the local model, then the remote providers in order), "
            "local-only, remote-first, or the name of one configured provider."),
    Setting("routing.ttft_timeout_s", float, 20.0,
            "Seconds to wait for the local model's first token before falling back "
            "(only when a remote provider can take over).",
            0.01, 3600.0),
    Setting("routing.reading_allowance", float, 5.0,
            "While the local model is still reading a long prompt, it may take up to this "
            "many times routing.ttft_timeout_s longer before falling back (0 = none).",
            0.0, 1000.0),
    Setting("routing.stall_timeout_s", float, 10.0,
            "Seconds the local model may go without a new token mid-answer before "
            "falling back.", 0.01, 3600.0),
    Setting("routing.heavy_prompt_tokens", int, 0,
            "Prompts longer than this many tokens go to the heavy remote model "
            "first (0 = never).", 0, 10_000_000),
    Setting("routing.remote_fallback", bool, True,
            "Allow remote providers at all; false means nothing is ever sent to one."),
    Setting("routing.retries", int, 2,
            "Retries of a remote request after a 429, a server error or a network error.",
            0, 10),
    Setting("routing.max_answer_s", float, 300.0,
            "Seconds a remote provider may take for one whole answer before Hearth stops "
            "reading it and moves on.", 0.01, 86400.0),
    Setting("routing.breaker_failures", int, 3,
            "Failures in a row after which a remote provider is skipped for a while.", 1, 100),
    Setting("routing.breaker_cooldown_s", float, 60.0,
            "Seconds a remote provider that keeps failing is skipped.", 0.0, 86400.0),
    Setting("privacy.redact_secrets", bool, True,
            "Redact keys, tokens and passwords from everything sent to a remote provider."),
    Setting("cache.enabled", bool, True,
            "A question close enough to an earlier one, over the same files, model, prompt "
            "and route, gets the earlier answer at once (marked so, with Ask again)."),
    Setting("cache.min_similarity", float, 0.93,
            "How close (cosine of the questions' embeddings, 0.5 to 1) a question must be "
            "to an earlier one to get its answer; higher serves fewer paraphrases.",
            0.5, 1.0),
    Setting("logging.level", str, "info",
            "How much Hearth writes to its log files (the HEARTH_LOG_LEVEL environment "
            "variable wins); only debug writes long texts such as passages in full.",
            choices=("debug", "info", "warning", "error")),
    Setting("logging.max_mb", int, 2,
            "A log file is rotated when it reaches this size, in MB.", 1, 100),
    Setting("logging.backups", int, 3,
            "Rotated log files kept beside each log (hearth.log.1 …).", 0, 20),
    Setting("ui.theme", str, "system",
            "Window colours.", choices=("system", "light", "dark")),
    Setting("ui.close_to_tray", bool, True,
            "Closing the window keeps Hearth running in the system tray."),
    Setting("ui.quick_ask_shortcut", str, "<ctrl>+<alt>+space",
            "System-wide shortcut for the quick-ask popup (needs the optional pynput "
            "package and X11, Windows or macOS; empty = off)."),
    Setting("ui.start_minimised", bool, False,
            "Start with the window hidden: Hearth waits in the system tray (where there "
            "is one; otherwise the window starts minimised)."),
    Setting("ui.start_at_login", bool, False,
            "Start Hearth when you log in (an XDG autostart entry on Linux; not yet on "
            "Windows or macOS)."),
)

BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}


def lookup(key: str) -> Setting:
    try:
        return BY_KEY[key]
    except KeyError:
        raise SettingsError(
            f"There is no setting called {key!r}; `hearth config list` shows them all."
        ) from None


def _flatten(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, value in data.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            yield from _flatten(value, key + ".")
        else:
            yield key, value


class Settings:
    """Typed settings backed by `settings.toml`. Thread-safe."""

    def __init__(self, path: Path, values: dict[str, Value], warnings: list[str],
                 notice: str = "") -> None:
        self.path = path
        self._values = values
        self.warnings = warnings
        # The warnings as one line for the window, naming each key ("" if none).
        self.notice = notice
        self._lock = threading.Lock()
        self._listeners: dict[str, list[Callable[[Value], None]]] = {}
        self._snapshot: SettingsSnapshot | None = None

    @classmethod
    def load(cls, paths: Paths | None = None) -> Settings:
        path = (paths or get_paths()).settings_file
        values: dict[str, Value] = {s.key: s.default for s in SETTINGS}
        warnings: list[str] = []
        raw = _read_toml(path, warnings)
        # A file that cannot be read or parsed at all: its one warning, by file name.
        notice = path.name + warnings[0].removeprefix(str(path)) if warnings else ""
        bad: list[str] = []
        for key, value in _flatten(raw):
            setting = BY_KEY.get(key)
            if setting is None:
                warnings.append(f"{path}: unknown setting {key!r} is ignored.")
                bad.append(f"{key} is not a setting")
                continue
            try:
                values[key] = setting.validate(value)
            except SettingsError as exc:
                warnings.append(f"{path}: {exc} Using the default, {setting.default!r}.")
                bad.append(f"{key} must be {setting.allowed()} (got {value!r})")
        if bad:
            notice = (f"Hearth uses the defaults for settings in {path.name} it cannot use: "
                      f"{'; '.join(bad)} (`hearth config list` shows what is allowed).")
        return cls(path, values, warnings, notice)

    def snapshot(self) -> SettingsSnapshot:
        """Every setting, typed, as it is now (immutable: a later change makes a
        new snapshot and leaves this one as it was)."""
        with self._lock:
            if self._snapshot is None:
                self._snapshot = SettingsSnapshot.from_values(self._values)
            return self._snapshot

    def get(self, key: str) -> Value:
        """One value by its name as typed by a person (`hearth config get`, the
        settings dialog); code reads `snapshot()`."""
        lookup(key)
        with self._lock:
            return self._values[key]

    def items(self) -> list[tuple[Setting, Value]]:
        with self._lock:
            return [(s, self._values[s.key]) for s in SETTINGS]

    def override(self, key: str, value: Value) -> None:
        """Change a value for this process only (command-line flags)."""
        setting = lookup(key)
        with self._lock:
            self._values[key] = setting.validate(value)
            self._snapshot = None

    def set(self, key: str, value: Value | str, *, from_text: bool = False) -> Value:
        """Validate, store in settings.toml and notify listeners of `key`."""
        setting = lookup(key)
        checked = setting.parse(value) if from_text and isinstance(value, str) else (
            setting.validate(value))
        warnings: list[str] = []
        raw = _read_toml(self.path, warnings)
        if warnings:
            raise SettingsError(
                f"{self.path} could not be read, so it was left untouched; fix or remove it "
                f"first ({warnings[0]})"
            )
        section: dict[str, Any] = raw
        *parents, leaf = key.split(".")
        for name in parents:
            section = section.setdefault(name, {})
            if not isinstance(section, dict):
                raise SettingsError(f"{self.path}: {name!r} is not a table; fix the file first.")
        section[leaf] = checked
        _write_atomic(self.path, tomli_w.dumps(raw))
        with self._lock:
            self._values[key] = checked
            self._snapshot = None
            listeners = list(self._listeners.get(key, ()))
        for listener in listeners:
            listener(checked)
        return checked

    def subscribe(self, key: str, callback: Callable[[Value], None]) -> None:
        lookup(key)
        with self._lock:
            self._listeners.setdefault(key, []).append(callback)


def _read_toml(path: Path, warnings: list[str]) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        warnings.append(f"{path} could not be read ({exc}); using default settings.")
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        warnings.append(f"{path} is not valid TOML ({exc}); using default settings.")
        return {}


def _write_atomic(path: Path, text: str) -> None:
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise SettingsError(f"Cannot write settings to {path}: {exc.strerror or exc}.") from exc
