"""Downloads against a real HTTP server on 127.0.0.1 serving the bundled GGUF:
resume, restart, verify, and every way a mirror or the disk can let us down."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.core import offline
from app.core.models.catalog import CatalogEntry
from app.core.models.download import (
    DownloadControl,
    DownloadError,
    DownloadManager,
    DownloadStopped,
    Progress,
    download,
    part_path,
    partial_downloads,
)
from tests.model_server import ModelServer

FAST = {"backoff_s": 0.01, "max_wait_s": 0.05}


@pytest.fixture(scope="module")
def model_sha(model_path: Path) -> str:
    return hashlib.sha256(model_path.read_bytes()).hexdigest()


@pytest.fixture
def server(model_path: Path) -> Iterator[ModelServer]:
    srv = ModelServer(model_path)
    yield srv
    srv.close()


@pytest.fixture
def entry(server: ModelServer, model_path: Path, model_sha: str) -> CatalogEntry:
    return CatalogEntry(
        id="smol-test", name="Smol test", family="SmolLM2", parameters=0.135,
        quantization="Q4_1", file="smol-test.gguf", urls=(server.url,), sha256=model_sha,
        size_bytes=model_path.stat().st_size, context_length=8192, license="Apache-2.0",
        good_for="tests")


def _same(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()


def test_plain_download_is_verified_and_byte_identical(
        tmp_path: Path, entry: CatalogEntry, model_path: Path) -> None:
    events: list[Progress] = []
    result = download(entry, tmp_path, on_progress=events.append, **FAST)
    assert result.verified and result.note == ""
    assert _same(result.path, model_path)
    assert not part_path(tmp_path, entry).exists()
    states = [e.state for e in events]
    assert states[0] == "downloading" and states[-2:] == ["verifying", "done"]
    assert events[-1].done == entry.size_bytes == events[-1].total


def test_cut_connection_resumes_with_range_and_ends_byte_identical(
        tmp_path: Path, server: ModelServer, entry: CatalogEntry, model_path: Path) -> None:
    server.queue("cut:3000000", "cut:1000000")
    events: list[Progress] = []
    result = download(entry, tmp_path, on_progress=events.append, **FAST)
    assert _same(result.path, model_path)
    ranges = [r["range"] for r in server.requests]
    assert ranges == [None, "bytes=3000000-", "bytes=4000000-"]
    assert result.restarts == 0
    assert "retrying" in [e.state for e in events]


def test_resume_after_a_restart_of_hearth(
        tmp_path: Path, server: ModelServer, entry: CatalogEntry, model_path: Path) -> None:
    """A part left by an earlier run (here: a run that failed for good) is
    continued from where it stopped, not downloaded again."""
    server.queue("cut:5000000", "503", "503")
    with pytest.raises(DownloadError, match="failed after 3 tries") as info:
        download(entry, tmp_path, attempts=3, **FAST)
    assert "resumes" in str(info.value)
    part = part_path(tmp_path, entry)
    assert part.stat().st_size == 5_000_000
    assert partial_downloads(tmp_path, [entry]) == [entry]
    result = download(entry, tmp_path, **FAST)  # "the next start"
    assert result.resumed_from == 5_000_000
    assert server.requests[-1]["range"] == "bytes=5000000-"
    assert _same(result.path, model_path)


def test_server_that_ignores_range_restarts_from_zero_correctly(
        tmp_path: Path, server: ModelServer, entry: CatalogEntry, model_path: Path) -> None:
    server.queue("cut:2000000", "ignore-range")
    result = download(entry, tmp_path, **FAST)
    assert server.requests[1]["range"] == "bytes=2000000-"
    assert result.restarts == 1
    assert _same(result.path, model_path)


def test_server_that_lies_about_content_length(
        tmp_path: Path, server: ModelServer, entry: CatalogEntry) -> None:
    server.mode = "wrong-length"
    with pytest.raises(DownloadError, match=r"announced .* but the catalog says"):
        download(entry, tmp_path, **FAST)
    assert not (tmp_path / entry.file).exists()
    assert not part_path(tmp_path, entry).exists()


def test_wrong_checksum_is_caught_and_the_file_removed(
        tmp_path: Path, entry: CatalogEntry) -> None:
    bad = replace(entry, sha256="0" * 64)
    with pytest.raises(DownloadError, match="does not match its published checksum"):
        download(bad, tmp_path, **FAST)
    assert not (tmp_path / entry.file).exists()
    assert not part_path(tmp_path, entry).exists()


def test_unknown_checksum_downloads_but_says_it_was_not_verified(
        tmp_path: Path, entry: CatalogEntry) -> None:
    events: list[Progress] = []
    result = download(replace(entry, sha256=None), tmp_path, on_progress=events.append, **FAST)
    assert not result.verified
    assert "could not be verified" in result.note
    assert "could not be verified" in events[-1].message


def test_html_error_page_instead_of_a_model(
        tmp_path: Path, server: ModelServer, entry: CatalogEntry) -> None:
    server.mode = "html"
    with pytest.raises(DownloadError, match=r"sent a web page instead of smol-test.gguf"):
        download(entry, tmp_path, **FAST)
    assert not (tmp_path / entry.file).exists()


@pytest.mark.parametrize("status", ["404", "403"])
def test_404_and_403_say_so_without_retrying(
        tmp_path: Path, server: ModelServer, entry: CatalogEntry, status: str) -> None:
    server.mode = status
    with pytest.raises(DownloadError, match=f"answered {status}") as info:
        download(entry, tmp_path, **FAST)
    assert info.value.reason == f"http_{status}"
    assert len(server.requests) == 1


def test_a_second_mirror_is_used_when_the_first_is_gone(
        tmp_path: Path, server: ModelServer, entry: CatalogEntry, model_path: Path) -> None:
    gone = ModelServer(model_path, mode="404")
    try:
        result = download(replace(entry, urls=(gone.url, server.url)), tmp_path, **FAST)
    finally:
        gone.close()
    assert _same(result.path, model_path)


def test_server_errors_are_retried_with_backoff(
        tmp_path: Path, server: ModelServer, entry: CatalogEntry, model_path: Path) -> None:
    server.queue("503", "500")
    result = download(entry, tmp_path, **FAST)
    assert len(server.requests) == 3
    assert _same(result.path, model_path)


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path, entry: CatalogEntry) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"PK\x03\x04" + os.urandom(1000))
    srv = ModelServer(junk)
    try:
        bad = replace(entry, urls=(srv.url,), size_bytes=junk.stat().st_size, sha256=None)
        with pytest.raises(DownloadError, match="not a GGUF model file"):
            download(bad, tmp_path / "models", **FAST)
    finally:
        srv.close()
    assert not list((tmp_path / "models").glob("*.gguf*"))


def test_not_enough_disk_space_is_refused_before_downloading(
        tmp_path: Path, server: ModelServer, entry: CatalogEntry) -> None:
    huge = replace(entry, size_bytes=1 << 60, sha256=None)
    with pytest.raises(DownloadError, match=r"only .* GB is free"):
        download(huge, tmp_path, **FAST)
    assert server.requests == []


def test_disk_filling_up_mid_download_keeps_the_part(
        tmp_path: Path, entry: CatalogEntry, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real full disk needs a filesystem of its own (a mount), which tests
    cannot make here; the write fails with ENOSPC instead, after 2 MB."""
    import errno

    from app.core.models import download as module

    real_open = module._open_part

    class FullDisk:
        def __init__(self, path: Path) -> None:
            self.fh = real_open(path)
            self.written = 0

        def write(self, data: bytes) -> int:
            self.written += len(data)
            if self.written > 2_000_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.fh.write(data)

        def __getattr__(self, name: str) -> object:
            return getattr(self.fh, name)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

    monkeypatch.setattr(module, "_open_part", FullDisk)
    with pytest.raises(DownloadError, match=r"disk filled up.*resumes where it stopped"):
        download(entry, tmp_path, **FAST)
    assert part_path(tmp_path, entry).exists()
    assert not (tmp_path / entry.file).exists()


def test_read_only_models_folder(tmp_path: Path, entry: CatalogEntry) -> None:
    # Permissions do not stop root (tests may run as root); a folder that
    # cannot be created at all is read-only for everyone.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DownloadError, match="cannot write to the models folder"):
        download(entry, blocker / "models", **FAST)
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(DownloadError, match="cannot write to the models folder"):
                download(entry, ro, **FAST)
        finally:
            ro.chmod(0o700)


def test_offline_mode_refuses_to_download(tmp_path: Path, server: ModelServer,
                                          entry: CatalogEntry) -> None:
    with pytest.raises(DownloadError, match="offline mode") as info:
        download(entry, tmp_path, offline_setting=True, **FAST)
    assert info.value.reason == "offline"
    offline.enable()
    try:
        with pytest.raises(DownloadError, match="offline mode"):
            download(entry, tmp_path, **FAST)
    finally:
        offline.disable()
    assert server.requests == []


def test_pause_keeps_the_part_and_cancel_deletes_it(
        tmp_path: Path, server: ModelServer, entry: CatalogEntry, model_path: Path) -> None:
    server.mode = "slow"
    control = DownloadControl()

    def pause_when_started(p: Progress) -> None:
        if p.state == "downloading" and p.done > 1_000_000:
            control.pause()

    with pytest.raises(DownloadStopped):
        download(entry, tmp_path, control=control, on_progress=pause_when_started, **FAST)
    part = part_path(tmp_path, entry)
    kept = part.stat().st_size
    assert 1_000_000 < kept < entry.size_bytes
    control = DownloadControl()

    def cancel_when_started(p: Progress) -> None:
        if p.state == "downloading" and p.done > kept + 500_000:
            control.cancel()

    with pytest.raises(DownloadStopped, match="cancelled"):
        download(entry, tmp_path, control=control, on_progress=cancel_when_started, **FAST)
    assert not part.exists()
    assert server.requests[1]["range"] == f"bytes={kept}-"


def test_two_downloads_of_the_same_model_at_once_one_waits_and_joins(
        tmp_path: Path, server: ModelServer, entry: CatalogEntry, model_path: Path) -> None:
    server.mode = "slow"
    server.slow_delay = 0.002
    results: list[object] = []
    events: list[Progress] = []

    def run() -> None:
        try:
            results.append(download(entry, tmp_path, on_progress=events.append, **FAST))
        except Exception as exc:  # collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(not isinstance(r, Exception) for r in results), results
    assert len(server.requests) == 1  # the second joined the first
    assert "waiting" in [e.state for e in events]
    assert _same(tmp_path / entry.file, model_path)


def test_manager_reports_progress_and_joins_a_running_download(
        tmp_path: Path, server: ModelServer, entry: CatalogEntry, model_path: Path) -> None:
    server.mode = "slow"
    server.slow_delay = 0.002
    events: list[Progress] = []
    manager = DownloadManager(tmp_path, lambda: False, events.append, **FAST)
    assert manager.start(entry) is True
    assert manager.start(entry) is False
    job = manager.wait(entry.id, 60)
    assert job is not None and job.result is not None
    assert events[-1].state == "done"
    rates = [e.rate_bps for e in events if e.state == "downloading"]
    assert any(r > 0 for r in rates)
    assert any(e.eta_s is not None for e in events if e.state == "downloading")
    manager.shutdown()
    assert _same(tmp_path / entry.file, model_path)


def test_manager_shutdown_pauses_and_keeps_the_part(
        tmp_path: Path, server: ModelServer, entry: CatalogEntry) -> None:
    server.mode = "slow"
    started = threading.Event()

    def on_event(p: Progress) -> None:
        if p.state == "downloading" and p.done > 500_000:
            started.set()

    manager = DownloadManager(tmp_path, lambda: False, on_event, **FAST)
    manager.start(entry)
    assert started.wait(30)
    manager.shutdown()
    assert part_path(tmp_path, entry).exists()
    assert partial_downloads(tmp_path, [entry]) == [entry]
    last = manager.progress(entry.id)
    assert last is not None and last.state == "paused"
