"""Real text for the knowledge benchmarks, found on this machine (no network):
Debian's package documentation, the Python standard library's sources and the
sources and docs of the packages installed in the virtualenv."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

ROOTS = ("/usr/share/doc", sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"])
TEXT_EXT = {".py", ".txt", ".md", ".rst", "", ".html", ".csv", ".json", ".cfg"}


def real_files(count: int, max_bytes: int = 4096, min_bytes: int = 200,
               exact: bool = True) -> list[Path]:
    """`count` real text files between min_bytes and max_bytes, in a stable order."""
    found: list[Path] = []
    for root in ROOTS:
        for dirpath, dirnames, filenames in os.walk(root):
            # The stdlib's own site-packages is the virtualenv's business.
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in (
                "__pycache__", "site-packages"))
            for name in sorted(filenames):
                p = Path(dirpath, name)
                if p.suffix not in TEXT_EXT or name.startswith(".") or p.is_symlink():
                    continue
                try:
                    size = p.stat().st_size
                    head = p.read_bytes()[:1024]
                except OSError:
                    continue
                if min_bytes <= size <= max_bytes and b"\0" not in head:
                    try:
                        head.decode("utf-8")
                    except UnicodeDecodeError:
                        continue
                    found.append(p)
                    if len(found) >= count:
                        return found
    if exact and len(found) < count:
        sys.exit(f"only {len(found)} real text files found on this machine; need {count}")
    return found


def copy_corpus(dest: Path, count: int, max_bytes: int = 4096) -> list[Path]:
    """Copy real files into `dest` with unique flat-ish names; returns the copies."""
    out = []
    for i, src in enumerate(real_files(count, max_bytes)):
        sub = dest / f"d{i // 100:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        suffix = src.suffix if src.suffix else ".txt"
        target = sub / f"{src.stem or 'file'}-{i}{suffix}"
        shutil.copyfile(src, target)
        out.append(target)
    return out


def real_chunks(count: int) -> list[str]:
    """Chunk texts made by Hearth's own chunker from real files."""
    from app.core.knowledge.base import shared_embedder
    from app.core.knowledge.chunker import chunk_document
    from app.core.knowledge.loaders import LoadError, load

    emb = shared_embedder()
    texts: list[str] = []
    for p in real_files(20000, max_bytes=64 * 1024, exact=False):
        try:
            doc = load(str(p), p.read_bytes())
        except LoadError:
            continue
        texts += [c.text for c in chunk_document(doc, emb)]
        if len(texts) >= count:
            return texts[:count]
    return texts
