"""Model downloads that resume and verify.

A download streams (httpx) into `<file>.part` in the models folder, hashing
every chunk as it arrives, so the checksum is known the moment the last byte
lands; only a file whose size and sha256 match the catalog is renamed into
place. An interrupted download resumes with an HTTP Range request, after a
network error (retried with backoff, tenacity) or after Hearth restarts. Two
downloads of the same file take turns on a lock: the second finds the file
done and returns it.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import httpx
import tenacity
from filelock import FileLock, Timeout

from app.core import offline
from app.core.errors import HearthError
from app.core.models.catalog import CatalogEntry
from app.core.models.files import GGUF_MAGIC, GiB

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
# Room left on the disk beyond the file itself (filesystem metadata, the log).
DISK_MARGIN = 64 * 1024**2
PROGRESS_EVERY_S = 0.1
RATE_WINDOW_S = 3.0


class DownloadError(HearthError):
    reason = "download_failed"


class DownloadStopped(HearthError):
    """Paused (the part is kept) or cancelled (the part is deleted)."""

    reason = "paused"


class _Transient(Exception):
    """A failure worth another try (network error, 5xx, a cut connection)."""


def require_network(offline_setting: bool) -> None:
    """The one check that downloads may use the network now."""
    if offline_setting or offline.is_enabled():
        raise DownloadError("Hearth is in offline mode, so models cannot be downloaded; "
                            "turn offline mode off first.", reason="offline")


@dataclass(frozen=True)
class Progress:
    """One progress event: `state` is waiting, downloading, retrying,
    verifying, done, paused, cancelled or failed."""

    model_id: str
    state: str
    done: int = 0
    total: int | None = None
    rate_bps: float = 0.0
    eta_s: float | None = None
    message: str = ""

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    verified: bool
    note: str
    resumed_from: int
    restarts: int
    sha256: str


class DownloadControl:
    """Stops a running download from another thread: `pause()` keeps the
    part for later, `cancel()` deletes it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.discard = False

    def pause(self) -> None:
        self._event.set()

    def cancel(self) -> None:
        self.discard = True
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def sleep(self, seconds: float) -> None:
        self._event.wait(seconds)


def part_path(dest_dir: Path, entry: CatalogEntry) -> Path:
    return dest_dir / f"{entry.file}.part"


def _writable_dir(dest_dir: Path) -> Path:
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        (dest_dir / ".locks").mkdir(exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"Hearth cannot write to the models folder {dest_dir}: "
                            f"{exc.strerror or exc}.", reason="read_only") from exc
    if not os.access(dest_dir, os.W_OK | os.X_OK):
        raise DownloadError(f"Hearth cannot write to the models folder {dest_dir}: "
                            "permission denied.", reason="read_only")
    return dest_dir


class _Stream:
    """The state of one download across attempts: bytes so far and their hash."""

    def __init__(self, entry: CatalogEntry, part: Path) -> None:
        self.entry = entry
        self.part = part
        self.hasher = hashlib.sha256()
        self.have = 0
        self.resumed_from = 0
        self.restarts = 0
        if part.exists():
            # After a restart of Hearth the hash of what is already here is
            # not in memory: read the part once (within a run it never is).
            with part.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    self.hasher.update(chunk)
                    self.have += len(chunk)
            self.resumed_from = self.have

    def restart(self) -> None:
        self.part.unlink(missing_ok=True)
        self.hasher = hashlib.sha256()
        self.have = 0
        self.restarts += 1


class _Reporter:
    def __init__(self, model_id: str, total: int | None,
                 sink: Callable[[Progress], None] | None) -> None:
        self.model_id = model_id
        self.total = total
        self.sink = sink
        self.samples: collections.deque[tuple[float, int]] = collections.deque()
        self.last = 0.0

    def rate(self, done: int) -> float:
        now = time.monotonic()
        self.samples.append((now, done))
        while self.samples and now - self.samples[0][0] > RATE_WINDOW_S:
            self.samples.popleft()
        t0, d0 = self.samples[0]
        return (done - d0) / (now - t0) if now > t0 and done >= d0 else 0.0

    def emit(self, state: str, done: int, message: str = "", force: bool = True) -> None:
        if self.sink is None:
            return
        now = time.monotonic()
        if not force and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        rate = self.rate(done) if state == "downloading" else 0.0
        eta = ((self.total - done) / rate) if (rate > 0 and self.total) else None
        self.sink(Progress(self.model_id, state, done, self.total, rate, eta, message))


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "the server stopped answering"
    if isinstance(exc, httpx.ConnectError):
        return "the server could not be reached"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection was cut before the file was complete"
    return f"a network error ({exc})"


def download(
    entry: CatalogEntry,
    dest_dir: Path,
    *,
    offline_setting: bool = False,
    control: DownloadControl | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    attempts: int = 6,
    backoff_s: float = 0.5,
    max_wait_s: float = 20.0,
    timeout_s: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> DownloadResult:
    """Download `entry` into `dest_dir` (resuming a part already there) and
    return the verified file. Raises DownloadError with one sentence, or
    DownloadStopped when paused or cancelled through `control`."""
    require_network(offline_setting)
    if entry.bundled or not entry.urls:
        raise DownloadError(f"{entry.name} comes with Hearth and has nothing to download.")
    control = control or DownloadControl()
    dest_dir = _writable_dir(dest_dir)
    final = dest_dir / entry.file
    reporter = _Reporter(entry.id, entry.size_bytes, on_progress)
    lock = FileLock(str(dest_dir / ".locks" / f"{entry.file}.lock"))
    waiting_said = False
    while True:  # another download of this file holds the lock: wait, then join it
        try:
            lock.acquire(timeout=0.2)
            break
        except Timeout:
            if control.stopped:
                raise DownloadStopped(f"The download of {entry.name} was stopped.") from None
            if not waiting_said:
                reporter.emit("waiting", 0, "another download of this model is running")
                waiting_said = True
    try:
        if final.exists() and final.stat().st_size == entry.size_bytes:
            reporter.emit("done", entry.size_bytes)
            return DownloadResult(final, entry.sha256 is not None, "already downloaded", 0, 0,
                                  entry.sha256 or "")
        return _download_locked(entry, final, control, reporter, attempts, backoff_s,
                                max_wait_s, timeout_s, transport)
    finally:
        lock.release()


def _download_locked(
    entry: CatalogEntry, final: Path, control: DownloadControl, reporter: _Reporter,
    attempts: int, backoff_s: float, max_wait_s: float, timeout_s: float,
    transport: httpx.BaseTransport | None,
) -> DownloadResult:
    part = final.with_name(final.name + ".part")
    try:
        stream = _Stream(entry, part)
    except OSError as exc:
        raise DownloadError(f"The partial download {part} cannot be read: "
                            f"{exc.strerror or exc}.") from exc
    if stream.have > entry.size_bytes:
        stream.restart()
    client = httpx.Client(follow_redirects=True, transport=transport,
                          timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 15.0)),
                          headers={"User-Agent": "Hearth", "Accept-Encoding": "identity"})

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reporter.emit("retrying", stream.have, f"{exc}; trying again")

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(_Transient),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=backoff_s, max=max_wait_s),
        sleep=control.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                _one_pass(entry, stream, client, control, reporter)
    except _Transient as exc:
        reporter.emit("failed", stream.have, str(exc))
        raise DownloadError(
            f"The download of {entry.name} failed after {attempts} tries ({exc}); what was "
            "downloaded is kept and the next try resumes from it.", reason="network") from exc
    except DownloadStopped:
        if control.discard:
            part.unlink(missing_ok=True)
            reporter.emit("cancelled", 0)
            raise DownloadStopped(f"The download of {entry.name} was cancelled.",
                                  reason="cancelled") from None
        reporter.emit("paused", stream.have)
        raise
    except DownloadError as exc:
        reporter.emit("failed", stream.have, str(exc))
        raise
    finally:
        client.close()
    return _finish(entry, stream, final, reporter)


def _one_pass(entry: CatalogEntry, stream: _Stream, client: httpx.Client,
              control: DownloadControl, reporter: _Reporter) -> None:
    """Try each mirror in turn; transient trouble on all of them is retried."""
    errors: list[Exception] = []
    for url in entry.urls:
        if control.stopped:
            raise DownloadStopped(f"The download of {entry.name} was paused.")
        try:
            _fetch(url, entry, stream, client, control, reporter)
            return
        except (_Transient, DownloadError) as exc:
            log.info("download of %s from %s: %s", entry.id, url, exc)
            errors.append(exc)
    if any(isinstance(e, _Transient) for e in errors):
        raise next(e for e in errors if isinstance(e, _Transient))
    raise errors[-1]


def _check_space(entry: CatalogEntry, stream: _Stream, directory: Path) -> None:
    needed = entry.size_bytes - stream.have
    free = shutil.disk_usage(directory).free
    if needed + DISK_MARGIN > free:
        raise DownloadError(
            f"{entry.name} needs {needed / GiB:.2f} GB more on {directory} but only "
            f"{free / GiB:.2f} GB is free; free some space and try again.", reason="disk_full")


def _fetch(url: str, entry: CatalogEntry, stream: _Stream, client: httpx.Client,
           control: DownloadControl, reporter: _Reporter) -> None:
    _check_space(entry, stream, stream.part.parent)
    if stream.have == entry.size_bytes:
        return
    headers = {"Range": f"bytes={stream.have}-"} if stream.have else {}
    host = _host(url)
    try:
        with client.stream("GET", url, headers=headers) as response:
            code = response.status_code
            if code == 416 and stream.have:
                stream.restart()  # the server cannot continue this part
                raise _Transient(f"{host} refused to resume the download")
            if code in (408, 425, 429) or code >= 500:
                raise _Transient(f"{host} answered {code} {response.reason_phrase}")
            if code >= 400:
                raise DownloadError(
                    f"{host} answered {code} {response.reason_phrase} for {entry.file}; the "
                    "address may be out of date or need a sign-in.", reason=f"http_{code}")
            if "text/html" in response.headers.get("content-type", "").lower():
                raise DownloadError(
                    f"{host} sent a web page instead of {entry.file} (often a sign-in or "
                    "error page), so nothing was kept.", reason="not_a_model")
            start = 0
            if code == 206:
                start = _range_start(response.headers.get("content-range", ""))
            if start != stream.have:
                if stream.have:
                    log.info("%s ignored the range request; starting %s again", host, entry.id)
                stream.restart()
                if start != 0:
                    raise _Transient(f"{host} sent the wrong part of the file")
            length = response.headers.get("content-length")
            if length is not None and length.isdigit() and (
                    start + int(length) != entry.size_bytes):
                raise DownloadError(
                    f"{host} announced {start + int(length):,} bytes for {entry.file} but the "
                    f"catalog says {entry.size_bytes:,}; nothing of it was kept.",
                    reason="wrong_size")
            _write(response, entry, stream, control, reporter)
    except httpx.TransportError as exc:
        raise _Transient(_describe(exc)) from exc
    if stream.have < entry.size_bytes:
        raise _Transient(f"{host} ended the file early")


def _range_start(content_range: str) -> int:
    # "bytes 100-199/200"
    try:
        unit, _, spec = content_range.partition(" ")
        return int(spec.split("-", 1)[0]) if unit == "bytes" else -1
    except ValueError:
        return -1


def _open_part(path: Path) -> BinaryIO:
    return path.open("ab")


class _Sink:
    """Writes and hashes chunks on a thread of its own while the next ones
    arrive: hashing and writing release the interpreter lock, so a download
    runs at network speed instead of network + hash + disk in turn."""

    def __init__(self, fh: BinaryIO, stream: _Stream) -> None:
        self.fh = fh
        self.stream = stream
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=64)
        self.error: OSError | None = None
        self.thread = threading.Thread(target=self._run, name="hearth-download-sink",
                                       daemon=True)
        self.thread.start()

    def _run(self) -> None:
        stream = self.stream
        while (chunk := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain; the reader stops at its next look
            try:
                self.fh.write(chunk)
            except OSError as exc:
                self.error = exc
                continue
            stream.hasher.update(chunk)
            stream.have += len(chunk)

    def put(self, chunk: bytes) -> None:
        self.queue.put(chunk)

    def close(self) -> None:
        """Wait until everything queued is written (the part then holds
        exactly `stream.have` bytes)."""
        self.queue.put(None)
        self.thread.join()


def _write(response: httpx.Response, entry: CatalogEntry, stream: _Stream,
           control: DownloadControl, reporter: _Reporter) -> None:
    head = b""
    host = _host(str(response.url))
    try:
        fh = _open_part(stream.part)
    except OSError as exc:
        raise DownloadError(f"Hearth cannot write to the models folder {stream.part.parent}: "
                            f"{exc.strerror or exc}.", reason="read_only") from exc
    with fh:
        sink = _Sink(fh, stream)
        received = stream.have
        problem: DownloadError | None = None
        try:
            for chunk in response.iter_raw():
                if control.stopped:
                    raise DownloadStopped(f"The download of {entry.name} was paused.")
                if sink.error is not None:
                    break
                if received < len(GGUF_MAGIC):
                    head = (head + chunk)[: len(GGUF_MAGIC)]
                    if len(head) == len(GGUF_MAGIC) and head != GGUF_MAGIC:
                        problem = DownloadError(
                            f"{host} sent something that is not a GGUF model file for "
                            f"{entry.file}; nothing was kept.", reason="not_a_model")
                        break
                if received + len(chunk) > entry.size_bytes:
                    problem = DownloadError(
                        f"{host} sent more than the {entry.size_bytes:,} bytes of {entry.file}; "
                        "nothing was kept.", reason="wrong_size")
                    break
                sink.put(chunk)
                received += len(chunk)
                reporter.emit("downloading", stream.have, force=False)
        finally:
            sink.close()
        if problem is not None:
            fh.close()
            stream.restart()
            raise problem
        if sink.error is not None:
            err = sink.error
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DownloadError(
                    f"The disk filled up while downloading {entry.name}; free some space "
                    "and download it again: it resumes where it stopped.",
                    reason="disk_full") from err
            raise DownloadError(f"Writing {stream.part} failed: "
                                f"{err.strerror or err}.") from err
        reporter.emit("downloading", stream.have)
        fh.flush()
        os.fsync(fh.fileno())


def _finish(entry: CatalogEntry, stream: _Stream, final: Path,
            reporter: _Reporter) -> DownloadResult:
    reporter.emit("verifying", stream.have)
    digest = stream.hasher.hexdigest()
    if entry.sha256 is not None and digest != entry.sha256:
        stream.part.unlink(missing_ok=True)
        raise DownloadError(
            f"The downloaded {entry.file} does not match its published checksum, so it was "
            "deleted; try again, and if it happens again the mirror or the catalog entry is "
            "wrong.", reason="checksum")
    os.replace(stream.part, final)
    note = "" if entry.sha256 else (
        "it could not be verified: the catalog has no published checksum for it")
    reporter.emit("done", stream.have, note)
    return DownloadResult(final, entry.sha256 is not None, note, stream.resumed_from,
                          stream.restarts, digest)


# -- several downloads for the window ------------------------------------------------


@dataclass
class _Job:
    entry: CatalogEntry
    control: DownloadControl
    thread: threading.Thread
    last: Progress
    result: DownloadResult | None = None
    error: HearthError | None = None


class DownloadManager:
    """Runs downloads on background threads, one per model; asking for a model
    that is already downloading joins that download. Events go to `on_event`
    from the download threads (the window relays them to its own thread)."""

    def __init__(self, dest_dir: Path, offline_setting: Callable[[], bool],
                 on_event: Callable[[Progress], None], **options: Any) -> None:
        self.dest_dir = dest_dir
        self._offline = offline_setting
        self._on_event = on_event
        self._options = options
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()

    def start(self, entry: CatalogEntry) -> bool:
        """Start (or join) the download of `entry`; False when it was already running."""
        with self._lock:
            job = self._jobs.get(entry.id)
            if job is not None and job.thread.is_alive():
                return False
            control = DownloadControl()
            thread = threading.Thread(target=self._run, args=(entry.id,),
                                      name=f"hearth-download-{entry.id}", daemon=True)
            self._jobs[entry.id] = _Job(entry, control, thread,
                                        Progress(entry.id, "waiting", 0, entry.size_bytes))
            thread.start()
            return True

    def _run(self, model_id: str) -> None:
        job = self._jobs[model_id]

        def report(progress: Progress) -> None:
            job.last = progress
            self._on_event(progress)

        try:
            job.result = download(job.entry, self.dest_dir, offline_setting=self._offline(),
                                  control=job.control, on_progress=report, **self._options)
        except HearthError as exc:
            job.error = exc
            if isinstance(exc, DownloadError) and job.last.state != "failed":
                report(replace(job.last, state="failed", message=str(exc)))
            elif isinstance(exc, DownloadStopped) and job.last.state not in (
                    "paused", "cancelled"):
                report(replace(job.last, state="paused", message=str(exc)))
            if isinstance(exc, DownloadError):
                job.last = replace(job.last, state="failed", message=str(exc))
        except Exception as exc:  # never lost: the window shows it
            log.exception("download of %s failed", model_id)
            job.error = DownloadError(f"The download of {job.entry.name} failed: {exc}.")
            report(Progress(model_id, "failed", job.last.done, job.last.total,
                            message=str(job.error)))

    def progress(self, model_id: str) -> Progress | None:
        job = self._jobs.get(model_id)
        return job.last if job else None

    def running(self) -> list[str]:
        return [mid for mid, job in self._jobs.items() if job.thread.is_alive()]

    def pause(self, model_id: str) -> None:
        job = self._jobs.get(model_id)
        if job is not None:
            job.control.pause()

    def cancel(self, model_id: str, entry: CatalogEntry | None = None) -> None:
        """Stop the download and delete what was downloaded so far."""
        job = self._jobs.get(model_id)
        if job is not None and job.thread.is_alive():
            job.control.cancel()
        elif entry is not None:
            part_path(self.dest_dir, entry).unlink(missing_ok=True)
            self._on_event(Progress(model_id, "cancelled"))

    def pause_all(self) -> list[str]:
        ids = self.running()
        for mid in ids:
            self._jobs[mid].control.pause()
        return ids

    def wait(self, model_id: str, timeout: float | None = None) -> _Job | None:
        job = self._jobs.get(model_id)
        if job is not None:
            job.thread.join(timeout)
        return job

    def shutdown(self, timeout: float = 10.0) -> None:
        """Pause every download (parts are kept for the next start) and wait."""
        self.pause_all()
        for job in list(self._jobs.values()):
            job.thread.join(timeout)


def partial_downloads(dest_dir: Path, entries: list[CatalogEntry]) -> list[CatalogEntry]:
    """Catalog models with a part left over from an earlier run (to resume)."""
    return [e for e in entries if not e.bundled and part_path(dest_dir, e).exists()
            and not (dest_dir / e.file).exists()]
