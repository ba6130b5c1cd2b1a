"""`hearth doctor`: what this installation has and whether it works."""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any

from app import __version__
from app.core.errors import HearthError
from app.paths import Paths
from app.settings import Settings

GPU_BACKENDS = ("CUDA", "Metal", "Vulkan", "ROCm", "HIP", "SYCL", "OpenCL", "MUSA", "CANN")


def llama_build() -> dict[str, Any]:
    try:
        import llama_cpp
    except Exception as exc:  # noqa: BLE001  a broken or missing build is exactly what doctor reports
        return {"installed": False, "error": f"llama-cpp-python cannot be imported: {exc}"}
    info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace").strip()
    # system_info reads like "CPU : SSE3 = 1 | AVX = 1 | ... | OPENMP = 1 |".
    features = sorted(
        {name.split(":")[-1].strip() for name, _, value in
         (part.partition("=") for part in info.split("|")) if value.strip() == "1"}
    )
    backends = [b for b in GPU_BACKENDS if b.lower() in info.lower()]
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    return {
        "installed": True,
        "version": getattr(llama_cpp, "__version__", "unknown"),
        "backend": ", ".join(backends) if backends else "CPU",
        "gpu_offload": offload,
        "cpu_features": features,
        "system_info": info,
    }


def keyring_backend() -> dict[str, Any]:
    """Whether the OS keyring may hold API keys: the same rule `hearth keys
    set` applies (app.core.secrets), with what to do when it may not."""
    from app.core import secrets

    status = secrets.backend_status()
    note = status.note
    if not status.usable and "no OS keyring" in note:
        note += ("; install and unlock a Secret Service (e.g. GNOME Keyring or KWallet), or "
                 "use HEARTH_<PROVIDER>_API_KEY environment variables")
    return {"name": status.name, "usable": status.usable, "note": note}


def model_check(settings: Settings, model_path: str | None, load: bool) -> dict[str, Any]:
    from app.core.llm.local import LocalModelConfig, LocalProvider
    from app.core.models.files import check_model_file, read_metadata, resolve_model_path

    s = settings.snapshot()
    result: dict[str, Any] = {"configured": s.model.path or None}
    try:
        path = resolve_model_path(model_path or s.model.path)
        result["path"] = str(path)
        result["bundled"] = not (model_path or s.model.path)
        result["size_bytes"] = check_model_file(path)
        meta = read_metadata(path)
        result["name"] = meta.name
        result["architecture"] = meta.architecture
        result["context_length"] = meta.context_length
        result["chat_template"] = bool(meta.chat_template)
        if load:
            started = time.perf_counter()
            with LocalProvider(LocalModelConfig.from_settings(path, s)) as provider:
                loaded = provider.load()
            result["loads"] = True
            result["load_s"] = round(time.perf_counter() - started, 3)
            result["n_ctx"] = loaded.n_ctx
            result["gpu_layers"] = loaded.gpu_layers
            result["threads"] = loaded.threads
            result["offload"] = loaded.offload
            result["gpu_fallback"] = loaded.fallback
            result["fit"] = loaded.fit.summary() if loaded.fit else None
        result["ok"] = True
    except HearthError as exc:
        result["ok"] = False
        result["loads"] = False
        result["error"] = str(exc)
    return result


def dirs(paths: Paths) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in paths.as_dict().items():
        p = paths.__getattribute__(name)
        probe = p if p.exists() else next((q for q in p.parents if q.exists()), p)
        out[name] = {"path": value, "exists": p.exists(),
                     "writable": os.access(probe, os.W_OK)}
    out["HEARTH_HOME"] = os.environ.get("HEARTH_HOME")
    return out


def report(settings: Settings, paths: Paths, model_path: str | None = None,
           load: bool = True) -> dict[str, Any]:
    return {
        "hearth": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "llama_cpp": llama_build(),
        "model": model_check(settings, model_path, load),
        "dirs": dirs(paths),
        "keyring": keyring_backend(),
        "settings_file": str(paths.settings_file),
        "settings_warnings": list(settings.warnings),
        "logs": logs(settings, paths),
    }


def logs(settings: Settings, paths: Paths) -> dict[str, Any]:
    from app.logs import LOG_NAMES, log_files

    s = settings.snapshot().logging
    return {"dir": str(paths.log_dir), "names": list(LOG_NAMES),
            "files": [{"path": str(p), "bytes": p.stat().st_size} for p in log_files(paths)],
            "level": os.environ.get("HEARTH_LOG_LEVEL", s.level).lower(),
            "max_mb": s.max_mb, "backups": s.backups}
