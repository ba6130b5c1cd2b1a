"""`hearth index …` and `hearth search`: the command line over app.core.knowledge.

Long work shows a progress bar on a terminal (files and chunks done, rate,
current file) and plain lines otherwise."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

from app.cli_common import EXIT_OK, EXIT_USAGE, fail, load_settings
from app.core.text import shown

if TYPE_CHECKING:  # the index is imported when a command runs, for a quick start-up
    from app.core.knowledge.base import KnowledgeBase
    from app.core.knowledge.progress import Stats

# The most results one search returns (enough for Recall@100).
MAX_RESULTS = 100


def add_parsers(sub: Any) -> None:
    index = sub.add_parser("index", help="watched folders: add, remove, status, watch")
    isub = index.add_subparsers(dest="action", required=True, parser_class=type(index))
    add = isub.add_parser("add", help="index a folder and keep it in the index")
    add.add_argument("path")
    add.add_argument("--include", action="append", default=[], metavar="GLOB",
                     help="only files matching this glob (repeatable)")
    add.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                     help="leave out files matching this glob (repeatable)")
    add.add_argument("--local-only", action="store_true",
                     help="text from this folder never goes to a remote model")
    rm = isub.add_parser("remove", help="stop indexing a folder and drop its index")
    rm.add_argument("path")
    for name, text in (("pause", "stop following a folder's changes (its index is kept)"),
                       ("resume", "follow a paused folder again")):
        p = isub.add_parser(name, help=text)
        p.add_argument("path")
    st = isub.add_parser("status", help="watched folders and how much of them is indexed")
    st.add_argument("--json", action="store_true")
    st.add_argument("--errors", action="store_true", help="list files skipped and why")
    isub.add_parser("watch", help="index, then follow changes until Ctrl+C")

    search = sub.add_parser("search", help="search the indexed folders")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=None, metavar="N",
                        help=f"how many results (at most {MAX_RESULTS}; default knowledge.top_k)")
    search.add_argument("--per-file", type=int, default=1, metavar="N",
                        help="passages from each file found (default 1: one result a file)")
    search.add_argument("--json", action="store_true")
    search.add_argument("--folder", action="append", metavar="PATH",
                        help="only this indexed folder (repeatable)")
    search.add_argument("--type", action="append", metavar="KIND", dest="kinds",
                        help="only this kind: markdown, code, text, pdf, html, docx, rst, org, "
                             "data (repeatable)")
    search.add_argument("--glob", metavar="GLOB", help="only paths matching this glob")
    search.add_argument("--mmr", action=argparse.BooleanOptionalAction, default=None,
                        help="reorder the files to prefer varied ones (default knowledge.mmr)")


def _open(writer: bool) -> KnowledgeBase:
    from app.core.knowledge.base import KnowledgeBase
    from app.paths import get_paths

    return KnowledgeBase(get_paths(), load_settings(), writer=writer)


def cmd_index(args: argparse.Namespace) -> int:
    from app.core.errors import HearthError
    from app.core.knowledge.store import IndexBusyError
    from app.paths import DataDirError

    try:
        if args.action in ("status", "pause", "resume"):
            kb = _open(writer=False)
            try:
                if args.action == "status":
                    return _status(kb, args)
                folder = kb.set_paused(args.path, args.action == "pause")
                print(f"{shown(folder.path)}: {'paused' if folder.paused else 'followed again'}")
                return EXIT_OK
            finally:
                kb.close()
        try:
            kb = _open(writer=True)
        except IndexBusyError as exc:
            if args.action == "add":
                return _add_through_running(args, str(exc))
            return fail(str(exc))
        try:
            if args.action in ("add", "watch"):
                from app.core.foreground import lower_priority

                # Indexing is background work: an answer asked meanwhile
                # (here or in the window) gets the cores first.
                lower_priority()
            if args.action == "add":
                return _add(kb, args)
            if args.action == "remove":
                folder = kb.find_folder(args.path)
                n = kb.remove_folder(args.path)
                print(f"Removed {shown(folder.path)} from the index ({n:,} chunks).")
                return EXIT_OK
            return _watch(kb)
        finally:
            kb.close()
    except (HearthError, DataDirError) as exc:
        return fail(str(exc))


def _add(kb: KnowledgeBase, args: argparse.Namespace) -> int:
    folder = kb.add_folder(args.path, args.include, args.exclude, args.local_only)
    note = " (local only)" if folder.local_only else ""
    print(f"Indexing {shown(folder.path)}{note}", file=sys.stderr)
    with Reporter() as report:
        stats = kb.reconcile([folder], report)
    _summary(stats)
    return EXIT_OK


def _add_through_running(args: argparse.Namespace, busy: str) -> int:
    """Another process holds the writer lock: record the folder; the running
    watcher notices new folders within seconds and indexes them."""
    kb = _open(writer=False)
    try:
        from app.core.knowledge.base import writer_pid

        pid = writer_pid(kb.dir)
        folder = kb.add_folder(args.path, args.include, args.exclude, args.local_only)
        if pid is None:
            return fail(busy)
        print(f"Added {shown(folder.path)}; the running Hearth (pid {pid}) is indexing it "
              "(`hearth index status` shows progress).")
        return EXIT_OK
    finally:
        kb.close()


def _watch(kb: KnowledgeBase) -> int:
    from app.core.knowledge.watcher import Watcher, WatchWarning

    folders = kb.folders()
    if not folders:
        return fail("no folders are indexed yet; add one with `hearth index add PATH`.")

    def warn(w: WatchWarning) -> None:
        print(f"hearth: warning: {shown(w.folder)}: {w.message}", file=sys.stderr)

    stop = {"flag": False}
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(_sig: int, _frame: Any) -> None:
        stop["flag"] = True
        watcher.request_stop()

    with Reporter(follow=True) as report:
        watcher = Watcher(kb, report, on_warning=warn)
        signal.signal(signal.SIGINT, on_interrupt)
        signal.signal(signal.SIGTERM, on_interrupt)
        try:
            print(f"Watching {len(folders)} folder(s); Ctrl+C stops.", file=sys.stderr)
            watcher.start()
            watcher.wait()
        finally:
            watcher.stop()
            signal.signal(signal.SIGINT, previous)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    print("Stopped watching.", file=sys.stderr)
    return EXIT_OK


def _status(kb: KnowledgeBase, args: argparse.Namespace) -> int:
    data = kb.status(errors=args.errors)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not data["folders"]:
        print("No folders are indexed. Add one with `hearth index add PATH`.")
        return EXIT_OK
    import datetime

    for f in data["folders"]:
        flags = [w for w, on in (("local only", f["local_only"]), ("paused", f["paused"])) if on]
        if f["state"] != "ok":
            flags.append(f"UNAVAILABLE: {f['error']}")
        when = (datetime.datetime.fromtimestamp(f["scanned_at"]).strftime("%Y-%m-%d %H:%M")
                if f["scanned_at"] else "never")
        print(f"{shown(f['path'])}{'  (' + ', '.join(flags) + ')' if flags else ''}")
        print(f"    {f['indexed']:,} files indexed, {f['chunks']:,} chunks; "
              f"{f['pending']:,} waiting, {f['skipped']:,} skipped, {f['failed']:,} failed; "
              f"last scan {when}")
        if f["include"] or f["exclude"]:
            print(f"    include {f['include'] or 'all'}, exclude {f['exclude'] or 'none'}")
        for e in f.get("errors", []):
            print(f"    {e['status']:<8} {shown(e['path'])}: {e['reason']}")
    writer = (f"being updated by pid {data['writer_pid']}" if data["writer_pid"]
              else "no process is updating it")
    print(f"Index: {data['chunks']:,} chunks, {data['vectors']:,} vectors, model "
          f"{data['embedding_model']}; {writer}.")
    if data["to_repair"]:
        print(f"{data['to_repair']:,} passages will be repaired on the next start (the last "
              "process updating the index stopped mid-way).")
    if not args.errors and any(f["skipped"] or f["failed"] for f in data["folders"]):
        print("`hearth index status --errors` lists the files left out and why.")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from app.core.errors import HearthError
    from app.paths import DataDirError

    if args.k is not None and not 1 <= args.k <= MAX_RESULTS:
        return fail(f"-k must be from 1 to {MAX_RESULTS}.", EXIT_USAGE)
    if args.per_file < 1:
        return fail("--per-file must be 1 or more.", EXIT_USAGE)
    try:
        kb = _open(writer=False)
        try:
            if not kb.folders():
                return fail("no folders are indexed yet; add one with `hearth index add PATH`.")
            results = kb.search(args.query, args.k, folders=args.folder, kinds=args.kinds,
                                path_glob=args.glob, mmr=args.mmr, per_file=args.per_file)
        finally:
            kb.close()
    except (HearthError, DataDirError) as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not results:
        print("Nothing found.")
    for n, r in enumerate(results, start=1):
        where = shown(r.path)
        if r.page is not None:
            where += f" page {r.page}"
        if r.start_line is not None:
            where += f":{r.start_line}-{r.end_line}"
        print(f"[{n}] {where}  (score {r.score:.4f})\n    {r.snippet()}")
    return EXIT_OK


def _summary(stats: Stats) -> None:
    rate = stats.chunks_embedded / stats.seconds if stats.seconds else 0.0
    print(f"Done in {stats.seconds:.1f} s: {stats.indexed:,} files indexed, "
          f"{stats.unchanged:,} unchanged, {stats.skipped + stats.failed:,} left out, "
          f"{stats.removed:,} removed; {stats.chunks_embedded:,} chunks embedded "
          f"({rate:.0f}/s), {stats.chunks_reused:,} reused.", file=sys.stderr)
    if stats.skipped + stats.failed:
        print("`hearth index status --errors` lists the files left out and why.",
              file=sys.stderr)


class Reporter:
    """Turns indexer progress events into a rich progress bar (terminal) or
    plain lines (pipes, logs)."""

    def __init__(self, follow: bool = False) -> None:
        self.follow = follow
        self.tty = sys.stderr.isatty()
        self.files_total = 0
        self.files_done = 0
        self.chunks = 0
        self._embedded_in_run = 0
        self.started = time.monotonic()
        self.last_line = 0.0
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Reporter:
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.fields[phase]}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("files · {task.fields[chunks]:,} chunks · {task.fields[rate]}"),
                TimeElapsedColumn(), TextColumn("{task.fields[current]}"),
                console=Console(stderr=True), transient=not self.follow)
            self._progress.start()
            self._task = self._progress.add_task("index", total=None, phase="scanning",
                                                 chunks=0, rate="", current="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def _rate(self) -> str:
        dt = time.monotonic() - self.started
        return f"{self.chunks / dt:,.0f} chunks/s" if dt > 0 and self.chunks else ""

    # Complex on purpose: one branch per indexing event it prints.
    def __call__(self, event: Any) -> None:  # noqa: C901
        from app.core.knowledge import progress as ev

        if isinstance(event, ev.Scanning):
            self._update(phase="scanning", current=shown(event.folder))
        elif isinstance(event, ev.Scanned):
            self._embedded_in_run = 0
            self.files_total += event.changed
            if self._progress is not None:
                self._progress.update(self._task, total=self.files_total or None)
            elif event.changed or not self.follow:
                self._line(f"{shown(event.folder)}: {event.files:,} files, "
                           f"{event.changed:,} new or changed", force=True)
        elif isinstance(event, ev.FileStarted):
            self._update(phase="indexing", current=_short(shown(event.path)))
        elif isinstance(event, ev.FileDone):
            self.files_done += 1
            if self.follow and not self._progress:
                self._line(f"indexed {shown(event.path)} ({event.chunks} chunks)", force=True)
            self._update(advance=1)
        elif isinstance(event, ev.FileFailed):
            self.files_done += 1
            self._print(f"{event.status}: {shown(event.path)}: {event.reason}")
            self._update(advance=1)
        elif isinstance(event, ev.FileRemoved):
            if self.follow:
                self._print(f"removed {shown(event.path)}")
        elif isinstance(event, ev.FolderUnavailable):
            self._print(f"warning: {shown(event.folder)}: {event.reason}")
        elif isinstance(event, ev.Embedding):
            # `done` counts up within one indexing run and starts again at the next.
            step = event.done - self._embedded_in_run
            self.chunks += event.done if step < 0 else step
            self._embedded_in_run = event.done
            self._update(phase="embedding", current=f"chunks {event.done:,}/{event.total:,}")
        elif isinstance(event, ev.RunDone) and self.follow:
            s = event.stats
            if s.indexed or s.removed or s.failed or s.skipped:
                self._print(f"up to date: {s.indexed:,} indexed, {s.removed:,} removed, "
                            f"{s.skipped + s.failed:,} left out")
            self.files_total = self.files_done = 0
            if self._progress is not None:
                self._progress.reset(self._task, total=None, phase="watching", chunks=self.chunks,
                                     rate="", current="")

    def _update(self, advance: int = 0, **fields: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=advance, chunks=self.chunks,
                                  rate=self._rate(), **fields)
        elif not self.follow:
            self._line(f"files {self.files_done:,}/{self.files_total:,} · chunks "
                       f"{self.chunks:,} · {self._rate()}")

    def _line(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_line >= 2.0:
            self.last_line = now
            print(text, file=sys.stderr, flush=True)

    def _print(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)


def _short(path: str, width: int = 48) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1):]
