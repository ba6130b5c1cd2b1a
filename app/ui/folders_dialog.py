"""The Folders dialog: which folders Hearth indexes, how far each one is,
which files were left out and why; add, remove, pause, re-index, and the
include/exclude patterns and "local only" flag of each folder.

Every change goes to the `IndexService` (its background thread does the
work); what comes back arrives through its signals."""

from __future__ import annotations

import datetime
import re

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.knowledge.protocol import FolderStatus
from app.core.text import shown
from app.ui.indexing import IndexService

PATTERN_HINT = "Comma-separated, e.g. docs/**, *.md"


def split_patterns(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"[,\n]", text) if p.strip()]


def folder_summary(f: FolderStatus) -> str:
    """One line on a folder's state, for the list."""
    if f.state != "ok" and f.error:
        return f"Unavailable: {f.error}"
    parts = [f"{f.indexed:,} files, {f.chunks:,} passages"]
    if f.pending:
        parts.append(f"{f.pending:,} waiting")
    left_out = f.failed + f.skipped
    if left_out:
        parts.append(f"{left_out:,} left out")
    if f.paused:
        parts.insert(0, "Paused")
    elif not f.scanned_at:
        parts.insert(0, "Not indexed yet")
    if f.local_only:
        parts.append("local only")
    return " · ".join(parts)


class FoldersDialog(QDialog):
    def __init__(self, service: IndexService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.setWindowTitle("Folders — Hearth")
        self.setObjectName("foldersDialog")
        self.resize(760, 560)
        self._folders: tuple[FolderStatus, ...] = ()

        intro = QLabel("Hearth reads these folders, keeps its index of them up to date as "
                       "files change, and cites them in answers.")
        intro.setWordWrap(True)

        self.folders = QTreeWidget()
        self.folders.setHeaderLabels(["Folder", "State"])
        self.folders.setRootIsDecorated(False)
        self.folders.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.folders.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.folders.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.folders.itemSelectionChanged.connect(self._show_selected)

        self.add_button = QPushButton("Add folder…")
        self.add_button.setToolTip("Choose a folder to index and follow")
        self.add_button.clicked.connect(self.choose_folder)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Stop following the folder and drop its index "
                                      "(your files are not touched)")
        self.remove_button.clicked.connect(lambda: self.remove_selected())
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Stop following changes in this folder; its index stays")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.reindex_button = QPushButton("Re-index")
        self.reindex_button.setToolTip("Read every file again (files that failed included); "
                                       "unchanged passages keep their vectors")
        self.reindex_button.clicked.connect(self.reindex_selected)
        buttons = QHBoxLayout()
        for b in (self.add_button, self.remove_button, self.pause_button, self.reindex_button):
            buttons.addWidget(b)
        buttons.addStretch(1)

        self.include = QLineEdit()
        self.include.setPlaceholderText("Everything · " + PATTERN_HINT)
        self.include.setToolTip("Only files matching these patterns are indexed")
        self.exclude = QLineEdit()
        self.exclude.setPlaceholderText("Nothing more · " + PATTERN_HINT)
        self.exclude.setToolTip("Files matching these patterns are left out (hidden folders, "
                                ".git, node_modules and .gitignore'd files always are)")
        self.local_only = QCheckBox("Local only: never send this folder's text to a remote "
                                    "model")
        self.save_button = QPushButton("Save")
        self.save_button.setToolTip("Apply the patterns and the flag; the folder is rescanned")
        self.save_button.clicked.connect(self.save_selected)
        form = QFormLayout()
        form.addRow("Include", self.include)
        form.addRow("Exclude", self.exclude)
        form.addRow("", self.local_only)
        save_row = QHBoxLayout()
        save_row.addStretch(1)
        save_row.addWidget(self.save_button)
        form.addRow(save_row)
        self.settings_box = QGroupBox("This folder")
        self.settings_box.setLayout(form)

        self.problems = QTreeWidget()
        self.problems.setHeaderLabels(["File", "Why it was left out"])
        self.problems.setRootIsDecorated(False)
        self.problems.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.problems.header().resizeSection(0, 300)
        self.problems.setToolTip("Files of this folder that are not in the index, and why")
        self.problems_label = QLabel("Files left out")

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setObjectName("foldersMessage")
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.setSpacing(8)
        layout.addWidget(intro)
        layout.addWidget(self.folders, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.settings_box)
        layout.addWidget(self.problems_label)
        layout.addWidget(self.problems, 2)
        layout.addWidget(self.message)
        layout.addWidget(close)

        service.folders_changed.connect(self.set_status)
        service.done.connect(self._on_done)
        service.failed.connect(self._on_failed)
        self._show_selected()
        service.refresh()

    # -- showing -------------------------------------------------------------------

    def set_status(self, folders: tuple[FolderStatus, ...]) -> None:
        selected = self.selected_path()
        self._folders = folders
        self.folders.clear()
        for f in folders:
            item = QTreeWidgetItem([shown(f.path), folder_summary(f)])
            item.setData(0, Qt.ItemDataRole.UserRole, f.path)
            when = (datetime.datetime.fromtimestamp(f.scanned_at).strftime("%Y-%m-%d %H:%M")
                    if f.scanned_at else "never")
            item.setToolTip(0, f"{shown(f.path)}\nlast scanned {when}")
            item.setToolTip(1, folder_summary(f))
            self.folders.addTopLevelItem(item)
            if f.path == selected or (selected is None and self.folders.topLevelItemCount()
                                         == 1):
                item.setSelected(True)
                self.folders.setCurrentItem(item)
        self._show_selected()

    def selected_path(self) -> str | None:
        items = self.folders.selectedItems()
        return str(items[0].data(0, Qt.ItemDataRole.UserRole)) if items else None

    def select_path(self, path: str) -> bool:
        for i in range(self.folders.topLevelItemCount()):
            item = self.folders.topLevelItem(i)
            if item is not None and item.data(0, Qt.ItemDataRole.UserRole) == path:
                self.folders.setCurrentItem(item)
                item.setSelected(True)
                return True
        return False

    def _selected(self) -> FolderStatus | None:
        path = self.selected_path()
        return next((f for f in self._folders if f.path == path), None)

    def _show_selected(self) -> None:
        f = self._selected()
        for w in (self.remove_button, self.pause_button, self.reindex_button,
                  self.settings_box):
            w.setEnabled(f is not None)
        self.problems.clear()
        if f is None:
            self.include.clear()
            self.exclude.clear()
            self.local_only.setChecked(False)
            self.problems_label.setText("Files left out")
            return
        self.pause_button.setText("Resume" if f.paused else "Pause")
        self.include.setText(", ".join(f.include))
        self.exclude.setText(", ".join(f.exclude))
        self.local_only.setChecked(f.local_only)
        errors = f.problems
        self.problems_label.setText(f"Files left out ({len(errors):,})" if errors
                                    else "Files left out: none")
        root = f.path.rstrip("/\\")
        for e in errors:
            name = e.path[len(root) + 1:] if e.path.startswith(root) else e.path
            item = QTreeWidgetItem([shown(name), e.reason or e.status])
            item.setToolTip(0, shown(e.path))
            item.setToolTip(1, e.reason or e.status)
            self.problems.addTopLevelItem(item)

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setProperty("error", error)
        self.message.setStyleSheet("color: #d64541;" if error else "")

    def _on_done(self, text: str) -> None:
        self._say(text)

    def _on_failed(self, message: str, _details: str) -> None:
        self._say(message, error=True)

    # -- changing ------------------------------------------------------------------

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a folder to Hearth")
        if path:
            self.add_folder(path)

    def add_folder(self, path: str) -> None:
        self._say(f"Adding {shown(path)}…")
        self.service.add_folder(path)

    def remove_selected(self, confirm: bool = True) -> None:
        path = self.selected_path()
        if path is None:
            return
        if confirm:
            answer = QMessageBox.question(
                self, "Remove folder",
                f"Stop following {shown(path)} and drop its index? Your files are not touched.")
            if answer != QMessageBox.StandardButton.Yes:
                return
        self._say(f"Removing {shown(path)}…")
        self.service.remove_folder(path)

    def toggle_pause(self) -> None:
        f = self._selected()
        if f is not None:
            self.service.set_folder_paused(f.path, not f.paused)

    def reindex_selected(self) -> None:
        path = self.selected_path()
        if path is not None:
            self._say(f"Re-reading every file of {shown(path)}…")
            self.service.reindex(path)

    def save_selected(self) -> None:
        path = self.selected_path()
        if path is not None:
            self.service.update_folder(path, split_patterns(self.include.text()),
                                       split_patterns(self.exclude.text()),
                                       self.local_only.isChecked())
