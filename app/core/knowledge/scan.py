"""Which files of a watched folder are indexed: default skips (hidden
folders, .git, node_modules, virtualenvs, build output, binary types),
`.gitignore` files, and the folder's own include/exclude globs.

Symlinks are followed only while they stay inside the folder: a link whose
target lies outside it (another folder, perhaps a local-only one) is not
indexed as part of this folder, so a folder's rules always apply to the
files really in it."""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pathspec

from app.core.knowledge.loaders import kind_of
from app.core.knowledge.store import Folder

# Every spec here is built by GitIgnoreSpec.from_lines (gitignore rules).
_Spec = pathspec.GitIgnoreSpec

SKIP_DIRS = {
    "node_modules", "__pycache__", "venv", "env", "virtualenv", "site-packages",
    "bower_components", "__pypackages__", "build", "dist", "target", "_build", "out",
    "coverage", "htmlcov", "CVS",
}


@dataclass(frozen=True)
class Entry:
    path: str
    kind: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Problem:
    """A path that could not be looked at, and why."""

    path: str
    reason: str


def _spec(patterns: tuple[str, ...]) -> _Spec | None:
    return pathspec.GitIgnoreSpec.from_lines(patterns) if patterns else None


class FolderRules:
    def __init__(self, folder: Folder) -> None:
        self.root = folder.path
        self.real_root = os.path.realpath(folder.path)
        self.include = _spec(folder.include)
        self.exclude = _spec(folder.exclude)
        self._ignore_cache: dict[str, tuple[float, _Spec | None]] = {}

    # -- single paths (the watcher asks these) -----------------------------------

    def contains(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root.rstrip(os.sep) + os.sep)

    def never(self, path: str) -> bool:
        """True for paths that can never be indexed whatever their name (inside
        .git, node_modules, a hidden folder…); a cheap first filter for events."""
        if not self.contains(path) or path == self.root:
            return not self.contains(path)
        parts = os.path.relpath(path, self.root).split(os.sep)
        return any(p.startswith(".") or p in SKIP_DIRS or p.endswith(".egg-info")
                   for p in parts[:-1]) or parts[-1].startswith(".git")

    def dir_skipped(self, path: str) -> bool:
        name = os.path.basename(path)
        if name.startswith(".") or name in SKIP_DIRS or name.endswith(".egg-info"):
            return True
        # A virtualenv by any name.
        return os.path.exists(os.path.join(path, "pyvenv.cfg"))

    def leaves_folder(self, path: str) -> bool:
        """True when `path`, with every symlink on the way resolved, lies
        outside the folder (a link out of it): such a path is not indexed."""
        real = os.path.realpath(path)
        return not (real == self.real_root
                    or real.startswith(self.real_root.rstrip(os.sep) + os.sep))

    def wanted(self, path: str) -> str | None:
        """The loader kind for `path` if it is to be indexed, else None. Looks
        at the name (and the .gitignore files above it), not the content, and
        refuses paths that symlinks lead out of the folder."""
        if not self.contains(path) or path == self.root:
            return None
        if self.leaves_folder(path):
            return None
        rel = os.path.relpath(path, self.root)
        parts = rel.split(os.sep)
        if parts[-1].startswith("."):
            return None
        d = self.root
        for part in parts[:-1]:
            d = os.path.join(d, part)
            if self.dir_skipped(d):
                return None
        # .gitignore files from the root down to the file's own folder.
        d = self.root
        for i in range(len(parts)):
            spec = self._gitignore(d)
            if spec is not None and spec.match_file("/".join(parts[i:])):
                return None
            if i < len(parts) - 1:
                d = os.path.join(d, parts[i])
        return self._by_name(rel)

    def _by_name(self, rel: str) -> str | None:
        posix = rel.replace(os.sep, "/")
        if self.exclude is not None and self.exclude.match_file(posix):
            return None
        if self.include is not None and not self.include.match_file(posix):
            return None
        return kind_of(posix)

    def _gitignore(self, directory: str) -> _Spec | None:
        path = os.path.join(directory, ".gitignore")
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            self._ignore_cache.pop(directory, None)
            return None
        cached = self._ignore_cache.get(directory)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                spec: _Spec | None = pathspec.GitIgnoreSpec.from_lines(fh)
        except OSError:
            spec = None
        self._ignore_cache[directory] = (mtime, spec)
        return spec

    # -- the whole folder ----------------------------------------------------------

    def walk(self, under: str | None = None) -> Iterator[Entry | Problem]:
        """Every file to index under the root (or under one folder inside it),
        with its size and mtime."""
        if under is None or under == self.root:
            yield from self._walk(self.root, "", [], {os.path.realpath(self.root)})
            return
        if not self.contains(under) or self.wanted(os.path.join(under, "x.txt")) is None:
            return
        rel = os.path.relpath(under, self.root).replace(os.sep, "/")
        ignores: list[tuple[str, Any]] = []
        ancestors = {os.path.realpath(self.root)}
        d, parts = self.root, rel.split("/")
        for i, part in enumerate(parts):
            spec = self._gitignore(d)
            if spec is not None:
                ignores.append(("/".join(parts[:i]), spec))
            d = os.path.join(d, part)
            ancestors.add(os.path.realpath(d))
        yield from self._walk(under, rel, ignores, ancestors)

    # Complex on purpose: one directory walk with every way a path can fail.
    def _walk(self, directory: str, rel: str, ignores: list[tuple[str, Any]],  # noqa: C901
              ancestors: set[str]) -> Iterator[Entry | Problem]:
        spec = self._gitignore(directory)
        if spec is not None:
            ignores = [*ignores, (rel, spec)]
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except PermissionError:
            yield Problem(directory, "permission denied: the folder cannot be read")
            return
        except OSError as exc:
            yield Problem(directory, f"the folder cannot be read ({exc.strerror or exc})")
            return
        for e in entries:
            name = e.name
            if name.startswith("."):
                continue
            child_rel = f"{rel}/{name}" if rel else name
            try:
                is_dir = e.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if _ignored(ignores, child_rel, is_dir):
                continue
            if is_dir:
                if self.dir_skipped(e.path):
                    continue
                real = os.path.realpath(e.path)
                if real in ancestors:
                    yield Problem(e.path, "symlink loop: the folder links back to a folder "
                                          "above it, so it is not followed")
                    continue
                if e.is_symlink() and self.leaves_folder(e.path):
                    yield Problem(e.path, _OUTSIDE)
                    continue
                yield from self._walk(e.path, child_rel, ignores, ancestors | {real})
                continue
            kind = self._by_name(child_rel)
            if kind is None:
                continue
            try:
                st = os.stat(e.path)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    yield Problem(e.path, "symlink loop: the link never reaches a file")
                elif isinstance(exc, FileNotFoundError) and e.is_symlink():
                    yield Problem(e.path, "broken symlink: its target does not exist")
                elif not isinstance(exc, FileNotFoundError):
                    yield Problem(e.path, f"cannot be read ({exc.strerror or exc})")
                continue
            if not stat_mod.S_ISREG(st.st_mode):
                # Never read (a FIFO would block the reader), but listed, so
                # that every file left out has a reason.
                yield Problem(e.path, _special_reason(st.st_mode))
                continue
            if e.is_symlink() and self.leaves_folder(e.path):
                yield Problem(e.path, _OUTSIDE)
                continue
            yield Entry(e.path, kind, st.st_size, st.st_mtime_ns)


_OUTSIDE = ("symlink to outside the folder: not followed, so the target's own folder "
            "rules (local-only, excludes) stay in force")


def _special_reason(mode: int) -> str:
    if stat_mod.S_ISFIFO(mode):
        what = "a named pipe (FIFO)"
    elif stat_mod.S_ISSOCK(mode):
        what = "a socket"
    elif stat_mod.S_ISCHR(mode) or stat_mod.S_ISBLK(mode):
        what = "a device"
    else:
        what = "a special file"
    return f"not a regular file: {what} is never read"


def _ignored(ignores: list[tuple[str, Any]], rel: str, is_dir: bool) -> bool:
    for base, spec in ignores:
        sub = rel[len(base) + 1:] if base else rel
        if spec.match_file(sub + "/" if is_dir else sub):
            return True
    return False


def normalise_folder(path: str | Path) -> str:
    """The form a folder is stored in: absolute, user-expanded, no trailing slash
    (symlinks are kept, so citations show the path the user chose)."""
    return os.path.normpath(os.path.abspath(os.path.expanduser(str(path))))
