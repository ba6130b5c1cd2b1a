""""Use my files" and which folders: a toggle whose menu lists the indexed
folders (All folders, or one). The folders come from the index through
`set_folders`; whether to use the files is remembered in the window's
QSettings (`ask/use_files`)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtGui import QActionGroup
from PySide6.QtWidgets import QMenu, QToolButton


class FolderChooser(QToolButton):
    folders_requested = Signal()

    def __init__(self, state: QSettings) -> None:
        super().__init__()
        self.setObjectName("filesButton")
        self.setText("Use my files")
        self.setCheckable(True)
        self.setChecked(bool(state.value("ask/use_files", True, type=bool)))
        self.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.setToolTip("Answer from your indexed folders and cite them; "
                        "the arrow picks which folders")
        self.toggled.connect(lambda on: state.setValue("ask/use_files", on))
        self.menu_ = QMenu(self)
        self.setMenu(self.menu_)
        self._group = QActionGroup(self)
        self._paths: list[str] = []
        self._group.triggered.connect(lambda _a: self._update())
        self.set_folders([])

    def set_folders(self, paths: list[str]) -> None:
        """The indexed folders changed: rebuild the menu, keeping the choice."""
        chosen = self.chosen_folder()
        self._paths = list(paths)
        menu = self.menu_
        menu.clear()
        for action in self._group.actions():
            self._group.removeAction(action)
        everything = menu.addAction("All folders")
        everything.setCheckable(True)
        everything.setData(None)
        self._group.addAction(everything)
        if paths:
            menu.addSeparator()
        for path in paths:
            action = menu.addAction(path)
            action.setCheckable(True)
            action.setData(path)
            self._group.addAction(action)
            if path == chosen:
                action.setChecked(True)
        if self._group.checkedAction() is None:
            everything.setChecked(True)
        menu.addSeparator()
        menu.addAction("Folders…", self.folders_requested.emit)
        self._update()

    def chosen_folder(self) -> str | None:
        action = self._group.checkedAction()
        data = action.data() if action is not None else None
        return str(data) if data else None

    def folders(self) -> tuple[str, ...] | None:
        """The folders to answer from (None: all of them)."""
        folder = self.chosen_folder()
        return (folder,) if folder else None

    def _update(self) -> None:
        folder = self.chosen_folder()
        if not self._paths:
            self.setToolTip("No folders are indexed yet: add some in Folders "
                            "(Ctrl+Shift+O) and answers cite them")
        elif folder:
            self.setToolTip(f"Answers come from {folder} only")
        else:
            self.setToolTip(f"Answers come from your {len(self._paths)} "
                            "indexed folder(s); the arrow picks one")
        self.setText("Use my files" if folder is None else f"Use {Path(folder).name or folder}")
