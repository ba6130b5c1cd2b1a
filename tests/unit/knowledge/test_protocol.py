"""The index process's messages: each request and event survives pickling as
multiprocessing does it, the server has one handler per request, and a
folder's status reads the knowledge base's status whole."""

from __future__ import annotations

import dataclasses
import pickle
import typing
from multiprocessing.reduction import ForkingPickler

import pytest

from app.core.knowledge import progress as ev
from app.core.knowledge import protocol as p
from app.core.knowledge.index_server import IndexHost
from app.core.knowledge.retriever import Result
from app.paths import Paths
from app.settings import Settings

FOLDER = p.FolderStatus(
    "/notes", include=("*.md",), exclude=("drafts/**",), local_only=True, paused=False,
    state="ok", error=None, scanned_at=1.5, files=3, indexed=2, pending=0, skipped=1, failed=0,
    chunks=9, problems=(p.FileProblem("/notes/big.pdf", "skipped", "larger than 20 MB"),))

REQUESTS: list[p.Request] = [
    p.Open(), p.AddFolder("/notes", ("*.md",), ("drafts/**",), True),
    p.UpdateFolder("/notes", (), ("*.tmp",), False), p.RemoveFolder("/notes"),
    p.SetFolderPaused("/notes", True), p.Reindex("/notes"), p.Refresh(), p.SetPaused(True),
    p.Search("lamp budget", 4, ("/notes",), "*.md", True, 2), p.Search("lamp budget"),
    p.EmbedQuestion("What is the lamp budget?"),
    p.ApplySettings.of({"knowledge.top_k": 2, "knowledge.mmr": True}),
]
EVENTS: list[object] = [
    p.Hello(p.PROTOCOL_VERSION, 42), p.Activity(1, 3, "/notes/a.md", 0, ""),
    p.StateChanged(p.IndexState.BUSY, "Index: kept up to date by another Hearth process"),
    p.FoldersChanged((FOLDER,)), p.IndexWarning("/usb: the drive is not there"),
    p.RunFinished(ev.Stats(indexed=2, skipped=1)), p.RetryLater(),
    p.CallDone(1, "Added /notes; indexing it now."), p.CallDone(2, None),
    p.CallDone(3, [Result("c1", "/notes/a.md", "lamp", 1, 2, None, 0.5, 0.7, None, 1, False)]),
    p.CallFailed(4, "/notes is not a folder.", "Traceback ..."), p.Rejected("no idea"),
    p.Exited("The indexer stopped unexpectedly; try again.", "killed by signal 9"),
    p.Call(5, p.Refresh()), p.Stop(),
]


def members(union: object) -> set[type]:
    return set(typing.get_args(union))


@pytest.mark.parametrize("message", REQUESTS + EVENTS, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_the_pipes_pickler(message: object) -> None:
    data = bytes(ForkingPickler.dumps(message))
    back = pickle.loads(data)
    assert back == message and type(back) is type(message)
    assert dataclasses.is_dataclass(message)
    params = getattr(type(message), "__dataclass_params__", None)
    assert params is not None and params.frozen


def test_the_lists_above_hold_every_request_and_event() -> None:
    assert {type(r) for r in REQUESTS} == members(p.Request)
    assert members(p.Event) | members(p.Reply) <= {type(e) for e in EVENTS}


def test_the_server_has_one_handler_per_request(paths: Paths, settings: Settings) -> None:
    host = IndexHost(paths, settings, lambda _event: None)
    assert set(host.handlers) == members(p.Request)


def test_index_states_are_the_words_the_window_always_used() -> None:
    assert [s.value for s in p.IndexState] == [
        "none", "opening", "idle", "indexing", "paused", "busy", "error"]
    assert p.IndexState("busy") is p.IndexState.BUSY


def test_a_folder_status_reads_every_field_of_the_knowledge_bases_status() -> None:
    item = {"path": "/notes", "include": ["*.md"], "exclude": ["drafts/**"],
            "local_only": True, "paused": False, "state": "ok", "error": None,
            "scanned_at": 1.5, "files": 3, "indexed": 2, "pending": 0, "skipped": 1,
            "failed": 0, "chunks": 9,
            "errors": [{"path": "/notes/big.pdf", "status": "skipped",
                        "reason": "larger than 20 MB"}]}
    assert p.FolderStatus.from_status(item) == FOLDER
    # Every field of the dataclass comes from a key of the status.
    names = {f.name for f in dataclasses.fields(p.FolderStatus)} - {"problems"}
    assert names == set(item) - {"errors"}


def test_the_settings_the_index_reads_are_the_knowledge_settings() -> None:
    assert "knowledge.top_k" in p.INDEX_SETTINGS
    assert "knowledge.max_file_mb" in p.INDEX_SETTINGS
    assert all(k.startswith("knowledge.") for k in p.INDEX_SETTINGS)
