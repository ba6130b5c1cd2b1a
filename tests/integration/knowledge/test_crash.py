"""kill -9 in the middle of indexing, then a restart: the index opens, the
reconcile scan makes the manifest and Chroma agree, no file is half-indexed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from app.core.knowledge.base import KnowledgeBase
from app.paths import Paths
from app.settings import Settings
from tests.helpers import REPO
from tests.integration.knowledge.conftest import consistent
from tests.kb_helpers import wait_for


def _indexed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(con.execute("SELECT COUNT(*) FROM files WHERE status = 'indexed'")
                       .fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_kill_9_while_indexing_then_restart(paths: Paths, settings: Settings,
                                            tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(240):
        paras = [f"Report {i}, section {j}: the river station measured {i * 13 + j} units "
                 f"of rainfall and flow {j * 7 + i} while the crew noted item {i}-{j}."
                 for j in range(12)]
        (docs / f"report-{i:03d}.md").write_text(f"# Report {i}\n\n" + "\n\n".join(paras))
    env = {**os.environ, "HEARTH_HOME": str(paths.config_dir.parent)}
    env.pop("QT_QPA_PLATFORM", None)
    proc = subprocess.Popen([sys.executable, "-m", "app", "index", "add", str(docs)], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = paths.data_dir / "knowledge" / "manifest.sqlite3"
    try:
        wait_for(lambda: _indexed(db) > 0 or proc.poll() is not None, timeout=240,
                 interval=0.02, what="the first batch committed")
        assert proc.poll() is None, "indexing finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    done_before = _indexed(db)
    assert 0 < done_before < 240

    with KnowledgeBase(paths, settings, writer=True) as kb:  # the index opens
        assert kb.needs_repair  # it knows the last writer died
        stats = kb.reconcile()
        assert stats.failed == 0 and stats.skipped == 0
        assert len(kb.manifest.files(statuses=["indexed"])) == 240
        assert consistent(kb)
        # Files finished before the kill were not embedded again.
        assert stats.indexed <= 240 - done_before + 60
        top = kb.search("Report 123 river station rainfall", 1)[0]
        assert top.path == str(docs / "report-123.md")
    with KnowledgeBase(paths, settings, writer=True) as kb:
        assert not kb.needs_repair  # closed cleanly this time
