"""Commits come by time, not only after BATCH_CHUNKS passages: a writer
killed soon after it started has kept its first commit. After a writer died
between writing Chroma and the manifest, `hearth index status` says how many
passages the next start repairs, and stops saying it once it has."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from app.core.knowledge.base import KnowledgeBase
from app.core.knowledge.indexer import BATCH_CHUNKS
from app.core.knowledge.store import compare
from app.paths import Paths
from app.settings import Settings
from tests.helpers import REPO, run_hearth
from tests.integration.knowledge.conftest import consistent
from tests.kb_helpers import wait_for

FILES = 60


def _write(docs: Path) -> None:
    # Twelve passages a file or so: the first BATCH_CHUNKS passages need ~22 files.
    for i in range(FILES):
        paras = [f"Survey {i}, plot {j}: the team counted {i * 17 + j} oaks and "
                 f"{j * 5 + i} birches on the north slope, soil sample {i}-{j}. " * 4
                 for j in range(12)]
        (docs / f"survey-{i:03d}.md").write_text(f"# Survey {i}\n\n" + "\n\n".join(paras))


def _committed(db: Path) -> tuple[int, int]:
    """(files indexed, passages) as committed to the manifest."""
    if not db.exists():
        return 0, 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            files = con.execute("SELECT COUNT(*) FROM files WHERE status = 'indexed'").fetchone()
            chunks = con.execute("SELECT COUNT(*) FROM chunks").fetchone()
            return int(files[0]), int(chunks[0])
        except sqlite3.OperationalError:
            return 0, 0  # the tables are not there yet
        finally:
            con.close()
    except sqlite3.Error:
        return 0, 0


def _env(paths: Paths) -> dict[str, str]:
    env = {**os.environ, "HEARTH_HOME": str(paths.config_dir.parent)}
    env.pop("QT_QPA_PLATFORM", None)
    return env


def test_a_writer_killed_after_its_first_commit_keeps_it(paths: Paths, settings: Settings,
                                                         tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    _write(docs)
    db = paths.data_dir / "knowledge" / "manifest.sqlite3"
    proc = subprocess.Popen([sys.executable, "-m", "app", "index", "add", str(docs)], cwd=REPO,
                            env=_env(paths), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _committed(db)[0] > 0 or proc.poll() is not None, timeout=240,
                 interval=0.01, what="the first commit")
        assert proc.poll() is None, "indexing finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    files, passages = _committed(db)
    # Commits by count alone came only after BATCH_CHUNKS passages.
    assert 0 < passages < BATCH_CHUNKS
    assert 0 < files < FILES
    with KnowledgeBase(paths, settings) as reader:
        kept = {r.path for r in reader.manifest.files(statuses=["indexed"])}

    with KnowledgeBase(paths, settings, writer=True) as kb:
        assert kb.needs_repair
        # What was committed survived the kill, vectors included.
        assert kept <= {r.path for r in kb.manifest.files(statuses=["indexed"])}
        assert kb.vectors is not None
        assert kb.manifest.chunk_ids_of_paths(sorted(kept)) and not compare(
            kb.manifest, kb.vectors).missing
        stats = kb.reconcile()
        assert stats.failed == 0 and stats.skipped == 0
        assert stats.indexed <= FILES - len(kept)  # kept files are not read again
        assert len(kb.manifest.files(statuses=["indexed"])) == FILES
        assert consistent(kb)


# A writer that dies right after Chroma has taken its second batch, before the
# manifest records it: the SIGKILL comes from inside, at exactly that point.
DIE_AFTER_CHROMA = """
import os, signal, sys
from app.core.knowledge.base import KnowledgeBase
from app.core.knowledge.store import VectorStore
from app.paths import get_paths
from app.settings import Settings

real_add = VectorStore.add
calls = [0]

def add(self, *args, **kwargs):
    real_add(self, *args, **kwargs)
    calls[0] += 1
    if calls[0] == 2:
        os.kill(os.getpid(), signal.SIGKILL)

VectorStore.add = add
paths = get_paths()
kb = KnowledgeBase(paths, Settings.load(paths), writer=True)
kb.reconcile([kb.add_folder(sys.argv[1])])
"""


def test_status_tells_what_the_next_start_repairs(paths: Paths, settings: Settings,
                                                  tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    _write(docs)
    proc = subprocess.run([sys.executable, "-c", DIE_AFTER_CHROMA, str(docs)], cwd=REPO,
                          env=_env(paths), capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    with KnowledgeBase(paths, settings) as reader:
        found = compare(reader.manifest, reader.vectors)
    assert found.stray and not found.missing  # Chroma holds a batch the manifest lacks

    r = run_hearth("index", "status")
    assert r.returncode == 0, r.stderr
    assert f"{len(found.stray):,} passages will be repaired on the next start" in r.stdout
    r = run_hearth("index", "status", "--json")
    assert '"to_repair": ' + str(len(found.stray)) in r.stdout

    with KnowledgeBase(paths, settings, writer=True) as kb:
        kb.reconcile()
        assert consistent(kb)
    r = run_hearth("index", "status")
    assert r.returncode == 0, r.stderr
    assert "will be repaired" not in r.stdout
    assert f"{FILES:,} files indexed" in r.stdout
