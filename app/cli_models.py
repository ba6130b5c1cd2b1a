"""`hearth models …`: the catalog, downloads, imports and which model is used.

    hearth models list [--json]        installed and available models, size, fit
    hearth models pull ID              download (resumes; Ctrl+C pauses)
    hearth models import FILE [--link] add a local .gguf
    hearth models remove ID            delete a downloaded or imported model
    hearth models use ID [--force]     make it the model Hearth answers with
    hearth models info ID [--json]     everything known about one model
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import TYPE_CHECKING, Any

from app.cli_common import EXIT_INTERRUPTED, EXIT_OK, fail

if TYPE_CHECKING:  # the core is imported when a command runs, for a quick start-up
    from app.core.models.catalog import Catalog
    from app.core.models.library import ModelRow
    from app.paths import Paths
    from app.settings import Settings

GB = 1024**3


def add_parsers(sub: Any) -> None:
    models = sub.add_parser("models", help="model catalog: list, pull, import, remove, use, info")
    msub = models.add_subparsers(dest="action", required=True, parser_class=type(models))
    lst = msub.add_parser("list", help="installed and available models with size and fit")
    lst.add_argument("--json", action="store_true")
    pull = msub.add_parser("pull", help="download a catalog model (resumes; Ctrl+C pauses)")
    pull.add_argument("id")
    imp = msub.add_parser("import", help="add a local .gguf file to Hearth's models")
    imp.add_argument("file")
    imp.add_argument("--link", action="store_true",
                     help="link to the file where it is instead of copying it")
    rm = msub.add_parser("remove", help="delete a downloaded or imported model")
    rm.add_argument("id")
    use = msub.add_parser("use", help="answer with this model from now on")
    use.add_argument("id")
    use.add_argument("--force", action="store_true",
                     help="use it even if Hearth estimates that it will not fit in memory")
    info = msub.add_parser("info", help="everything known about one model")
    info.add_argument("id")
    info.add_argument("--json", action="store_true")


def _size(n: int) -> str:
    return f"{n / GB:.2f} GB" if n >= GB / 10 else f"{n / 1024**2:.0f} MB"


def cmd_models(args: argparse.Namespace) -> int:
    from app.core.errors import HearthError
    from app.core.models.catalog import load_catalog
    from app.paths import get_paths
    from app.settings import Settings

    paths = get_paths()
    settings = Settings.load(paths)
    for warning in settings.warnings:
        print(f"hearth: warning: {warning}", file=sys.stderr)
    try:
        catalog = load_catalog(paths)
        for warning in catalog.warnings:
            print(f"hearth: warning: {warning}", file=sys.stderr)
        handler = {"list": _list, "pull": _pull, "import": _import, "remove": _remove,
                   "use": _use, "info": _info}[args.action]
        return handler(args, paths, settings, catalog)
    except HearthError as exc:
        return fail(str(exc))


def _row_dict(row: ModelRow) -> dict[str, Any]:
    e, fit = row.entry, row.fit
    return {
        "id": row.id, "name": row.name, "state": row.state, "current": row.current,
        "installed": row.installed is not None,
        "path": str(row.installed.path) if row.installed else None,
        "source": row.installed.source if row.installed else "catalog",
        "size_bytes": row.size_bytes, "partial_bytes": row.partial_bytes,
        "family": e.family if e else None, "parameters_b": e.parameters if e else None,
        "quantization": e.quantization if e else None,
        "context_length": e.context_length if e else None,
        "license": e.license if e else None, "good_for": e.good_for if e else None,
        "sha256": (e.sha256 or "unknown") if e else None,
        "urls": list(e.urls) if e else [],
        "fit": {"verdict": fit.verdict, "needed_bytes": fit.ram_needed,
                "weights_bytes": fit.weights, "kv_cache_bytes": fit.kv_cache,
                "compute_bytes": fit.compute, "context": fit.n_ctx,
                "ram_free_bytes": fit.ram_free, "vram_free_bytes": fit.vram_free,
                "gpu_layers": fit.gpu_layers, "summary": fit.summary()},
    }


def _list(args: argparse.Namespace, paths: Paths, settings: Settings, catalog: Catalog) -> int:
    from app.core.models.library import overview

    rows = overview(paths, catalog, settings)
    if args.json:
        print(json.dumps([_row_dict(r) for r in rows], indent=2))
        return EXIT_OK
    print(f"{'':2}{'ID':<16}{'NAME':<38}{'SIZE':>10}  {'STATE':<18}FIT")
    for r in rows:
        mark = "*" if r.current else " "
        state = r.state if not r.partial_bytes else (
            f"{r.partial_bytes / r.size_bytes:.0%} downloaded")
        print(f"{mark:2}{r.id:<16}{r.name[:37]:<38}{_size(r.size_bytes):>10}  {state:<18}"
              f"{r.fit.verdict} ({r.fit.ram_needed / GB:.1f} of {r.fit.ram_free / GB:.1f} GB)")
    print("\n* in use.  `hearth models info ID` shows the numbers; "
          "`hearth models pull ID` downloads.")
    return EXIT_OK


def _pull(args: argparse.Namespace, paths: Paths, settings: Settings, catalog: Catalog) -> int:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from app.core.models.download import DownloadControl, DownloadStopped, download
    from app.core.models.library import find_installed, models_dir

    entry = catalog.get(args.id)
    if entry.bundled:
        print(f"{entry.name} comes with Hearth; nothing to download.")
        return EXIT_OK
    control = DownloadControl()
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda *_: control.pause())
    tty = sys.stderr.isatty()
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), TimeRemainingColumn(), transient=False,
                   disable=not tty)
    task = bar.add_task(entry.name, total=entry.size_bytes)
    said: set[str] = set()

    def on_progress(p: Any) -> None:
        bar.update(task, completed=p.done)
        if p.state in ("waiting", "retrying", "verifying") and (
                p.state != "retrying" or p.message not in said):
            said.add(p.message)
            bar.console.print(f"{p.state}: {p.message}" if p.message else f"{p.state}…")

    try:
        with bar:
            result = download(entry, models_dir(paths),
                              offline_setting=settings.snapshot().network.offline,
                              control=control, on_progress=on_progress)
    except DownloadStopped:
        print(f"Paused {entry.name}; run `hearth models pull {entry.id}` again to resume.",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
    check = (f"sha256 verified ({result.sha256[:12]}…)" if result.verified
             else f"NOT verified: {result.note}")
    resumed = f", resumed at {_size(result.resumed_from)}" if result.resumed_from else ""
    print(f"Downloaded {entry.name} to {result.path} ({check}{resumed}).")
    model = find_installed(paths, catalog, entry.id)
    fit = _row_fit(paths, settings, catalog, model.id)
    print(f"Fit: {fit}. Use it with `hearth models use {entry.id}`.")
    return EXIT_OK


def _row_fit(paths: Paths, settings: Settings, catalog: Catalog, model_id: str) -> str:
    from app.core.models.library import overview

    row = next(r for r in overview(paths, catalog, settings) if r.id == model_id)
    return row.fit.summary()


def _import(args: argparse.Namespace, paths: Paths, settings: Settings, catalog: Catalog) -> int:
    from pathlib import Path

    from app.core.models.library import import_model

    model = import_model(paths, catalog, Path(args.file), link=args.link)
    info = model.info
    how = "linked" if model.linked else "copied"
    print(f"Imported {model.name} as {model.id} ({how}: {model.path}).")
    print(f"  architecture {info.get('architecture')}, {info.get('quantization')}, "
          f"context {info.get('context_length')}, chat template "
          f"{'yes' if info.get('chat_template') else 'NO'}")
    for warning in model.warnings:
        print(f"hearth: warning: {warning}", file=sys.stderr)
    print(f"Use it with `hearth models use {model.id}`.")
    return EXIT_OK


def _remove(args: argparse.Namespace, paths: Paths, settings: Settings, catalog: Catalog) -> int:
    from app.core.models.library import remove

    model = remove(paths, catalog, args.id, settings.snapshot().model.path)
    what = "forgot the link to" if model.linked else "deleted"
    print(f"Removed {model.name} ({what} {model.path}).")
    return EXIT_OK


def _use(args: argparse.Namespace, paths: Paths, settings: Settings, catalog: Catalog) -> int:
    from app.core.models.library import find_installed, overview
    from app.settings import Key

    model = find_installed(paths, catalog, args.id)
    row = next(r for r in overview(paths, catalog, settings) if r.id == model.id)
    if not row.fit.fits and not args.force:
        return fail(f"{model.name} will not fit: {row.fit.summary()}. Choose a smaller model, "
                     f"lower model.context_size, or use --force to load it anyway.")
    settings.set(Key.MODEL_PATH, "" if model.source == "bundled" else str(model.path))
    settings.set(Key.MODEL_IGNORE_FIT, bool(args.force and not row.fit.fits))
    print(f"Hearth now answers with {model.name} ({row.fit.summary()}).")
    for warning in model.warnings:
        print(f"hearth: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _info(args: argparse.Namespace, paths: Paths, settings: Settings, catalog: Catalog) -> int:
    from app.core.models.library import inspect_gguf, overview

    rows = {r.id: r for r in overview(paths, catalog, settings)}
    if args.id not in rows:
        catalog.get(args.id)  # raises the "no such model" sentence
    row = rows[args.id]
    data = _row_dict(row)
    if row.installed is not None:
        gguf = inspect_gguf(row.installed.path)
        data["gguf"] = {"architecture": gguf.architecture, "name": gguf.name,
                        "context_length": gguf.context_length,
                        "quantization": gguf.quantization, "chat_template": gguf.chat_template,
                        "layers": gguf.block_count}
        data["warnings"] = list(gguf.warnings)
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    e = row.entry
    lines = [f"{row.name} ({row.id}) — {row.state}"]
    if e is not None:
        lines += [f"  {e.family}, {e.parameters:g} B parameters, {e.quantization}, trained "
                  f"context {e.context_length:,} tokens, licence {e.license}",
                  f"  good for: {e.good_for}",
                  f"  file {e.file}, {row.size_bytes:,} bytes, sha256 {e.sha256 or 'unknown'}"]
        lines += [f"  from {u}" for u in e.urls]
    if row.installed is not None:
        lines.append(f"  installed at {row.installed.path}")
        g = data["gguf"]
        template = "yes" if g["chat_template"] else "NO"
        lines.append(f"  GGUF: {g['architecture']}, {g['quantization']}, context "
                     f"{g['context_length']}, chat template {template}")
    lines.append(f"  fit at context {row.fit.n_ctx:,}: {row.fit.summary()}")
    print("\n".join(lines))
    for warning in data.get("warnings", []):
        print(f"hearth: warning: {warning}", file=sys.stderr)
    return EXIT_OK


HANDLERS = {"models": cmd_models}
