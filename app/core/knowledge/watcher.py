"""Live updates: watchdog events → debounced, settled changes → the indexer.

Bursts are coalesced per path and a file is read only once its size and
mtime have stopped changing; editor saves (write a temp file, rename it over
the original) arrive as a move onto a watched name and are indexed as a
change. If the OS runs out of inotify watches, that folder falls back to a
polling observer and a warning says so. A reconcile scan runs at start-up and
every `knowledge.reconcile_minutes`, catching whatever events missed.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.core.knowledge import progress as ev
from app.core.knowledge.base import KnowledgeBase
from app.core.knowledge.scan import Entry, FolderRules
from app.core.knowledge.store import Folder

log = logging.getLogger(__name__)

# Past this many changed paths at once (a bulk copy), rescanning the folder is
# cheaper than handling each event.
STORM_PATHS = 2000
HEALTH_S = 2.0  # how often folders that went away are checked for again


@dataclass(frozen=True)
class WatchWarning:
    folder: str
    message: str


@dataclass
class _Pending:
    due: float
    size: int | None
    mtime_ns: int | None
    deleted: bool = False
    moved_from: str | None = None
    is_dir: bool = False


def _stat(path: str) -> tuple[int | None, int | None]:
    try:
        st = os.stat(path)
        return st.st_size, st.st_mtime_ns
    except OSError:
        return None, None


class Watcher:
    """Follows every watched folder of `kb` (a writer) until `stop()`."""

    def __init__(self, kb: KnowledgeBase, progress: ev.Progress = ev.ignore,
                 on_warning: Callable[[WatchWarning], None] | None = None,
                 debounce_s: float | None = None, reconcile_s: float | None = None,
                 observer_factory: Callable[[], Any] | None = None) -> None:
        self.kb = kb
        self.progress = progress
        self.on_warning = on_warning or (lambda w: log.warning("%s: %s", w.folder, w.message))
        s = kb.settings.snapshot().knowledge
        self.debounce_s = debounce_s if debounce_s is not None else s.debounce_ms / 1000
        minutes = s.reconcile_minutes
        self.reconcile_s = reconcile_s if reconcile_s is not None else (
            minutes * 60 if minutes else None)
        self._observer_factory = observer_factory
        self._pending: dict[str, _Pending] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observers: dict[int, Any] = {}  # folder id -> observer
        self._folders: dict[int, Folder] = {}
        self._rules: dict[int, FolderRules] = {}
        self.polling: set[str] = set()  # folders watched by polling
        self.ready = threading.Event()  # set after the start-up reconcile
        self.idle = threading.Event()  # set whenever nothing is pending or running

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hearth-index-watch", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask `wait()` to return; safe in a signal handler (it only sets a flag).
        `stop()` then does the actual stopping."""
        self._stop.set()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self.kb.indexer.cancel.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        for obs in list(self._observers.values()):
            self._stop_observer(obs)
        self._observers.clear()
        self.kb.indexer.cancel.clear()

    def wait(self) -> None:
        """Block until stopped (Ctrl+C raises KeyboardInterrupt out of it)."""
        while not self._stop.wait(0.5):
            pass

    # -- observers ---------------------------------------------------------------

    def _make_observer(self, polling: bool) -> Any:
        if polling:
            from watchdog.observers.polling import PollingObserver

            return PollingObserver(timeout=1)
        if self._observer_factory is not None:
            return self._observer_factory()
        from watchdog.observers import Observer

        return Observer()

    def _watch(self, folder: Folder) -> None:
        from watchdog.events import FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                watcher._on_event(folder.id, event)

        handler = Handler()
        self._rules[folder.id] = FolderRules(folder)
        self._folders[folder.id] = folder
        obs = None
        try:
            obs = self._make_observer(polling=False)
            obs.schedule(handler, folder.path, recursive=True)
            obs.start()
        except OSError as exc:
            if obs is not None:
                try:  # releases the inotify reader thread the observer started
                    obs.stop()
                except Exception:
                    log.debug("stopping a failed observer", exc_info=True)
            if exc.errno not in (errno.ENOSPC, errno.EMFILE, errno.ENFILE):
                raise
            self.polling.add(folder.path)
            self.on_warning(WatchWarning(
                folder.path,
                "the system's limit on watched folders (inotify) was reached, so this folder "
                "is checked by polling instead: changes show up more slowly. Raise "
                "fs.inotify.max_user_watches to fix it."))
            obs = self._make_observer(polling=True)
            obs.schedule(handler, folder.path, recursive=True)
            obs.start()
        self._observers[folder.id] = obs

    @staticmethod
    def _stop_observer(obs: Any) -> None:
        try:
            obs.stop()
            obs.join(5)
        except Exception:
            log.exception("stopping a folder observer failed")

    def _unwatch(self, folder_id: int) -> None:
        obs = self._observers.pop(folder_id, None)
        if obs is not None:
            self._stop_observer(obs)
        self._folders.pop(folder_id, None)
        self._rules.pop(folder_id, None)

    def _refresh_folders(self) -> list[Folder]:
        """Start watching new and returned folders; stop for removed, paused
        and vanished ones; pick up changed globs. Returns the folders that need
        a reconcile now."""
        current = {f.id: f for f in self.kb.folders()}
        for fid in list(self._observers):
            f, old = current.get(fid), self._folders[fid]
            if (f is None or f.paused or not os.path.isdir(f.path)
                    or (f.include, f.exclude) != (old.include, old.exclude)):
                self._unwatch(fid)
            else:
                self._folders[fid] = f
        todo: list[Folder] = []
        for fid, f in current.items():
            if f.paused or fid in self._observers:
                continue
            if not os.path.isdir(f.path):
                if f.state != "missing":
                    todo.append(f)  # reconcile marks it missing
                continue
            self._watch(f)
            todo.append(f)
        return todo

    # -- events --------------------------------------------------------------------

    def _on_event(self, folder_id: int, event: Any) -> None:
        kind = event.event_type
        if kind in ("opened", "closed_no_write"):
            return
        src = os.fsdecode(event.src_path)
        rules = self._rules.get(folder_id)
        dest_raw = getattr(event, "dest_path", "") if kind == "moved" else ""
        if rules is not None and rules.never(src) and (not dest_raw or rules.never(
                os.fsdecode(dest_raw))):
            return  # inside .git, node_modules…: a checkout or install storm, not ours
        now = time.monotonic()
        with self._cond:
            if kind == "moved":
                dest = os.fsdecode(event.dest_path)
                self._pending[src] = _Pending(now + self.debounce_s, None, None, deleted=True,
                                              is_dir=event.is_directory)
                size, mtime = _stat(dest)
                self._pending[dest] = _Pending(now + self.debounce_s, size, mtime,
                                               moved_from=src, is_dir=event.is_directory)
            elif kind == "deleted":
                self._pending[src] = _Pending(now + self.debounce_s, None, None, deleted=True,
                                              is_dir=event.is_directory)
            else:  # created, modified, closed
                if event.is_directory and kind == "modified":
                    return  # a file inside changed; that file has its own event
                size, mtime = _stat(src)
                old = self._pending.get(src)
                self._pending[src] = _Pending(now + self.debounce_s, size, mtime,
                                              moved_from=old.moved_from if old else None,
                                              is_dir=event.is_directory)
            self.idle.clear()
            self._cond.notify_all()

    def _take_ready(self) -> tuple[dict[str, _Pending], float | None]:
        """Pending changes whose quiet period is over and whose size settled."""
        now = time.monotonic()
        ready: dict[str, _Pending] = {}
        next_due: float | None = None
        with self._cond:
            for path, p in list(self._pending.items()):
                if p.due > now:
                    next_due = p.due if next_due is None else min(next_due, p.due)
                    continue
                if not p.deleted:
                    size, mtime = _stat(path)
                    if (size, mtime) != (p.size, p.mtime_ns):
                        # Still being written: wait another quiet period.
                        p.size, p.mtime_ns, p.due = size, mtime, now + self.debounce_s
                        next_due = p.due if next_due is None else min(next_due, p.due)
                        continue
                ready[path] = self._pending.pop(path)
        return ready, next_due

    # -- the worker -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            todo = self._refresh_folders()
            self.kb.reconcile(todo, self.progress)
        except Exception:
            log.exception("start-up reconcile failed")
        self.ready.set()
        last_reconcile = last_health = time.monotonic()
        while not self._stop.is_set():
            ready, next_due = self._take_ready()
            if ready:
                try:
                    self._apply(ready)
                except Exception:
                    log.exception("applying file changes failed")
                continue
            now = time.monotonic()
            if now - last_health >= HEALTH_S:
                last_health = now
                try:
                    todo = self._refresh_folders()
                    if todo:
                        self.kb.reconcile(todo, self.progress)
                except Exception:
                    log.exception("folder check failed")
            if self.reconcile_s and now - last_reconcile >= self.reconcile_s:
                last_reconcile = now
                try:
                    self.kb.reconcile(None, self.progress)
                except Exception:
                    log.exception("periodic reconcile failed")
            with self._cond:
                if not self._pending:
                    self.idle.set()
                wait = HEALTH_S if next_due is None else max(0.01, next_due - time.monotonic())
                self._cond.wait(min(wait, HEALTH_S))

    def _folder_of(self, path: str) -> Folder | None:
        best: Folder | None = None
        for fid, rules in self._rules.items():
            if rules.contains(path) and (best is None or len(rules.root) > len(best.path)):
                best = self._folders[fid]
        return best

    def _apply(self, ready: dict[str, _Pending]) -> None:
        idx = self.kb.indexer
        if len(ready) > STORM_PATHS:
            folders = {f.id: f for p in ready if (f := self._folder_of(p)) is not None}
            log.info("%d changes at once: rescanning %d folder(s)", len(ready), len(folders))
            self.kb.reconcile(list(folders.values()), self.progress)
            return
        removed: list[str] = []
        changed: list[tuple[Folder, str]] = []
        rescan: set[int] = set()
        for path, p in sorted(ready.items()):
            folder = self._folder_of(path)
            if folder is not None and path == folder.path:
                rescan.add(folder.id)  # the folder itself went or came back
                continue
            exists = os.path.lexists(path)
            if p.deleted and not exists:
                removed.append(path)
                continue
            if folder is None:
                continue
            if os.path.isdir(path):
                # A folder created or moved in: index what it holds.
                rules = self._rules[folder.id]
                if rules.wanted(os.path.join(path, "x.txt")) is None:
                    continue
                changed += [(folder, e.path) for e in rules.walk(under=path)
                            if isinstance(e, Entry)]
                if p.moved_from:
                    removed.append(p.moved_from)
                continue
            if self._rules[folder.id].wanted(path) is None:
                if p.moved_from is None and self.kb.manifest.file(path) is not None:
                    removed.append(path)  # e.g. a .gitignore now excludes it
                continue
            changed.append((folder, path))
        # Index first, remove after: a renamed file reuses its old vectors.
        if changed:
            idx.index_paths(changed, self.progress)
        if removed:
            idx.remove_paths([r for r in removed if not os.path.lexists(r)], self.progress)
        if rescan:
            self.kb.reconcile([f for f in self.kb.folders() if f.id in rescan], self.progress)

