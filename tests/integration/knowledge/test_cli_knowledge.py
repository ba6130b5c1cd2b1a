"""`hearth index …` and `hearth search` through the real CLI in subprocesses."""

from __future__ import annotations

import json
import os
from pathlib import Path

from app.core.knowledge.base import KnowledgeBase
from app.paths import Paths
from app.settings import Settings
from tests.helpers import run_hearth


def _docs(root: Path) -> Path:
    root.mkdir()
    (root / "whales.md").write_text("# Whales\n\nHumpback whales sing long, complex songs.\n")
    (root / "empty.txt").write_text("")
    (root / "fake.txt").write_bytes(bytes(range(256)) * 16)
    return root


def test_add_status_search_remove(tmp_path: Path) -> None:
    docs = _docs(tmp_path / "docs")
    r = run_hearth("index", "add", str(docs), "--exclude", "*.log", "--local-only")
    assert r.returncode == 0, r.stderr
    assert "Done in" in r.stderr and "1 files indexed" in r.stderr
    assert "skipped:" in r.stderr  # plain lines when not a terminal

    st = json.loads(run_hearth("index", "status", "--json", "--errors").stdout)
    f = st["folders"][0]
    assert f["path"] == str(docs) and f["local_only"] and f["exclude"] == ["*.log"]
    assert (f["indexed"], f["skipped"], f["chunks"]) == (1, 2, st["vectors"])
    assert {os.path.basename(e["path"]): e["reason"] for e in f["errors"]} == {
        "empty.txt": "the file is empty", "fake.txt": "the file holds binary data, not text"}

    text = run_hearth("index", "status", "--errors").stdout
    assert "fake.txt: the file holds binary data" in text and "(local only)" in text

    found = json.loads(run_hearth("search", "singing whales", "-k", "2", "--json").stdout)
    assert found[0]["path"] == str(docs / "whales.md")
    assert found[0]["start_line"] == 1 and found[0]["local_only"] is True
    plain = run_hearth("search", "singing whales", "-k", "1")
    assert plain.stdout.startswith(f"[1] {docs / 'whales.md'}:1-3")

    assert run_hearth("index", "pause", str(docs)).stdout.strip().endswith("paused")
    assert json.loads(run_hearth("index", "status", "--json").stdout)["folders"][0]["paused"]
    run_hearth("index", "resume", str(docs))

    r = run_hearth("index", "remove", str(docs))
    assert r.returncode == 0 and "Removed" in r.stdout
    assert json.loads(run_hearth("index", "status", "--json").stdout)["folders"] == []
    r = run_hearth("search", "whales")
    assert r.returncode == 1 and "no folders are indexed" in r.stderr


def test_bad_arguments_are_one_sentence(tmp_path: Path) -> None:
    r = run_hearth("index", "add", str(tmp_path / "nope"))
    assert r.returncode == 1 and r.stderr.strip() == f"hearth: {tmp_path / 'nope'} is not a folder."
    r = run_hearth("index", "remove", str(tmp_path))
    assert r.returncode == 1 and "is not an indexed folder" in r.stderr
    assert run_hearth("search", "x", "-k", "0").returncode == 2


def test_a_second_writer_goes_through_the_running_one(paths: Paths, settings: Settings,
                                                      tmp_path: Path) -> None:
    docs = _docs(tmp_path / "docs")
    with KnowledgeBase(paths, settings, writer=True) as running:
        r = run_hearth("index", "add", str(docs))
        assert r.returncode == 0, r.stderr
        assert f"the running Hearth (pid {os.getpid()}) is indexing it" in r.stdout
        assert [f.path for f in running.folders()] == [str(docs)]
        r = run_hearth("index", "remove", str(docs))
        assert r.returncode == 1
        assert f"Another Hearth process (pid {os.getpid()}) is updating the index" in r.stderr
        # Readers need no lock.
        assert run_hearth("index", "status").returncode == 0


def test_watch_follows_changes_until_interrupted(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from tests.helpers import REPO
    from tests.kb_helpers import wait_for

    docs = _docs(tmp_path / "docs")
    assert run_hearth("index", "add", str(docs)).returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    proc = subprocess.Popen([sys.executable, "-m", "app", "index", "watch"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        (docs / "owls.md").write_text("Barn owls hunt by sound in complete darkness.")

        def found() -> bool:
            r = run_hearth("search", "owls hunting in the dark", "-k", "1", "--json")
            return r.returncode == 0 and json.loads(r.stdout)[0]["path"] == str(docs / "owls.md")

        wait_for(found, timeout=60, interval=0.2, what="the watcher to index the new file")
        # A second writer is refused while `watch` runs; readers are not.
        r = run_hearth("index", "remove", str(docs))
        assert r.returncode == 1 and "Another Hearth process" in r.stderr
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Watching 1 folder(s)" in err and "Stopped watching." in err
    assert f"indexed {docs / 'owls.md'}" in err


def test_every_file_left_out_is_listed_with_its_name_escaped(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "whales.md").write_text("# Whales\n\nHumpback whales sing long, complex songs.\n")
    (docs / "two\nlines.txt").write_text("")
    os.mkfifo(docs / "pipe.txt")
    added = run_hearth("index", "add", str(docs))
    assert added.returncode == 0, added.stderr
    assert f"skipped: {docs}/two\\nlines.txt: the file is empty\n" in added.stderr
    assert f"failed: {docs}/pipe.txt: not a regular file: a named pipe (FIFO) is never read\n" \
        in added.stderr
    status = run_hearth("index", "status", "--errors").stdout
    assert f"{docs}/two\\nlines.txt: the file is empty\n" in status
    assert f"{docs}/pipe.txt: not a regular file: a named pipe (FIFO) is never read\n" in status
    # No line of either output starts inside a file name.
    assert not [line for line in (added.stderr + status).splitlines()
                if line.startswith("lines.txt")]
