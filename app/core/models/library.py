"""The models on this computer: the bundled one, catalog downloads in the
models folder, and imported `.gguf` files (copied or linked), plus choosing
which one Hearth uses.

Imports are checked with llama.cpp's own `gguf` reader (architecture, context
length, quantisation, chat template) and with llama.cpp itself (can this build
load the architecture at all?) before they are listed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.atomic import write_text_atomic
from app.core.errors import HearthError, ModelLoadError
from app.core.models.catalog import Catalog, CatalogEntry
from app.core.models.files import (
    GGUF_MAGIC,
    GiB,
    bundled_model_path,
    check_model_file,
    read_metadata,
)
from app.core.models.fit import FitEstimate, Shape, estimate
from app.paths import Paths

log = logging.getLogger(__name__)

MANIFEST = "imported.json"


class LibraryError(HearthError):
    reason = "model_library"


def models_dir(paths: Paths) -> Path:
    return paths.data_dir / "models"


# -- what a GGUF file says ----------------------------------------------------------


@dataclass(frozen=True)
class GgufInfo:
    architecture: str
    name: str
    context_length: int | None
    quantization: str
    chat_template: bool
    block_count: int | None
    head_count: int | None
    head_count_kv: int | None
    head_dim: int | None
    warnings: tuple[str, ...] = ()


def inspect_gguf(path: Path) -> GgufInfo:
    """Read a GGUF file's header with llama.cpp's `gguf` package; one clear
    sentence when it is not a GGUF model file or is damaged."""
    check_model_file(path)
    import gguf

    try:
        reader = gguf.GGUFReader(str(path), "r")
    except Exception as exc:  # the reader raises ValueError, IndexError, OSError...
        raise ModelLoadError(
            f"{path.name} is damaged or truncated: its GGUF header cannot be read.") from exc

    def field_value(key: str) -> Any:
        f = reader.fields.get(key)
        if f is None:
            return None
        try:
            return f.contents()
        except Exception:  # noqa: BLE001  a damaged field reads as absent, whatever numpy raises
            return None

    arch = str(field_value("general.architecture") or "unknown")

    def num(key: str) -> int | None:
        value = field_value(f"{arch}.{key}")
        return int(value) if isinstance(value, int | float) else None

    file_type = field_value("general.file_type")
    try:
        quant = gguf.LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_")
    except (TypeError, ValueError):
        quant = "unknown"
    heads = num("attention.head_count")
    embd = num("embedding_length")
    head_dim = num("attention.key_length") or (embd // heads if embd and heads else None)
    template = bool(field_value("tokenizer.chat_template"))
    warnings = () if template else (
        f"{path.name} has no chat template: Hearth formats conversations the ChatML way, "
        "which this model may not understand (answers can be garbled).",)
    return GgufInfo(
        architecture=arch, name=str(field_value("general.name") or path.stem),
        context_length=num("context_length"), quantization=quant, chat_template=template,
        block_count=num("block_count"), head_count=heads,
        head_count_kv=num("attention.head_count_kv") or heads, head_dim=head_dim,
        warnings=warnings)


def check_loadable(path: Path, info: GgufInfo) -> None:
    """Ask llama.cpp itself (vocabulary only, no weights) whether this build
    knows the architecture."""
    try:
        read_metadata(path)
    except ModelLoadError as exc:
        raise ModelLoadError(
            f"{path.name} is a GGUF model of architecture {info.architecture!r}, which this "
            "llama.cpp build cannot load; a newer Hearth (llama.cpp) may support it.",
            reason="unsupported_architecture") from exc


# -- installed models ---------------------------------------------------------------


@dataclass(frozen=True)
class InstalledModel:
    id: str
    name: str
    path: Path
    size_bytes: int
    source: str  # bundled, catalog, import
    entry: CatalogEntry | None = None
    linked: bool = False
    warnings: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

    def shape(self) -> Shape:
        e = self.entry
        if e is not None and e.layers:
            return Shape(self.size_bytes, e.layers, e.heads, e.kv_heads, e.head_dim)
        i = self.info
        return Shape(self.size_bytes, i.get("block_count"), i.get("head_count"),
                     i.get("head_count_kv"), i.get("head_dim"))


def _read_manifest(paths: Paths) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((models_dir(paths) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) \
        else {}


def _write_manifest(paths: Paths, data: dict[str, dict[str, Any]]) -> None:
    write_text_atomic(models_dir(paths) / MANIFEST, json.dumps(data, indent=2, sort_keys=True))


def installed(paths: Paths, catalog: Catalog) -> list[InstalledModel]:
    out: list[InstalledModel] = []
    bundled = bundled_model_path()
    entry = catalog.bundled()
    if bundled is not None and entry is not None:
        out.append(InstalledModel(entry.id, entry.name, bundled, bundled.stat().st_size,
                                  "bundled", entry))
    folder = models_dir(paths)
    for e in catalog:
        if e.bundled:
            continue
        path = folder / e.file
        if path.is_file():
            out.append(InstalledModel(e.id, e.name, path, path.stat().st_size, "catalog", e))
    for mid, rec in sorted(_read_manifest(paths).items()):
        path = Path(rec.get("path", ""))
        if mid in catalog.entries or not path.is_file():
            continue
        out.append(InstalledModel(mid, str(rec.get("name", mid)), path, path.stat().st_size,
                                  "import", None, bool(rec.get("linked")),
                                  tuple(rec.get("warnings", ())), dict(rec.get("info", {}))))
    return out


def find_installed(paths: Paths, catalog: Catalog, model_id: str) -> InstalledModel:
    for model in installed(paths, catalog):
        if model.id == model_id:
            return model
    if model_id in catalog.entries:
        raise LibraryError(f"{catalog.get(model_id).name} is not downloaded yet; "
                           f"`hearth models pull {model_id}` downloads it.",
                           reason="not_installed")
    raise LibraryError(f"There is no model {model_id!r}; `hearth models list` shows them all.",
                       reason="unknown_model")


def current(paths: Paths, catalog: Catalog, configured: str) -> InstalledModel | None:
    """The installed model `model.path` points at (None for a file outside the library)."""
    models = installed(paths, catalog)
    if not configured:
        return next((m for m in models if m.source == "bundled"), None)
    target = Path(configured).expanduser()
    for m in models:
        try:
            if m.path == target or m.path.resolve() == target.resolve():
                return m
        except OSError:
            continue
    return None


def fit_for(shape: Shape, n_ctx: int, n_batch: int = 512, **kw: Any) -> FitEstimate:
    return estimate(shape, n_ctx, n_batch=n_batch, **kw)


def entry_shape(entry: CatalogEntry) -> Shape:
    return Shape(entry.size_bytes, entry.layers, entry.heads, entry.kv_heads, entry.head_dim)


def context_for(n_ctx_setting: int, trained: int | None) -> int:
    """The context Hearth will load with (model.context_size; 0 = the trained length)."""
    if n_ctx_setting:
        return min(n_ctx_setting, trained) if trained else n_ctx_setting
    return trained or 4096


_SLUG = re.compile(r"[^a-z0-9._-]+")


def _slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-.")[:60] or "model"


def import_model(paths: Paths, catalog: Catalog, source: Path, *,
                 link: bool = False) -> InstalledModel:
    """Copy (or link) a local `.gguf` into the library after checking it."""
    source = source.expanduser().absolute()
    info = inspect_gguf(source)
    check_loadable(source, info)
    folder = models_dir(paths)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LibraryError(f"Hearth cannot write to the models folder {folder}: "
                           f"{exc.strerror or exc}.") from exc
    model_id = _slug(source.stem)
    existing = _read_manifest(paths)
    if model_id in catalog.entries or model_id in existing:
        prev = existing.get(model_id, {})
        if prev and Path(prev.get("path", "")) == (source if link else folder / source.name):
            model_id = model_id  # importing the same file again refreshes it
        else:
            n = 2
            while f"{model_id}-{n}" in catalog.entries or f"{model_id}-{n}" in existing:
                n += 1
            model_id = f"{model_id}-{n}"
    if link:
        target = source
    else:
        target = folder / source.name
        if target.exists() and not target.samefile(source):
            target = folder / f"{model_id}.gguf"
        if not target.exists():
            size = source.stat().st_size
            free = shutil.disk_usage(folder).free
            if size + 64 * 1024**2 > free:
                raise LibraryError(f"Copying {source.name} needs {size / GiB:.2f} GB on {folder} "
                                   f"but only {free / GiB:.2f} GB is free; free some space "
                                   "or import it with --link.", reason="disk_full")
            part = target.with_name(target.name + ".part")
            try:
                shutil.copyfile(source, part)
                with part.open("rb") as fh:
                    if fh.read(4) != GGUF_MAGIC:
                        raise LibraryError(f"The copy of {source.name} is damaged.")
                os.replace(part, target)
            except OSError as exc:
                part.unlink(missing_ok=True)
                raise LibraryError(f"Copying {source.name} into {folder} failed: "
                                   f"{exc.strerror or exc}.") from exc
    info_dict = {k: v for k, v in asdict(info).items() if k != "warnings"}
    existing[model_id] = {"path": str(target), "name": info.name, "linked": link,
                          "source": str(source), "warnings": list(info.warnings),
                          "info": info_dict}
    _write_manifest(paths, existing)
    return InstalledModel(model_id, info.name, target, target.stat().st_size, "import", None,
                          link, info.warnings, info_dict)


def remove(paths: Paths, catalog: Catalog, model_id: str, configured: str) -> InstalledModel:
    """Delete a downloaded or imported model (a linked file itself is kept)."""
    model = find_installed(paths, catalog, model_id)
    if model.source == "bundled":
        raise LibraryError(f"{model.name} comes with Hearth and cannot be removed.")
    now = current(paths, catalog, configured)
    if now is not None and now.id == model.id:
        raise LibraryError(f"{model.name} is the model in use; switch to another first "
                           "(`hearth models use ID`).", reason="in_use")
    manifest = _read_manifest(paths)
    try:
        if not model.linked:
            model.path.unlink(missing_ok=True)
    except OSError as exc:
        raise LibraryError(f"{model.path} could not be deleted: {exc.strerror or exc}.") from exc
    if model_id in manifest:
        del manifest[model_id]
        _write_manifest(paths, manifest)
    return model


# -- one row per model, for `hearth models list` and the Models dialog ---------------


@dataclass(frozen=True)
class ModelRow:
    id: str
    name: str
    size_bytes: int
    fit: FitEstimate
    entry: CatalogEntry | None
    installed: InstalledModel | None
    current: bool
    partial_bytes: int  # of a paused or interrupted download

    @property
    def state(self) -> str:
        if self.current:
            return "in use"
        if self.installed is not None:
            return "installed"
        return "partly downloaded" if self.partial_bytes else "available"


def overview(paths: Paths, catalog: Catalog, settings: Any,
             gpus: list[Any] | None = None, ram_free: int | None = None) -> list[ModelRow]:
    """Every catalog and imported model with its size, state and fit estimate."""
    from app.core.models.download import part_path
    from app.core.models.fit import available_ram, gpu_memory

    gpus = gpu_memory() if gpus is None else gpus
    ram = available_ram() if ram_free is None else ram_free
    here = {m.id: m for m in installed(paths, catalog)}
    model_settings = settings.snapshot().model
    now = current(paths, catalog, model_settings.path)
    n_ctx_setting = model_settings.context_size
    batch = model_settings.batch_size
    rows: list[ModelRow] = []
    for entry in catalog:
        model = here.get(entry.id)
        part = part_path(models_dir(paths), entry)
        partial = part.stat().st_size if part.exists() and model is None else 0
        shape = model.shape() if model is not None else entry_shape(entry)
        fit = estimate(shape, context_for(n_ctx_setting, entry.context_length), n_batch=batch,
                       ram_free=ram, gpus=gpus)
        rows.append(ModelRow(entry.id, entry.name, model.size_bytes if model else
                             entry.size_bytes, fit, entry, model,
                             now is not None and now.id == entry.id, partial))
    for model in here.values():
        if model.source != "import":
            continue
        fit = estimate(model.shape(), context_for(n_ctx_setting, model.info.get(
            "context_length")), n_batch=batch, ram_free=ram, gpus=gpus)
        rows.append(ModelRow(model.id, model.name, model.size_bytes, fit, None, model,
                             now is not None and now.id == model.id, 0))
    return rows


def best_fitting(rows: list[ModelRow]) -> ModelRow | None:
    """The largest catalog model that fits comfortably (the onboarding suggestion)."""
    from app.core.models.fit import FITS

    candidates = [r for r in rows if r.entry is not None and not r.entry.bundled
                  and r.fit.verdict == FITS]
    return max(candidates, key=lambda r: (r.entry.parameters if r.entry else 0, -r.size_bytes),
               default=None)
