"""The Qt binding itself must not corrupt the interpreter: PySide6 6.12.0
released a reference to None each time a QVariant holding None reached
Python, and Hearth (which keeps None as "no choice" in menus and choosers)
aborted with "deallocating None" after a few hundred such calls."""

from __future__ import annotations

import sys

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QComboBox, QMenu
from pytestqt.qtbot import QtBot


def test_none_through_qvariant_keeps_its_references(qtbot: QtBot) -> None:
    menu = QMenu()
    group = QActionGroup(menu)
    action = menu.addAction("All folders")
    action.setCheckable(True)
    combo = QComboBox()
    qtbot.addWidget(combo)
    combo.addItem("Auto", None)
    before = sys.getrefcount(None)
    for _ in range(200):
        action.setData(None)
        assert action.data() is None
        assert group.checkedAction() is None
        assert combo.currentData() is None
    # Other threads may hold or drop a few references meanwhile; a leak
    # would be 800 lost here.
    assert sys.getrefcount(None) >= before - 50
    assert isinstance(action, QAction)
