"""Progress events the indexer emits while it works (the CLI draws a bar from
them; the window shows them). Plain data, safe to pass between threads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scanning:
    folder: str


@dataclass(frozen=True)
class Scanned:
    folder: str
    files: int  # files found that are to be indexed
    changed: int  # of those, new or changed since the last run


@dataclass(frozen=True)
class FolderUnavailable:
    folder: str
    reason: str


@dataclass(frozen=True)
class FileStarted:
    path: str


@dataclass(frozen=True)
class Embedding:
    done: int  # chunks embedded so far in this run
    total: int  # chunks known to need embedding so far


@dataclass(frozen=True)
class FileDone:
    path: str
    chunks: int
    embedded: int  # chunks that needed new vectors (the rest were reused)


@dataclass(frozen=True)
class FileFailed:
    path: str
    status: str  # "skipped" or "failed"
    reason: str


@dataclass(frozen=True)
class FileRemoved:
    path: str


@dataclass
class Stats:
    files_seen: int = 0
    indexed: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    removed: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0
    problems: list[tuple[str, str]] = field(default_factory=list)

    def add(self, other: Stats) -> None:
        for name in ("files_seen", "indexed", "unchanged", "skipped", "failed", "removed",
                     "chunks_embedded", "chunks_reused", "chunks_removed", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems += other.problems


@dataclass(frozen=True)
class RunDone:
    stats: Stats


ProgressEvent = (Scanning | Scanned | FolderUnavailable | FileStarted | Embedding | FileDone
                 | FileFailed | FileRemoved | RunDone)
Progress = Callable[[ProgressEvent], None]


def ignore(_event: ProgressEvent) -> None:
    """The default progress sink."""
