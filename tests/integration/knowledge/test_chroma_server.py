"""knowledge.chroma_mode = server: the same indexing and search against a real
Chroma server (`chroma run`, from the chromadb package) on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.knowledge.base import KnowledgeBase
from app.paths import Paths
from app.settings import Settings
from tests.integration.knowledge.conftest import consistent
from tests.kb_helpers import wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/api/v2/heartbeat", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("chroma", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("the chroma command (chromadb package) is not installed")
    port = _free_port()
    proc = subprocess.Popen([exe, "run", "--path", str(tmp_path / "server"), "--host",
                             "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(url) or proc.poll() is not None, timeout=60, what="chroma run")
        assert proc.poll() is None, "the Chroma server did not start"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_index_and_search_through_a_chroma_server(chroma_server: str, paths: Paths,
                                                  settings: Settings, tmp_path: Path) -> None:
    settings.override("knowledge.chroma_mode", "server")
    settings.override("knowledge.chroma_url", chroma_server)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tides.md").write_text("Spring tides happen at new and full moon.")
    (docs / "stars.md").write_text("Polaris sits almost exactly above the north pole.")
    with KnowledgeBase(paths, settings, writer=True) as kb:
        kb.add_folder(docs)
        assert kb.reconcile().indexed == 2
        assert consistent(kb)
        assert not (paths.data_dir / "knowledge" / "chroma").exists()  # nothing embedded here
    with KnowledgeBase(paths, settings) as reader:
        assert reader.search("moon and tides", 1)[0].path == str(docs / "tides.md")
        assert reader.status()["vectors"] == 2
