"""The model catalog: the models Hearth offers to download
(`app/resources/catalog.toml`), with a user's `catalog.toml` in the config folder merged over it.

Every entry is validated when the file is read; a bad entry is named with the
field that is wrong. A broken shipped catalog is a bug and raises; a broken
user entry is left out with a warning, so a typo never hides the catalog.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from app.bundled import resource
from app.core.errors import HearthError
from app.paths import Paths

CATALOG_FILE = resource("catalog.toml")
USER_CATALOG_NAME = "catalog.toml"
UNKNOWN = "unknown"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class CatalogError(HearthError):
    reason = "bad_catalog"


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name: str
    family: str
    parameters: float  # billions
    quantization: str
    file: str
    urls: tuple[str, ...]
    sha256: str | None  # None: no published checksum ("unknown" in the file)
    size_bytes: int
    context_length: int
    license: str
    good_for: str
    bundled: bool = False
    layers: int | None = None
    heads: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None


# name -> (type, required)
_FIELDS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "name": (str, True),
    "family": (str, True),
    "parameters": ((int, float), True),
    "quantization": (str, True),
    "file": (str, True),
    "urls": (list, True),
    "sha256": (str, True),
    "size_bytes": (int, True),
    "context_length": (int, True),
    "license": (str, True),
    "good_for": (str, True),
    "bundled": (bool, False),
    "layers": (int, False),
    "heads": (int, False),
    "kv_heads": (int, False),
    "head_dim": (int, False),
}


def parse_entry(model_id: str, raw: Any, source: Path | Traversable) -> CatalogEntry:
    """One entry, checked field by field; CatalogError names the entry and field."""
    where = f"{source}: model {model_id!r}"
    if not _ID.fullmatch(model_id):
        raise CatalogError(f"{where}: the id may only hold lower-case letters, digits, "
                           "'.', '_' and '-'.")
    if not isinstance(raw, dict):
        raise CatalogError(f"{where} is not a table of fields.")
    for name, (kind, required) in _FIELDS.items():
        if name not in raw:
            if required:
                raise CatalogError(f"{where} has no {name!r} field.")
            continue
        value = raw[name]
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise CatalogError(f"{where}: {name!r} has the wrong type ({value!r}).")
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise CatalogError(f"{where}: unknown field {unknown[0]!r}.")
    sha = raw["sha256"].strip().lower()
    if sha != UNKNOWN and not _SHA256.fullmatch(sha):
        raise CatalogError(f"{where}: 'sha256' must be 64 hex digits or \"unknown\".")
    urls = raw["urls"]
    if not all(isinstance(u, str) and u.startswith(("https://", "http://")) for u in urls):
        raise CatalogError(f"{where}: every entry of 'urls' must be an http(s) address.")
    bundled = bool(raw.get("bundled", False))
    if not urls and not bundled:
        raise CatalogError(f"{where} has no download address in 'urls'.")
    if raw["size_bytes"] <= 0 or raw["context_length"] <= 0:
        raise CatalogError(f"{where}: 'size_bytes' and 'context_length' must be positive.")
    file = raw["file"]
    if "/" in file or "\\" in file or not file.endswith(".gguf"):
        raise CatalogError(f"{where}: 'file' must be a plain file name ending in .gguf.")
    return CatalogEntry(
        id=model_id, name=raw["name"], family=raw["family"],
        parameters=float(raw["parameters"]), quantization=raw["quantization"], file=file,
        urls=tuple(urls), sha256=None if sha == UNKNOWN else sha,
        size_bytes=raw["size_bytes"], context_length=raw["context_length"],
        license=raw["license"], good_for=raw["good_for"], bundled=bundled,
        layers=raw.get("layers"), heads=raw.get("heads"), kv_heads=raw.get("kv_heads"),
        head_dim=raw.get("head_dim"),
    )


def _read(path: Path | Traversable) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"The catalog {path} could not be read: {exc}.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"The catalog {path} is not valid TOML: {exc}.") from exc
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise CatalogError(f"The catalog {path} has no [models.ID] tables.")
    return models


@dataclass
class Catalog:
    entries: dict[str, CatalogEntry]
    warnings: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, model_id: str) -> CatalogEntry:
        try:
            return self.entries[model_id]
        except KeyError:
            raise CatalogError(
                f"There is no model {model_id!r} in the catalog; `hearth models list` "
                "shows them all.", reason="unknown_model") from None

    def bundled(self) -> CatalogEntry | None:
        return next((e for e in self if e.bundled), None)

    def by_file(self, name: str) -> CatalogEntry | None:
        return next((e for e in self if e.file == name), None)


def load_catalog(paths: Paths | None = None,
                 shipped: Path | Traversable = CATALOG_FILE) -> Catalog:
    """The shipped catalog with the user's merged over it (same id: the user's
    fields win; a new id must have every field)."""
    base = _read(shipped)
    entries = {mid: parse_entry(mid, raw, shipped) for mid, raw in base.items()}
    warnings: list[str] = []
    if paths is not None:
        user = paths.config_dir / USER_CATALOG_NAME
        try:
            extra = _read(user)
        except CatalogError as exc:
            return Catalog(entries, [f"{exc} Using the shipped catalog only."])
        for mid, raw in extra.items():
            merged = {**base.get(mid, {}), **raw} if isinstance(raw, dict) else raw
            try:
                entries[mid] = parse_entry(mid, merged, user)
            except CatalogError as exc:
                warnings.append(f"{exc} The entry is left out.")
    return Catalog(entries, warnings)
