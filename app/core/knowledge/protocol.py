"""The messages between the window and its index process: one frozen
dataclass per request and per event, pickled over a multiprocessing pipe."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.core.knowledge import progress as ev
from app.settings import SETTINGS, Value

if TYPE_CHECKING:
    from app.core.knowledge.retriever import Result

# Raised whenever a message changes shape: a window and an index process of
# different Hearth versions (an upgrade while the window runs) refuse each other.
PROTOCOL_VERSION = 1
# Why a call failed when the index process is stopping (the window stays quiet).
SHUTTING_DOWN = "Hearth is shutting down."

# The settings the index process reads; the window sends them again when they change.
INDEX_SETTINGS = tuple(s.key for s in SETTINGS if s.key.startswith("knowledge."))


class IndexState(enum.StrEnum):
    """What the status bar says about the index."""

    NONE = "none"  # no folder was ever added
    OPENING = "opening"
    IDLE = "idle"
    INDEXING = "indexing"
    PAUSED = "paused"  # by the user
    BUSY = "busy"  # another process writes; this one reads
    ERROR = "error"


# -- what the index holds ---------------------------------------------------------------


@dataclass(frozen=True)
class FileProblem:
    """A file left out of the index, and why."""

    path: str
    status: str  # "skipped" or "failed"
    reason: str


@dataclass(frozen=True)
class FolderStatus:
    """One indexed folder as the folders dialog and the window show it."""

    path: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    local_only: bool = False
    paused: bool = False
    state: str = "ok"  # "ok", or why the folder cannot be read
    error: str | None = None
    scanned_at: float | None = None
    files: int = 0
    indexed: int = 0
    pending: int = 0
    skipped: int = 0
    failed: int = 0
    chunks: int = 0
    problems: tuple[FileProblem, ...] = ()

    @classmethod
    def from_status(cls, item: Mapping[str, object]) -> FolderStatus:
        """From one folder of `KnowledgeBase.status(errors=True)`."""
        def number(key: str) -> int:
            value = item.get(key, 0)
            return value if isinstance(value, int) else 0

        def texts(key: str) -> tuple[str, ...]:
            value = item.get(key, ())
            return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()

        errors = item.get("errors", [])
        scanned = item.get("scanned_at")
        error = item.get("error")
        return cls(
            path=str(item["path"]), include=texts("include"), exclude=texts("exclude"),
            local_only=bool(item.get("local_only")), paused=bool(item.get("paused")),
            state=str(item.get("state", "ok")), error=str(error) if error else None,
            scanned_at=float(scanned) if isinstance(scanned, int | float) else None,
            files=number("files"), indexed=number("indexed"), pending=number("pending"),
            skipped=number("skipped"), failed=number("failed"), chunks=number("chunks"),
            problems=tuple(FileProblem(str(e["path"]), str(e["status"]), str(e["reason"] or ""))
                           for e in errors if isinstance(e, Mapping))
            if isinstance(errors, list) else ())


# -- requests: window -> index process --------------------------------------------------


@dataclass(frozen=True)
class Open:
    """Open the index as its writer and follow the folders (read while
    another process writes)."""


@dataclass(frozen=True)
class AddFolder:
    path: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    local_only: bool = False


@dataclass(frozen=True)
class UpdateFolder:
    path: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    local_only: bool


@dataclass(frozen=True)
class RemoveFolder:
    path: str


@dataclass(frozen=True)
class SetFolderPaused:
    path: str
    paused: bool


@dataclass(frozen=True)
class Reindex:
    path: str


@dataclass(frozen=True)
class Refresh:
    """Send the folders' state (it is sent after every call anyway)."""


@dataclass(frozen=True)
class SetPaused:
    """Pause or resume all indexing."""

    paused: bool


@dataclass(frozen=True)
class Search:
    question: str
    k: int | None = None  # None: knowledge.top_k as the index process knows it
    folders: tuple[str, ...] | None = None
    path_glob: str | None = None
    mmr: bool | None = None  # None: knowledge.mmr
    per_file: int = 1


@dataclass(frozen=True)
class EmbedQuestion:
    """A question's vector for the answer cache, made where the embedder
    already runs (the window process never loads the ONNX model)."""

    question: str


@dataclass(frozen=True)
class ApplySettings:
    """New values of settings the index process reads (see INDEX_SETTINGS)."""

    values: tuple[tuple[str, Value], ...]

    @classmethod
    def of(cls, values: Mapping[str, Value]) -> ApplySettings:
        return cls(tuple(sorted(values.items())))


Request = (Open | AddFolder | UpdateFolder | RemoveFolder | SetFolderPaused | Reindex | Refresh
           | SetPaused | Search | EmbedQuestion | ApplySettings)


@dataclass(frozen=True)
class Call:
    """A request and the number its answer will carry."""

    call_id: int
    request: Request


@dataclass(frozen=True)
class Stop:
    """Finish the batch in progress, close the index and end."""


# -- events: index process -> window ----------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """The index process's first message."""

    version: int
    pid: int


@dataclass(frozen=True)
class Activity:
    """What the indexer is doing, for the status bar (throttled)."""

    done: int  # files finished in this run
    total: int  # files this run knows it has to read
    current: str  # the file being read ("" between files)
    failed: int  # files that could not be read in this run
    scanning: str = ""  # the folder being compared with the index, if any

    @property
    def busy(self) -> bool:
        return bool(self.scanning or self.current) or self.done < self.total


@dataclass(frozen=True)
class StateChanged:
    state: IndexState
    text: str  # a sentence for the status bar ("" for none)


@dataclass(frozen=True)
class FoldersChanged:
    folders: tuple[FolderStatus, ...]


@dataclass(frozen=True)
class IndexWarning:
    """A folder became unavailable, or a watch fell back to polling."""

    text: str


@dataclass(frozen=True)
class RunFinished:
    """A scan that changed something ended."""

    stats: ev.Stats


@dataclass(frozen=True)
class RetryLater:
    """Another process writes: try to become the writer again later."""


@dataclass(frozen=True)
class CallDone:
    call_id: int
    value: str | list[Result] | None


@dataclass(frozen=True)
class CallFailed:
    call_id: int
    message: str  # one sentence for the user
    details: str = ""  # the traceback over there, for the Details button


@dataclass(frozen=True)
class Rejected:
    """A message the index process could not read or does not know; it
    carries on."""

    message: str


@dataclass(frozen=True)
class Exited:
    """On the window's side only: the index process ended without being asked
    to, or could not be started, or speaks another protocol version."""

    message: str
    details: str


Event = (Activity | StateChanged | FoldersChanged | IndexWarning | RunFinished | RetryLater
         | Exited)
Reply = CallDone | CallFailed | Rejected
