"""Loaders: each format read by its library, encodings detected, bad files refused with a reason."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from app.core.knowledge.loaders import LoadError, NotTextError, decode_text, kind_of, load
from tests.kb_helpers import make_docx, make_pdf


@pytest.mark.parametrize(("name", "kind"), [
    ("notes.md", "markdown"), ("guide.rst", "rst"), ("todo.org", "org"), ("a.py", "code"),
    ("main.rs", "code"), ("page.html", "html"), ("paper.pdf", "pdf"), ("letter.docx", "docx"),
    ("data.csv", "data"), ("conf.json", "data"), ("notes.txt", "text"), ("README", "text"),
    ("photo.JPG", None), ("archive.zip", None), ("notes.md~", None), ("x.swp", None),
    ("#autosave#", None), ("mystery.xyz", "unknown"),
])
def test_kind_by_name(name: str, kind: str | None) -> None:
    assert kind_of(name) == kind


def test_utf8_latin1_utf16_and_crlf_are_decoded() -> None:
    assert decode_text("café\r\nnaïve".encode()) == "café\nnaïve"
    latin = ("Le cœur a ses raisons que la raison ne connaît point. " * 20).encode("cp1252")
    assert "connaît" in decode_text(latin)
    assert decode_text("\ufeffhello".encode()) == "hello"
    assert decode_text("héllo wörld".encode("utf-16")) == "héllo wörld"
    shift_jis = ("日本語のテキストです。" * 30).encode("shift_jis")
    assert "日本語" in decode_text(shift_jis)


def test_binary_content_is_refused_even_when_named_txt() -> None:
    with pytest.raises(NotTextError):
        load("fake.txt", bytes(range(256)) * 40)


def test_empty_file_is_refused() -> None:
    with pytest.raises(LoadError, match="empty"):
        load("empty.md", b"")


def test_pdf_keeps_page_numbers() -> None:
    doc = load("p.pdf", make_pdf(["First page text", "Second page\nwith two lines"]))
    assert [s.page for s in doc.segments] == [1, 2]
    assert "Second page" in doc.segments[1].text


def test_corrupt_and_encrypted_pdfs_are_refused_with_reasons() -> None:
    good = make_pdf(["some text"])
    with pytest.raises(LoadError, match="PDF"):
        load("broken.pdf", good[: len(good) // 3])
    with pytest.raises(LoadError, match="PDF"):
        load("garbage.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 8)
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(good)).pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", owner_password="owner")
    buf = io.BytesIO()
    writer.write(buf)
    with pytest.raises(LoadError, match="encrypted"):
        load("secret.pdf", buf.getvalue())


def test_docx_paragraphs_become_lines(tmp_path: Path) -> None:
    path = tmp_path / "letter.docx"
    make_docx(path, ["Dear reader,", "The meeting moved to Thursday."])
    doc = load(str(path), path.read_bytes())
    lines = doc.segments[0].text.split("\n")
    assert lines[:2] == ["Dear reader,", "The meeting moved to Thursday."]
    with pytest.raises(LoadError):
        load("bad.docx", b"PK\x03\x04 not really a zip")


def test_html_visible_text_with_source_lines() -> None:
    page = ("<html><head><title>T</title><style>p{color:red}</style>\n"
            "<script>alert('x')</script></head>\n<body>\n<h1>Heading</h1>\n"
            "<p>Body text here.</p>\n</body></html>")
    doc = load("p.html", page.encode())
    texts = {s.text: s.start_line for s in doc.segments}
    assert texts["Heading"] == 4 and texts["Body text here."] == 5
    assert not any("alert" in s.text or "color" in s.text for s in doc.segments)


def test_a_zip_that_is_not_a_word_document_says_so(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "fake.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("notes.txt", "not a Word document")
    with pytest.raises(LoadError) as err:
        load(str(path), path.read_bytes())
    assert str(err.value) == "not a Word document: the zip archive has no word/document.xml"
    with pytest.raises(LoadError, match=r"^not a Word document: the file is not a zip"):
        load("renamed.docx", b"plain text renamed to .docx")
    # A package whose XML python-docx trips over is a load error in words, not a crash.
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(LoadError, match=r"^the Word file is damaged or unreadable"):
        load(str(path), path.read_bytes())
