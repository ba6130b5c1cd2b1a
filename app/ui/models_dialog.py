"""Models in the window: a service that runs downloads and imports off the
GUI thread, and the Models dialog (installed and catalog models with fit
badges; download with progress, pause and cancel; import; remove; use)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.models.catalog import Catalog, CatalogError, load_catalog
from app.core.models.download import DownloadManager, Progress, partial_downloads
from app.core.models.fit import FITS, TIGHT
from app.core.models.library import (
    ModelRow,
    import_model,
    models_dir,
    overview,
    remove,
)
from app.paths import Paths
from app.settings import Key, Settings
from app.ui.errors import show_error
from app.ui.workers import WorkerSet, call_in_background

GB = 1024**3
BADGE = {FITS: ("Fits", "#2e7d32"), TIGHT: ("Tight", "#b26a00")}


def badge(verdict: str) -> tuple[str, str]:
    return BADGE.get(verdict, ("Won't fit", "#c62828"))


def size_text(n: int) -> str:
    return f"{n / GB:.2f} GB" if n >= GB / 10 else f"{n / 1024**2:.0f} MB"


def progress_text(p: Progress) -> str:
    if p.state == "downloading":
        rate = f"{p.rate_bps / 1024**2:.1f} MB/s" if p.rate_bps else "starting"
        eta = f", {int(p.eta_s // 60)} min {int(p.eta_s % 60)} s left" if p.eta_s else ""
        total = f" of {size_text(p.total)}" if p.total else ""
        return f"{size_text(p.done)}{total} · {rate}{eta}"
    words = {"waiting": "Waiting for another download of this model",
             "retrying": "Connection trouble, trying again", "verifying": "Checking the file",
             "done": "Downloaded", "paused": "Paused", "cancelled": "Cancelled",
             "failed": "Failed"}
    text = words.get(p.state, p.state)
    return f"{text}: {p.message}" if p.message else text


class ModelService(QObject):
    """The window's side of the model library. Everything that touches files
    or the network runs in workers; results come back as signals."""

    rows_changed = Signal(list)  # list[ModelRow]
    progress = Signal(object)  # Progress, from download threads (queued)
    failed = Signal(str, str)
    imported = Signal(object)  # InstalledModel

    def __init__(self, settings: Settings, paths: Paths, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.paths = paths
        self.rows: list[ModelRow] = []
        self.catalog: Catalog | None = None
        self._workers = WorkerSet()
        self.downloads = DownloadManager(
            models_dir(paths), lambda: settings.snapshot().network.offline, self.progress.emit)
        self.progress.connect(self._on_progress)

    def _load(self) -> tuple[Catalog, list[ModelRow]]:
        catalog = load_catalog(self.paths)
        return catalog, overview(self.paths, catalog, self.settings)

    def refresh(self) -> None:
        worker = call_in_background(self._load, self)
        worker.item.connect(self._on_rows)
        worker.failed.connect(self.failed)
        self._workers.start(worker)

    def _on_rows(self, result: tuple[Catalog, list[ModelRow]]) -> None:
        self.catalog, self.rows = result
        self.rows_changed.emit(self.rows)

    def _on_progress(self, p: Progress) -> None:
        if p.state in ("done", "cancelled"):
            self.refresh()

    def row(self, model_id: str) -> ModelRow | None:
        return next((r for r in self.rows if r.id == model_id), None)

    def download(self, model_id: str) -> None:
        row = self.row(model_id)
        if row is not None and row.entry is not None:
            self.downloads.start(row.entry)

    def pause(self, model_id: str) -> None:
        self.downloads.pause(model_id)

    def cancel(self, model_id: str) -> None:
        row = self.row(model_id)
        self.downloads.cancel(model_id, row.entry if row else None)

    def resume_pending(self) -> None:
        """Downloads interrupted when Hearth last stopped continue (not offline)."""
        if self.settings.snapshot().network.offline:
            return

        def work() -> list[str]:
            try:
                catalog = self.catalog or load_catalog(self.paths)
            except CatalogError:
                return []
            pending = partial_downloads(models_dir(self.paths), list(catalog))
            for entry in pending:
                self.downloads.start(entry)
            return [e.id for e in pending]

        self._workers.start(call_in_background(work, self))

    def import_file(self, path: str, link: bool) -> None:
        def work() -> Any:
            catalog = self.catalog or load_catalog(self.paths)
            return import_model(self.paths, catalog, Path(path), link=link)

        worker = call_in_background(work, self)
        worker.item.connect(self.imported)
        worker.item.connect(lambda _m: self.refresh())
        worker.failed.connect(self.failed)
        self._workers.start(worker)

    def remove(self, model_id: str) -> None:
        configured = self.settings.snapshot().model.path

        def work() -> Any:
            catalog = self.catalog or load_catalog(self.paths)
            return remove(self.paths, catalog, model_id, configured)

        worker = call_in_background(work, self)
        worker.item.connect(lambda _m: self.refresh())
        worker.failed.connect(self.failed)
        self._workers.start(worker)

    def pause_all(self) -> list[str]:
        return self.downloads.pause_all()

    def shutdown(self) -> None:
        """Pause downloads (their parts resume at the next start) and wait."""
        self.downloads.shutdown()
        self._workers.stop_all()


class ModelsDialog(QDialog):
    """Installed and catalog models; select one to download, use or remove it."""

    use_requested = Signal(str, bool)  # model id, ignore the fit estimate
    folders_requested = Signal()

    COLUMNS = ("Model", "Size", "Fit", "State", "Good for")

    def __init__(self, service: ModelService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.setWindowTitle("Models")
        self.setObjectName("modelsDialog")
        self.resize(940, 560)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(self.COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(True)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.itemDoubleClicked.connect(lambda *_: self._use())
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setObjectName("modelDetail")
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.hide()
        self.bar_text = QLabel()
        self.bar_text.hide()
        self.use_button = QPushButton("Use")
        self.download_button = QPushButton("Download")
        self.pause_button = QPushButton("Pause")
        self.cancel_button = QPushButton("Cancel download")
        self.remove_button = QPushButton("Remove")
        self.import_button = QPushButton("Import a .gguf file…")
        self.close_button = QPushButton("Close")
        self.keep_in_tray = QCheckBox("Keep downloading in the tray when the window is closed")
        self.keep_in_tray.setChecked(service.settings.snapshot().models.keep_downloading_in_tray)
        self.keep_in_tray.toggled.connect(
            lambda on: service.settings.set(Key.MODELS_KEEP_DOWNLOADING_IN_TRAY, on))
        self.use_button.clicked.connect(self._use)
        self.download_button.clicked.connect(self._download)
        self.pause_button.clicked.connect(self._pause)
        self.cancel_button.clicked.connect(self._cancel)
        self.remove_button.clicked.connect(self._remove)
        self.import_button.clicked.connect(self._import)
        self.close_button.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        for b in (self.use_button, self.download_button, self.pause_button,
                  self.cancel_button, self.remove_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.import_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.keep_in_tray)
        bottom.addStretch(1)
        bottom.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.detail)
        layout.addWidget(self.bar)
        layout.addWidget(self.bar_text)
        layout.addLayout(buttons)
        layout.addLayout(bottom)
        self._progress: dict[str, Progress] = {}
        service.rows_changed.connect(self.set_rows)
        service.progress.connect(self._on_progress)
        service.failed.connect(lambda m, d: show_error(self, m, d))
        service.imported.connect(self._on_imported)
        self.set_rows(service.rows)
        service.refresh()

    # -- content -------------------------------------------------------------------

    def set_rows(self, rows: list[ModelRow]) -> None:
        chosen = self._selected()
        self.tree.clear()
        installed = QTreeWidgetItem(["Installed"])
        available = QTreeWidgetItem(["Catalog"])
        for head in (installed, available):
            head.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = head.font(0)
            font.setBold(True)
            head.setFont(0, font)
            self.tree.addTopLevelItem(head)
        for row in rows:
            text, color = badge(row.fit.verdict)
            name = row.name + ("  (in use)" if row.current else "")
            item = QTreeWidgetItem([name, size_text(row.size_bytes), text, self._state(row),
                                    row.entry.good_for if row.entry else "Imported"])
            item.setData(0, Qt.ItemDataRole.UserRole, row.id)
            item.setForeground(2, QColor(color))
            item.setToolTip(2, row.fit.summary())
            (installed if row.installed is not None else available).addChild(item)
            if row.id == chosen:
                item.setSelected(True)
        self.tree.expandAll()
        self._update_buttons()

    def _state(self, row: ModelRow) -> str:
        p = self._progress.get(row.id)
        if p is not None and p.state in ("downloading", "waiting", "retrying", "verifying"):
            return f"{p.fraction:.0%}" if p.fraction is not None else p.state
        if row.partial_bytes and row.installed is None:
            return f"Paused at {row.partial_bytes / row.size_bytes:.0%}"
        return {"in use": "In use", "installed": "Installed",
                "available": "Available"}.get(row.state, row.state)

    def item_for(self, model_id: str) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            head = self.tree.topLevelItem(i)
            for j in range(head.childCount() if head is not None else 0):
                item = head.child(j) if head is not None else None
                if item is not None and item.data(0, Qt.ItemDataRole.UserRole) == model_id:
                    return item
        return None

    def select(self, model_id: str) -> None:
        item = self.item_for(model_id)
        if item is not None:
            self.tree.setCurrentItem(item)

    def _selected(self) -> str | None:
        items = self.tree.selectedItems()
        data = items[0].data(0, Qt.ItemDataRole.UserRole) if items else None
        return str(data) if data else None

    def _update_buttons(self) -> None:
        model_id = self._selected()
        row = self.service.row(model_id) if model_id else None
        p = self._progress.get(model_id or "")
        active = p is not None and p.state in ("downloading", "waiting", "retrying",
                                               "verifying")
        self.use_button.setEnabled(row is not None and row.installed is not None
                                   and not row.current)
        self.download_button.setEnabled(row is not None and row.installed is None
                                        and row.entry is not None and not active)
        self.download_button.setText("Resume" if row is not None and row.partial_bytes
                                     else "Download")
        self.pause_button.setEnabled(active)
        self.cancel_button.setEnabled(active or bool(row and row.partial_bytes))
        self.remove_button.setEnabled(row is not None and row.installed is not None
                                      and row.installed.source != "bundled" and not row.current)
        if row is None:
            self.detail.setText("Choose a model to see whether it fits this computer.")
        else:
            e = row.entry
            about = (f"<b>{row.name}</b> — {e.family}, {e.parameters:g} B parameters, "
                     f"{e.quantization}, context {e.context_length:,}, {e.license}. "
                     f"{e.good_for}" if e else f"<b>{row.name}</b> — imported from a file.")
            check = "" if e is None or e.bundled else (
                " The download is checked against its published sha256." if e.sha256 else
                " No checksum is published for it: the download cannot be verified.")
            self.detail.setText(f"{about}<br>Memory: {row.fit.summary()}.{check}")
        self._show_bar(p if model_id else None)

    def _show_bar(self, p: Progress | None) -> None:
        visible = p is not None and p.state not in ("done", "cancelled")
        self.bar.setVisible(visible)
        self.bar_text.setVisible(visible)
        if p is not None and visible:
            self.bar.setValue(int((p.fraction or 0) * 1000))
            self.bar_text.setText(progress_text(p))

    def _on_progress(self, p: Progress) -> None:
        self._progress[p.model_id] = p
        item = self.item_for(p.model_id)
        row = self.service.row(p.model_id)
        if item is not None and row is not None:
            item.setText(3, self._state(row) if p.state not in ("failed", "paused") else
                         progress_text(p)[:40])
        if p.model_id == self._selected():
            self._update_buttons()
        if p.state == "failed" and self.isVisible():
            show_error(self, p.message or "The download failed.")

    # -- actions -------------------------------------------------------------------

    def _pause(self) -> None:
        model_id = self._selected()
        if model_id:
            self.service.pause(model_id)

    def _cancel(self) -> None:
        model_id = self._selected()
        if model_id:
            self.service.cancel(model_id)

    def _download(self) -> None:
        model_id = self._selected()
        row = self.service.row(model_id) if model_id else None
        if row is None:
            return
        if not row.fit.fits:
            answer = QMessageBox.question(
                self, "Models", f"{row.name} will probably not fit in this computer's memory "
                f"({row.fit.summary()}). Download it anyway?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.service.download(row.id)

    def _use(self) -> None:
        model_id = self._selected()
        row = self.service.row(model_id) if model_id else None
        if row is None or row.installed is None or row.current:
            return
        force = False
        if not row.fit.fits:
            answer = QMessageBox.question(
                self, "Models", f"{row.name} will not fit: {row.fit.summary()}. Loading it may "
                "make this computer very slow. Load it anyway?")
            if answer != QMessageBox.StandardButton.Yes:
                return
            force = True
        self.use_requested.emit(row.id, force)

    def _remove(self) -> None:
        model_id = self._selected()
        row = self.service.row(model_id) if model_id else None
        if row is None or row.installed is None:
            return
        answer = QMessageBox.question(self, "Models", f"Remove {row.name} "
                                      f"({size_text(row.size_bytes)}) from this computer?")
        if answer == QMessageBox.StandardButton.Yes:
            self.service.remove(row.id)

    def _import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a GGUF model", str(Path.home()),
                                              "GGUF models (*.gguf)")
        if not path:
            return
        box = QMessageBox(self)
        box.setWindowTitle("Import")
        box.setText(f"Copy {Path(path).name} into Hearth's models folder, or link to it "
                    "where it is (it must then stay there)?")
        copy = box.addButton("Copy", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Link", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is None or box.buttonRole(box.clickedButton()) == (
                QMessageBox.ButtonRole.RejectRole):
            return
        self.service.import_file(path, link=box.clickedButton() is not copy)

    def _on_imported(self, model: Any) -> None:
        for warning in getattr(model, "warnings", ()):
            show_error(self, warning)
