"""Indexing end to end on real Chroma and the real ONNX model: incremental
updates, renames without re-embedding, removal, bad inputs, offline."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from app.core import offline
from app.core.knowledge.base import KnowledgeBase, shared_embedder
from app.core.knowledge.store import KnowledgeIndexError
from app.paths import Paths
from app.settings import Settings
from tests.helpers import REPO
from tests.integration.knowledge.conftest import consistent, paths_found
from tests.kb_helpers import make_docx, make_pdf

VOLCANO = ("# Volcanoes\n\nMount Etna is an active stratovolcano on the east coast of Sicily. "
           "Its eruptions are frequent and its lava flows reach the villages below.\n")
BREAD = ("Sourdough bread rises with a starter of wild yeast and lactic acid bacteria. "
         "Feed the starter with flour and water every day.\n")
CODE = ('def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n'
        "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n")


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


def test_index_search_update_rename_delete(kb: KnowledgeBase, docs: Path) -> None:
    _write(docs, {"geo/volcano.md": VOLCANO, "bread.txt": BREAD, "src/fib.py": CODE})
    folder = kb.add_folder(docs)
    stats = kb.reconcile()
    assert (stats.indexed, stats.failed, stats.skipped) == (3, 0, 0)
    assert consistent(kb)
    top = kb.search("volcano eruption in Sicily", 3)[0]
    assert top.path == str(docs / "geo/volcano.md")
    assert (top.start_line, top.end_line) == (1, 3)
    assert top.vector_score is not None and top.keyword_score is not None
    assert paths_found(kb, "how do I compute fibonacci numbers")[0] == str(docs / "src/fib.py")

    # Nothing changed: nothing is read again, nothing embedded.
    again = kb.reconcile()
    assert (again.indexed, again.chunks_embedded, again.unchanged) == (0, 0, 3)

    # A changed file: only its new chunk is embedded; old text leaves the index.
    (docs / "bread.txt").write_text(BREAD + "\n\nRye flour makes a darker, denser loaf.\n")
    changed = kb.reconcile()
    assert changed.indexed == 1 and 1 <= changed.chunks_embedded <= 2
    assert kb.search("dense dark rye loaf", 1)[0].path == str(docs / "bread.txt")

    # Touched but identical content: the hash says unchanged.
    os.utime(docs / "src/fib.py", (1, 1))
    touched = kb.reconcile()
    assert touched.indexed == 0 and touched.chunks_embedded == 0

    # A rename keeps the vectors: nothing is embedded again.
    (docs / "geo/volcano.md").rename(docs / "geo/etna.md")
    renamed = kb.reconcile()
    assert renamed.chunks_embedded == 0 and renamed.chunks_reused >= 1 and renamed.removed == 1
    assert kb.search("volcano eruption in Sicily", 1)[0].path == str(docs / "geo/etna.md")
    assert consistent(kb)

    # A deleted file's chunks go.
    (docs / "geo/etna.md").unlink()
    gone = kb.reconcile()
    assert gone.removed == 1
    assert str(docs / "geo/etna.md") not in paths_found(kb, "volcano eruption in Sicily")
    assert consistent(kb)

    # Removing the folder drops all of it.
    kb.remove_folder(folder.path)
    assert kb.vectors is not None and kb.vectors.count() == 0
    assert kb.manifest.counts() == {"chunks": 0}


def test_filters_folder_kind_and_glob(kb: KnowledgeBase, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, {"volcano.md": VOLCANO, "fib.py": CODE})
    _write(b, {"etna.txt": VOLCANO.replace("# Volcanoes", "Notes")})
    kb.add_folder(a)
    kb.add_folder(b)
    kb.reconcile()
    assert {r.path for r in kb.search("Etna volcano", 5, folders=[str(b)])} == {str(b / "etna.txt")}
    assert {r.path for r in kb.search("Etna volcano", 5, kinds=["markdown"])} == {
        str(a / "volcano.md")}
    assert {r.path for r in kb.search("Etna volcano", 5, path_glob="*.txt")} == {
        str(b / "etna.txt")}


def test_every_kind_of_bad_input_is_recorded_and_the_rest_is_indexed(
        kb: KnowledgeBase, docs: Path) -> None:
    _write(docs, {"good.md": VOLCANO})
    (docs / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (docs / "empty.md").write_bytes(b"")
    with open(docs / "huge.txt", "wb") as fh:  # 2 GB, sparse: costs no disk
        fh.truncate(2 * 1024**3)
    (docs / "broken.pdf").write_bytes(make_pdf(["text"])[:200])
    w = PdfWriter()
    w.add_page(PdfReader(io.BytesIO(make_pdf(["secret"]))).pages[0])
    w.encrypt(user_password="pw", owner_password="owner")
    w.write(str(docs / "locked.pdf"))
    (docs / "paper.pdf").write_bytes(make_pdf(["Introduction to glaciers", "Glacier calving "
                                                "happens when ice breaks off"]))
    make_docx(docs / "letter.docx", ["The annual picnic moves to the lakeside meadow."])
    (docs / "latin1.txt").write_bytes(("Crème brûlée recette: le caramel doit être doré. "
                                       * 10).encode("cp1252"))
    # 1 MB on one line. Its pieces repeat, so it embeds fast here (a repeated
    # passage is indexed once); cutting varied long lines is a chunker unit test.
    (docs / "oneline.txt").write_text("zebra " * 170_000)
    (docs / "odd 'name' ünï 🔥 [x].md").write_text("Quokkas are small marsupials from Rottnest.")
    os.symlink(docs / "loop1.md", docs / "loop2.md")
    os.symlink(docs / "loop2.md", docs / "loop1.md")
    os.symlink(docs, docs / "sub-loop")
    kb.add_folder(docs)
    stats = kb.reconcile()
    status = kb.status(errors=True)["folders"][0]
    reasons = {os.path.basename(e["path"]): e["reason"] for e in status["errors"]}
    assert "binary" in reasons["binary.txt"]
    assert "empty" in reasons["empty.md"]
    assert "over the 20 MB limit" in reasons["huge.txt"]
    assert "PDF" in reasons["broken.pdf"]
    assert "encrypted" in reasons["locked.pdf"]
    assert "symlink loop" in reasons["loop1.md"] and "symlink loop" in reasons["loop2.md"]
    assert "symlink loop" in reasons["sub-loop"]
    assert stats.indexed == 6  # good, paper, letter, latin1, oneline, odd name
    page = kb.search("glacier calving ice", 1)[0]
    assert page.path.endswith("paper.pdf") and page.page == 2
    assert kb.search("picnic at the lake", 1)[0].path.endswith("letter.docx")
    assert kb.search("caramel crème brûlée", 1)[0].path.endswith("latin1.txt")
    assert kb.search("quokka marsupial", 1)[0].path == str(docs / "odd 'name' ünï 🔥 [x].md")
    oneline = kb.manifest.file(str(docs / "oneline.txt"))
    assert oneline is not None and oneline.status == "indexed" and oneline.size > 1_000_000
    assert kb.search("zebra", 1)[0].path == str(docs / "oneline.txt")
    assert consistent(kb)


def test_a_zip_named_docx_is_reported_once_until_it_changes(kb: KnowledgeBase,
                                                            docs: Path) -> None:
    import zipfile

    _write(docs, {"good.md": VOLCANO})
    fake = docs / "fake.docx"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("notes.txt", "no document here")
    kb.add_folder(docs)
    first = kb.reconcile()
    assert first.problems == [(str(fake), "not a Word document: the zip archive has no "
                                          "word/document.xml")]
    assert kb.reconcile().problems == []  # remembered: the unchanged file is not read again
    with zipfile.ZipFile(fake, "a") as archive:
        archive.writestr("more.txt", "changed")
    assert [p for p, _ in kb.reconcile().problems] == [str(fake)]


def test_file_deleted_between_event_and_read(kb: KnowledgeBase, docs: Path) -> None:
    _write(docs, {"a.md": VOLCANO, "b.md": BREAD})
    folder = kb.add_folder(docs)
    kb.reconcile()
    (docs / "a.md").unlink()
    stats = kb.indexer.index_paths([(folder, str(docs / "a.md")), (folder, str(docs / "new.md"))])
    assert stats.failed == 0 and stats.removed == 1
    assert kb.manifest.file(str(docs / "a.md")) is None
    assert consistent(kb)


def test_file_being_written_while_read_is_never_half_indexed(kb: KnowledgeBase,
                                                             docs: Path) -> None:
    path = docs / "growing.txt"
    path.write_text("start\n")
    folder = kb.add_folder(docs)
    stop = threading.Event()

    def writer() -> None:
        with open(path, "a") as fh:
            while not stop.wait(0.001):  # about 1 MB/s: a log being written
                fh.write("a line of a log that keeps growing\n" * 28)
                fh.flush()

    t = threading.Thread(target=writer)
    t.start()
    try:
        outcomes = set()
        for _ in range(5):
            kb.indexer.index_paths([(folder, str(path))])
            rec = kb.manifest.file(str(path))
            assert rec is not None
            outcomes.add(rec.status)
            assert rec.status in ("indexed", "failed")
            if rec.status == "failed":
                assert "changed while it was being read" in (rec.error or "")
    finally:
        stop.set()
        t.join()
    kb.reconcile()
    rec = kb.manifest.file(str(path))
    assert rec is not None and rec.status == "indexed" and rec.size == path.stat().st_size
    assert consistent(kb)


def test_unreadable_file_is_recorded(kb: KnowledgeBase, docs: Path) -> None:
    """Root reads any file, so as root the indexer runs in a child process
    without the capabilities that bypass file permissions (setpriv)."""
    (docs / "ok.md").write_text(VOLCANO)
    (docs / "private.md").write_text("secret")
    (docs / "private.md").chmod(0o000)
    kb.add_folder(docs)
    kb.close()
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: permissions cannot be enforced")
        caps = "-dac_override,-dac_read_search"
        prefix = [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}"]
    code = (
        "from app.paths import get_paths\nfrom app.settings import Settings\n"
        "from app.core.knowledge.base import KnowledgeBase\n"
        "p = get_paths(); kb = KnowledgeBase(p, Settings.load(p), writer=True)\n"
        "s = kb.reconcile(); print(s.indexed, s.failed); kb.close()\n"
    )
    r = subprocess.run([*prefix, sys.executable, "-c", code], cwd=REPO, env=dict(os.environ),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "1"]
    with KnowledgeBase(kb.paths, kb.settings) as reader:
        errors = reader.status(errors=True)["folders"][0]["errors"]
    assert errors == [{"path": str(docs / "private.md"), "status": "failed",
                       "reason": "permission denied: the file cannot be read"}]


def test_folder_that_disappears_keeps_its_index_and_comes_back(kb: KnowledgeBase,
                                                               tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    _write(drive, {"etna.md": VOLCANO, "bread.md": BREAD})
    kb.add_folder(drive)
    kb.reconcile()
    drive.rename(tmp_path / "elsewhere")  # unplugged
    kb.reconcile()
    status = kb.status()["folders"][0]
    assert status["state"] == "missing" and status["indexed"] == 2
    assert paths_found(kb, "volcano eruption in Sicily")[0] == str(drive / "etna.md")
    drive.mkdir()  # an empty mount point: still treated as unavailable
    kb.reconcile()
    assert kb.status()["folders"][0]["state"] == "missing"
    drive.rmdir()
    (tmp_path / "elsewhere").rename(drive)  # plugged back in
    back = kb.reconcile()
    assert back.chunks_embedded == 0 and back.removed == 0
    assert kb.status()["folders"][0]["state"] == "ok"
    assert consistent(kb)


def test_no_network_is_attempted(paths: Paths, settings: Settings, docs: Path) -> None:
    _write(docs, {"etna.md": VOLCANO})
    offline.enable()  # any non-loopback connection would raise OfflineError
    try:
        with KnowledgeBase(paths, settings, writer=True) as kb:
            kb.add_folder(docs)
            assert kb.reconcile().indexed == 1
            assert kb.search("volcano", 1)
        with KnowledgeBase(paths, settings) as reader:
            assert reader.search("volcano", 1)[0].path == str(docs / "etna.md")
    finally:
        offline.disable()


def test_one_writer_at_a_time_readers_need_no_lock(kb: KnowledgeBase, paths: Paths,
                                                   settings: Settings, docs: Path) -> None:
    _write(docs, {"etna.md": VOLCANO})
    kb.add_folder(docs)
    kb.reconcile()
    code = ("from app.paths import get_paths\nfrom app.settings import Settings\n"
            "from app.core.knowledge.base import KnowledgeBase\n"
            "p = get_paths()\n"
            "r = KnowledgeBase(p, Settings.load(p)); print(r.search('volcano', 1)[0].path)\n"
            "r.close()\n"
            "KnowledgeBase(p, Settings.load(p), writer=True)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=120, env=dict(os.environ))
    assert r.stdout.strip() == str(docs / "etna.md")  # the reader read while we write
    assert "IndexBusyError" in r.stderr
    assert f"Another Hearth process (pid {os.getpid()}) is updating the index" in r.stderr


def test_a_new_embedding_model_starts_a_new_collection(paths: Paths, settings: Settings,
                                                       docs: Path) -> None:
    _write(docs, {"etna.md": VOLCANO, "bread.md": BREAD})
    with KnowledgeBase(paths, settings, writer=True) as kb:
        kb.add_folder(docs)
        kb.reconcile()
        first = kb.vectors.name if kb.vectors else ""

    class Renamed:  # the same model under another id, as a new model would be
        def __init__(self) -> None:
            self.inner = shared_embedder()
            self.id, self.dim, self.max_tokens = "other-model-v2", 384, 256

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(self.inner, name)

    with KnowledgeBase(paths, settings, writer=True, embedder=Renamed()) as kb:
        assert kb.vectors is not None and kb.vectors.name != first
        stats = kb.reconcile()
        assert stats.indexed == 2 and stats.chunks_embedded >= 2
        assert consistent(kb)
        names = [c.name for c in kb.vectors.client.list_collections()]
        assert first not in names


def test_nested_folders_are_refused(kb: KnowledgeBase, docs: Path) -> None:
    (docs / "sub").mkdir()
    kb.add_folder(docs)
    with pytest.raises(Exception, match="inside"):
        kb.add_folder(docs / "sub")
    with pytest.raises(KnowledgeIndexError, match="not a folder"):
        kb.add_folder(docs / "missing")
