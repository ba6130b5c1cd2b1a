"""File → text, with where each piece came from (line numbers, PDF pages).

Each format is read by a well-kept library (pypdf, python-docx, BeautifulSoup,
charset-normalizer); a file that cannot be read raises `LoadError` with the
reason in words, which the indexer records and shows.
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import HearthError

SNIFF_BYTES = 8192


class LoadError(HearthError):
    """The file was skipped; the message says why (recorded in the manifest)."""

    reason = "load_failed"


class NotTextError(LoadError):
    """Binary content where text was expected."""

    reason = "binary"


@dataclass(frozen=True)
class Segment:
    """A run of text that starts at `start_line` (1-based) of the file, or of
    `page` for formats with pages. Lines inside it count on from there."""

    text: str
    start_line: int = 1
    page: int | None = None


@dataclass(frozen=True)
class Document:
    path: str
    kind: str  # "markdown", "rst", "org", "code", "text", "html", "pdf", "docx", "data"
    segments: tuple[Segment, ...]


MARKDOWN = {".md", ".markdown", ".mdown", ".mkd", ".mdx"}
RST = {".rst", ".rest"}
ORG = {".org"}
TEXT = {".txt", ".text", ".log", ".tex", ".adoc", ".asciidoc", ".textile", ".wiki", ".me",
        ".1", ".man", ".nfo", ".srt", ".vtt"}
DATA = {".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".yaml", ".yml", ".toml", ".ini",
        ".cfg", ".conf", ".xml", ".properties", ".env.example"}
CODE = {
    ".py", ".pyi", ".pyx", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".java", ".kt",
    ".kts", ".scala", ".groovy", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx",
    ".cs", ".go", ".rs", ".swift", ".m", ".mm", ".rb", ".php", ".pl", ".pm", ".lua", ".r",
    ".jl", ".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".cmd", ".sql", ".hs", ".ml",
    ".mli", ".fs", ".fsx", ".ex", ".exs", ".erl", ".hrl", ".clj", ".cljs", ".dart", ".vue",
    ".svelte", ".css", ".scss", ".sass", ".less", ".el", ".lisp", ".scm", ".rkt", ".nim",
    ".zig", ".v", ".sv", ".vhd", ".tf", ".proto", ".graphql", ".cmake", ".mk", ".gradle",
    ".ipynb",
}
HTML = {".html", ".htm", ".xhtml"}
PDF = {".pdf"}
DOCX = {".docx"}
# Names without an extension that are text.
TEXT_NAMES = {"readme", "license", "licence", "copying", "authors", "changelog", "changes",
              "news", "todo", "makefile", "dockerfile", "notice", "contributing", "install",
              "gemfile", "rakefile", "procfile", "vagrantfile", "justfile"}
# Never worth opening: skipped while scanning, without a note.
BINARY = {
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ico", ".icns",
    ".heic", ".psd", ".mp3", ".wav", ".flac", ".ogg", ".m4a", ".aac", ".mp4", ".mkv", ".mov",
    ".avi", ".webm", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".tar",
    ".jar", ".war", ".whl", ".egg", ".exe", ".dll", ".so", ".dylib", ".a", ".o", ".obj",
    ".lib", ".bin", ".dat", ".class", ".pyc", ".pyo", ".pyd", ".wasm", ".iso", ".img",
    ".dmg", ".deb", ".rpm", ".apk", ".ttf", ".otf", ".woff", ".woff2", ".eot", ".db",
    ".sqlite", ".sqlite3", ".parquet", ".feather", ".npy", ".npz", ".pkl", ".pickle",
    ".pt", ".pth", ".onnx", ".gguf", ".safetensors", ".h5", ".hdf5", ".doc", ".xls",
    ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".odp", ".key", ".pages", ".numbers",
    ".epub", ".mobi", ".lock", ".swp", ".swo", ".DS_Store",
}


# Editors' and downloaders' scratch files: never the real document.
TEMP_SUFFIXES = ("~", ".tmp", ".temp", ".swp", ".swo", ".swx", ".part", ".crdownload",
                 ".partial", ".orig", ".rej", ".bak")


def kind_of(path: str | Path) -> str | None:
    """Which loader reads this file by its name; None: a binary type, skip it;
    "unknown": no known type, read it if its content is text."""
    name = os.path.basename(str(path))
    lowered = name.lower()
    if lowered.endswith(TEMP_SUFFIXES) or (name.startswith("#") and name.endswith("#")):
        return None
    ext = os.path.splitext(name)[1].lower()
    if ext in MARKDOWN:
        return "markdown"
    if ext in RST:
        return "rst"
    if ext in ORG:
        return "org"
    if ext in CODE:
        return "code"
    if ext in HTML:
        return "html"
    if ext in PDF:
        return "pdf"
    if ext in DOCX:
        return "docx"
    if ext in DATA:
        return "data"
    if ext in TEXT or name.lower() in TEXT_NAMES:
        return "text"
    if ext in BINARY:
        return None
    return "unknown"


def load(path: str, data: bytes, kind: str | None = None) -> Document:
    """Read `data` (the file's bytes, already read by the caller) as `kind`."""
    kind = kind or kind_of(path) or "unknown"
    if not data:
        raise LoadError("the file is empty")
    if kind == "pdf":
        return Document(path, kind, _pdf(data))
    if kind == "docx":
        return Document(path, kind, _docx(data))
    text = decode_text(data)
    if kind == "html":
        return Document(path, kind, _html(text))
    if kind == "unknown":
        kind = "text"
    return Document(path, kind, (Segment(text),))


def decode_text(data: bytes) -> str:
    """Bytes → str: UTF-8 (with or without BOM), a BOM-marked UTF-16/32, or
    whatever charset-normalizer detects; binary content raises NotTextError."""
    for bom, enc in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                     (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                     (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return _clean(data.decode(enc))
            except UnicodeDecodeError:
                break
    head = data[:SNIFF_BYTES]
    if b"\x00" in head:
        raise NotTextError("the file holds binary data, not text")
    try:
        return _clean(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[: 2 * 1024 * 1024]).best()
    if best is None or best.encoding is None:
        raise NotTextError("the file holds binary data or text in an unknown encoding")
    try:
        text = data.decode(best.encoding)
    except (UnicodeDecodeError, LookupError):
        text = data.decode(best.encoding, errors="replace")
    control = sum(1 for c in text[:SNIFF_BYTES] if ord(c) < 32 and c not in "\t\n\r\f\v")
    if control > len(text[:SNIFF_BYTES]) * 0.05:
        raise NotTextError("the file holds binary data, not text")
    return _clean(text)


def _clean(text: str) -> str:
    # One kind of line ending, so line numbers agree with editors.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\x00", "")


def _pdf(data: bytes) -> tuple[Segment, ...]:
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception as exc:
                raise LoadError(f"the PDF is encrypted and cannot be opened ({exc})") from exc
            if not ok:
                raise LoadError("the PDF is encrypted with a password")
        segments = []
        for number, page in enumerate(reader.pages, start=1):
            text = _clean(page.extract_text() or "")
            if text.strip():
                segments.append(Segment(text, 1, number))
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            AssertionError, RecursionError, OSError, ZeroDivisionError) as exc:
        raise LoadError(f"the PDF is damaged or unreadable ({type(exc).__name__}: {exc})"
                        ) from exc
    if not segments:
        raise LoadError("the PDF has no text layer (scanned images are not read)")
    return tuple(segments)


def _docx(data: bytes) -> tuple[Segment, ...]:
    import io
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    # A .docx is a zip holding word/document.xml. Anything else (another
    # zip, a renamed file) is said in words here: python-docx would fail on it
    # with whatever its XML parsing tripped over first.
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise LoadError("not a Word document: the file is not a zip archive, as a .docx "
                        "file is") from exc
    if "word/document.xml" not in names:
        raise LoadError("not a Word document: the zip archive has no word/document.xml")
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError(f"the Word file is damaged or unreadable ({exc})") from exc
    except Exception as exc:  # lxml and python-docx errors on a malformed package
        raise LoadError(f"the Word file is damaged or unreadable ({type(exc).__name__}: "
                        f"{exc})") from exc
    # A .docx has no lines: each paragraph (and table row) counts as one line.
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    text = "\n".join(lines)
    if not text.strip():
        raise LoadError("the Word file has no text")
    return (Segment(text),)




def _html(source: str) -> tuple[Segment, ...]:
    """Visible text of a page, one segment per text run, each with its source line."""
    from bs4 import BeautifulSoup, Comment, Doctype
    from bs4.element import NavigableString

    soup = BeautifulSoup(source, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "svg"]):
        tag.decompose()
    segments: list[Segment] = []
    for node in soup.find_all(string=True):
        if isinstance(node, Comment | Doctype) or not isinstance(node, NavigableString):
            continue
        text = str(node)
        if not text.strip():
            continue
        line = getattr(node.parent, "sourceline", None) or 1
        # Text that starts with newlines begins on a later line than its tag.
        lead = len(text) - len(text.lstrip("\n"))
        segments.append(Segment(text.strip("\n"), line + lead))
    if not segments:
        raise LoadError("the page has no visible text")
    return tuple(segments)
