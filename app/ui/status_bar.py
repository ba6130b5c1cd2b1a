"""The window's status bar: the local model (a picker of installed models,
a busy bar while loading, Details when loading failed), the indexer (its
sentence, progress and Pause) and Offline. It draws from the model state
and the index status it observes (`app.ui.state`), and says what the user
asked for through signals; it runs no work of its own."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QMenu, QMessageBox, QProgressBar, QStatusBar, QToolButton

from app.core.knowledge.protocol import IndexState
from app.core.models.library import ModelRow
from app.ui.errors import show_error
from app.ui.model_state import ModelState
from app.ui.state import IndexStatus, Observed

FOLDERS_TIP = "Your indexed folders: click to open Folders"


def _progress(width: int) -> QProgressBar:
    bar = QProgressBar()
    bar.setMaximumWidth(width)
    bar.setMaximumHeight(14)
    bar.setTextVisible(False)
    bar.hide()
    return bar


def _tool(text: str, tip: str, name: str = "") -> QToolButton:
    button = QToolButton()
    if name:
        button.setObjectName(name)
    button.setText(text)
    button.setAutoRaise(True)
    button.setToolTip(tip)
    return button


class StatusBar(QStatusBar):
    model_chosen = Signal(str, str, bool)  # name, path ("" bundled), load even if too big
    models_requested = Signal()
    folders_requested = Signal()
    pause_toggled = Signal(bool)

    def __init__(self, model: Observed[ModelState], index: Observed[IndexStatus]) -> None:
        super().__init__()
        self._rows: list[ModelRow] = []
        self.model_status = _tool("", "", "modelStatus")
        self.model_status.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.model_menu = QMenu(self.model_status)
        self.model_status.setMenu(self.model_menu)
        self.set_model_rows([])
        self.model_progress = _progress(120)
        self.model_progress.setRange(0, 0)  # llama.cpp gives no load progress: a busy bar
        self.model_details = _tool("Details", "Why the model could not be loaded")
        self.model_details.clicked.connect(self._show_model_details)
        self.model_details.hide()
        self.offline_label = QLabel("Offline")
        self.offline_label.setObjectName("offline")
        self.offline_label.setToolTip("Offline mode: nothing is sent over the network")
        self.index_progress = _progress(100)
        self.index_status = _tool("", FOLDERS_TIP, "indexStatus")
        self.index_status.clicked.connect(self.folders_requested.emit)
        self.index_status.hide()
        self.index_pause = _tool("Pause", "Pause indexing (the index stays; changes are "
                                 "picked up on resume)")
        self.index_pause.setCheckable(True)
        self.index_pause.toggled.connect(self._on_pause_toggled)
        self.index_pause.hide()
        self.addWidget(self.model_progress)
        self.addWidget(self.model_status, 1)
        self.addWidget(self.model_details)
        self.addPermanentWidget(self.index_progress)
        self.addPermanentWidget(self.index_status)
        self.addPermanentWidget(self.index_pause)
        self.addPermanentWidget(self.offline_label)
        self._model = model
        model.changed.connect(self.show_model)
        self.show_model(model.value)
        index.changed.connect(self.show_index)
        self.show_index(index.value)

    # -- the model ---------------------------------------------------------------------

    def show_model(self, state: ModelState) -> None:
        self.model_status.setText(state.text)
        self.model_status.setToolTip(state.tooltip)
        self.model_progress.setVisible(state.phase == "loading")
        self.model_details.setVisible(state.phase == "error" and bool(state.details))

    def _show_model_details(self) -> None:
        show_error(self.window(), self.model_status.text(), self._model.value.details)

    def set_model_rows(self, rows: list[ModelRow]) -> None:
        """The installed models changed: rebuild the picker."""
        self._rows = list(rows)
        menu = self.model_menu
        menu.clear()
        for row in rows:
            if row.installed is None:
                continue
            action = menu.addAction(f"{row.name}  ·  {row.fit.verdict}")
            action.setCheckable(True)
            action.setChecked(row.current)
            action.setToolTip(row.fit.summary())
            action.setData(row.id)
            action.triggered.connect(lambda _c=False, r=row: self.choose(r))
        menu.addSeparator()
        menu.addAction("Models…", self.models_requested.emit)

    def choose(self, row: ModelRow, force: bool = False) -> None:
        """A model picked (here or in Models): one that will not fit is asked
        about first; `model_chosen` asks the window to load it."""
        if row.current or row.installed is None:
            return
        if not row.fit.fits and not force:
            answer = QMessageBox.question(
                self.window(), "Hearth",
                f"{row.name} will not fit: {row.fit.summary()}. Load it anyway?")
            if answer != QMessageBox.StandardButton.Yes:
                self.set_model_rows(self._rows)  # undo the check mark
                return
            force = True
        path = "" if row.installed.source == "bundled" else str(row.installed.path)
        self.model_chosen.emit(row.name, path, force)

    def set_offline(self, offline: bool) -> None:
        self.offline_label.setVisible(offline)

    # -- the index ---------------------------------------------------------------------

    def show_index(self, status: IndexStatus) -> None:
        state, text = status.state, status.text
        self.index_status.setVisible(state != IndexState.NONE and bool(text))
        self.index_status.setText(text)
        self.index_pause.setVisible(
            state in (IndexState.IDLE, IndexState.INDEXING, IndexState.PAUSED))
        self.index_pause.blockSignals(True)
        self.index_pause.setChecked(state == IndexState.PAUSED)
        self.index_pause.setText("Resume" if state == IndexState.PAUSED else "Pause")
        self.index_pause.blockSignals(False)
        activity = status.activity
        if activity is not None:
            total = activity.total
            if total:
                self.index_progress.setRange(0, total)
                self.index_progress.setValue(activity.done)
            self.index_status.setToolTip(f"Indexing {activity.current}" if activity.current
                                         else FOLDERS_TIP)
        self.index_progress.setVisible(state == IndexState.INDEXING and activity is not None
                                       and activity.busy and activity.total > 0)

    def _on_pause_toggled(self, paused: bool) -> None:
        self.index_pause.setText("Resume" if paused else "Pause")
        self.pause_toggled.emit(paused)
