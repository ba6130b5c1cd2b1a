"""The passages an answer was built from, as numbered citations. A click
opens the file: text files in a viewer scrolled to the cited lines, other
files (PDFs, documents) in the user's default application."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QTextCharFormat, QTextCursor, QTextFormat
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.core.events import Source
from app.core.text import shown
from app.ui.details_dialog import location
from app.ui.labels import breakable
from app.ui.workers import WorkerSet, run_op

# Files larger than this open in the default application instead.
MAX_VIEWER_BYTES = 4_000_000
TEXT_SUFFIXES = frozenset({
    ".txt", ".md", ".markdown", ".rst", ".py", ".js", ".ts", ".json", ".toml", ".yaml",
    ".yml", ".ini", ".cfg", ".csv", ".html", ".htm", ".xml", ".c", ".h", ".cpp", ".hpp",
    ".rs", ".go", ".java", ".kt", ".rb", ".sh", ".sql", ".tex", ".org", ".log",
})


def citation_text(src: Source) -> str:
    where = location(src)
    head = f"[{src.number}] {shown(Path(src.path).name)}" + (f" · {where}" if where else "")
    snippet = " ".join(src.snippet.split())
    if len(snippet) > 220:
        snippet = snippet[:217] + "…"
    return f"{head}\n{snippet}" if snippet else head


class SourceViewer(QDialog):
    """A read-only view of a text file with the cited lines highlighted."""

    def __init__(self, src: Source, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = src
        self.setWindowTitle(f"[{src.number}] {shown(src.path)}")
        self.resize(760, 560)
        self.editor = QPlainTextEdit()
        self.editor.setReadOnly(True)
        self.editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = self.editor.font()
        font.setFamily("monospace")
        font.setStyleHint(font.StyleHint.Monospace)
        self.editor.setFont(font)
        self.editor.setPlainText(text)
        open_button = QPushButton("Open in default app")
        open_button.setToolTip(f"Open {shown(src.path)} with the application your system uses")
        open_button.clicked.connect(lambda: open_externally(src.path))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(open_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{shown(src.path)} · {location(src)}"))
        layout.addWidget(self.editor)
        layout.addWidget(buttons)
        self._highlight()

    def _highlight(self) -> None:
        start = self.source.start_line
        if start is None:
            return
        end = self.source.end_line or start
        doc = self.editor.document()
        first = doc.findBlockByLineNumber(max(0, start - 1))
        last = doc.findBlockByLineNumber(max(0, end - 1))
        if not first.isValid():
            return
        cursor = QTextCursor(first)
        selection = QTextEdit.ExtraSelection()
        fmt = QTextCharFormat()
        fmt.setBackground(QColor(255, 214, 102, 110))
        fmt.setProperty(QTextFormat.Property.FullWidthSelection, True)
        selection.format = fmt
        end_pos = (last if last.isValid() else doc.lastBlock()).position()
        cursor.setPosition(end_pos, QTextCursor.MoveMode.KeepAnchor)
        cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
        selection.cursor = cursor
        self.editor.setExtraSelections([selection])
        self.editor.setTextCursor(QTextCursor(first))
        self.editor.centerCursor()

    @property
    def first_visible_line(self) -> int:
        return self.editor.firstVisibleBlock().blockNumber() + 1


def open_externally(path: str) -> bool:
    return QDesktopServices.openUrl(QUrl.fromLocalFile(path))


class SourcesPanel(QWidget):
    """Numbered citations for the answer shown last."""

    # (message, details) when a source cannot be opened
    open_failed = Signal(str, str)
    viewer_opened = Signal(object)  # SourceViewer

    def __init__(self, workers: WorkerSet | None = None) -> None:
        super().__init__()
        self.setObjectName("sourcesPanel")
        self.title = QLabel("Sources")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        # A narrow panel wraps its citations; it never scrolls sideways. Rows
        # are laid out again at each width (ResizeMode.Adjust) so they wrap
        # to the width there is.
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setAlternatingRowColors(True)
        self.list.setToolTip("Click a citation to open the file at the cited place")
        self.list.itemActivated.connect(self._on_item)
        self.list.itemClicked.connect(self._on_item)
        self._workers = workers if workers is not None else WorkerSet()
        self.empty = QLabel("No sources for this answer.")
        self.empty.setWordWrap(True)
        self.empty.setObjectName("placeholder")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.title)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty)
        self.sources: tuple[Source, ...] = ()
        self.set_sources(())

    def set_sources(self, sources: tuple[Source, ...]) -> None:
        self.sources = tuple(sources)
        self.list.clear()
        for src in self.sources:
            item = QListWidgetItem(breakable(citation_text(src)))
            item.setToolTip(shown(src.path))
            item.setData(Qt.ItemDataRole.UserRole, src)
            self.list.addItem(item)
        self.empty.setVisible(not self.sources)
        self.list.setVisible(bool(self.sources))

    def _on_item(self, item: QListWidgetItem) -> None:
        src = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(src, Source):
            self.open_source(src)

    def open_source(self, src: Source) -> None:
        """Open the cited place: a text file in the viewer (`viewer_opened`),
        anything else in its default application. The file is read off the
        GUI thread."""
        run_op(self._workers, lambda: _read_source(src), lambda r: self._show(src, r),
               self.open_failed.emit, self)

    def shutdown(self) -> None:
        self._workers.stop_all()

    def _show(self, src: Source, read: tuple[str, str]) -> None:
        kind, text = read
        if kind == "gone":
            self.open_failed.emit(f"The file {shown(src.path)} is no longer there.", "")
        elif kind == "unreadable":
            self.open_failed.emit(f"Hearth cannot read {shown(src.path)}.", text)
        elif kind == "external":
            if not open_externally(src.path):
                self.open_failed.emit(f"No application could open {shown(src.path)}.", "")
        else:
            viewer = SourceViewer(src, text, self.window())
            viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            viewer.show()
            self.viewer_opened.emit(viewer)


def _read_source(src: Source) -> tuple[str, str]:
    """How to show a cited file: ("text", its text), ("external", ""),
    ("gone", "") or ("unreadable", details)."""
    path = Path(src.path)
    if not path.is_file():
        return "gone", ""
    try:
        size = path.stat().st_size
        if (src.page is not None or path.suffix.lower() not in TEXT_SUFFIXES
                or size > MAX_VIEWER_BYTES):
            return "external", ""
        return "text", path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return "unreadable", repr(exc)
