"""The list of stored conversations: new, search (titles and message text),
rename in place, delete after a confirmation."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.conversations import Conversation, ConversationStore
from app.ui.workers import WorkerSet, run_op

ID_ROLE = Qt.ItemDataRole.UserRole


class ConversationList(QWidget):
    """Every read and write of the store runs off the GUI thread; the list
    is filled when the result arrives (`refreshed` then fires)."""

    selected = Signal(str)  # conversation id
    new_requested = Signal()
    deleted = Signal(str)
    failed = Signal(str, str)
    refreshed = Signal()

    def __init__(self, store_getter: Callable[[], ConversationStore],
                 workers: WorkerSet | None = None) -> None:
        super().__init__()
        self._store_getter = store_getter
        self.setObjectName("conversationList")
        self.new_button = QPushButton("New conversation")
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.clicked.connect(self.new_requested.emit)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search conversations")
        self.search.setToolTip("Search titles and messages (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(150)
        self._search_timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.list = QListWidget()
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemChanged.connect(self._on_renamed)
        self.list.setToolTip("F2 renames, Delete removes")
        delete = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.list)
        delete.activated.connect(self._delete_current)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 0, 8)
        layout.setSpacing(6)
        layout.addWidget(self.new_button)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        self._filling = False
        self._confirm: QMessageBox | None = None
        self._workers = workers if workers is not None else WorkerSet()
        # Only the newest search fills the list (an older one may end later).
        self._generation = 0

    @property
    def store(self) -> ConversationStore:
        return self._store_getter()

    def refresh(self, select: str | None = None) -> None:
        self._generation += 1
        generation, query = self._generation, self.search.text().strip() or None
        store = self._store_getter

        def fill(convs: list[Conversation]) -> None:
            if generation == self._generation:
                self._fill(convs, select or self.current_id())
                self.refreshed.emit()

        run_op(self._workers, lambda: store().search(query), fill, self.failed.emit, self)

    def shutdown(self) -> None:
        self._workers.stop_all()

    def _fill(self, convs: list[Conversation], current: str | None) -> None:
        self._filling = True
        try:
            self.list.clear()
            for conv in convs:
                item = QListWidgetItem(conv.title)
                item.setData(ID_ROLE, conv.id)
                item.setToolTip(conv.title)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                self.list.addItem(item)
                if conv.id == current:
                    self.list.setCurrentItem(item)
        finally:
            self._filling = False

    def ids(self) -> list[str]:
        return [self.list.item(i).data(ID_ROLE) for i in range(self.list.count())]

    def titles(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def current_id(self) -> str | None:
        item = self.list.currentItem()
        if item is None:
            return None
        conversation_id: str | None = item.data(ID_ROLE)
        return conversation_id

    def select(self, conversation_id: str | None) -> None:
        """Highlight a conversation without reloading it."""
        self._filling = True
        try:
            self.list.setCurrentRow(-1)
            for i in range(self.list.count()):
                if self.list.item(i).data(ID_ROLE) == conversation_id:
                    self.list.setCurrentRow(i)
        finally:
            self._filling = False

    def _on_current(self, item: QListWidgetItem | None, _prev: object) -> None:
        if item is not None and not self._filling:
            self.selected.emit(item.data(ID_ROLE))

    def rename(self, conversation_id: str, title: str) -> None:
        store = self._store_getter

        def failed(message: str, details: str) -> None:
            self.failed.emit(message, details)
            self.refresh(conversation_id)  # back to the stored title

        run_op(self._workers, lambda: store().rename(conversation_id, title),
               lambda _r: self.refresh(conversation_id), failed, self)

    def _on_renamed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        self.rename(item.data(ID_ROLE), item.text())

    def start_rename(self, conversation_id: str) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(ID_ROLE) == conversation_id:
                self.list.editItem(item)

    def ask_delete(self, conversation_id: str) -> QMessageBox:
        """Ask before deleting (non-blocking); deletes when the user agrees."""
        title = next((self.list.item(i).text() for i in range(self.list.count())
                      if self.list.item(i).data(ID_ROLE) == conversation_id), "")
        box = QMessageBox(QMessageBox.Icon.Question, "Delete conversation",
                          f"Delete “{title}” and all its messages? This cannot be undone.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                          self)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Yes).setText("Delete")
        box.accepted.connect(lambda: self.delete(conversation_id))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._confirm = box
        box.open()
        return box

    def delete(self, conversation_id: str) -> None:
        store = self._store_getter

        def deleted(_result: object) -> None:
            self.refresh()
            self.deleted.emit(conversation_id)

        run_op(self._workers, lambda: store().delete(conversation_id), deleted,
               self.failed.emit, self)

    def _delete_current(self) -> None:
        cid = self.current_id()
        if cid:
            self.ask_delete(cid)

    def _menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        cid = item.data(ID_ROLE)
        menu = QMenu(self)
        menu.addAction("Rename", lambda: self.start_rename(cid))
        menu.addAction("Delete…", lambda: self.ask_delete(cid))
        menu.popup(self.list.viewport().mapToGlobal(pos))
