"""Word-wrapped labels that are never shorter than their text needs, and text
that can wrap inside long paths."""

from __future__ import annotations

import re

from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QWidget

# Words longer than this (in characters) get places to wrap.
LONG_WORD = 24


class WrappedLabel(QLabel):
    """Layouts size a wrapped label by its one-line hint, and a window that is
    already on screen does not grow when the text gets longer: the last lines
    were cut off. This label asks, at each width, for the height its wrapped
    text needs (its minimum height follows heightForWidth)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)

    def setText(self, text: str) -> None:
        super().setText(text)
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        needed = self.heightForWidth(max(1, self.width())) if self.text() else 0
        if needed > 0 and needed != self.minimumHeight():
            self.setMinimumHeight(needed)


_BREAK_AFTER = re.compile(r"([/\\_.\-])")
_LONG_WORD = re.compile(rf"\S{{{LONG_WORD},}}")


def breakable(text: str) -> str:
    """`text` with a zero-width space where a long unbroken word (a path, a
    URL) may wrap: after its separators, and every LONG_WORD characters. A
    label wraps only between words, so without these one path sets the
    label's, and the window's, minimum width."""
    return _LONG_WORD.sub(_break_word, text)


def _break_word(match: re.Match[str]) -> str:
    parts = _BREAK_AFTER.sub("\\1\u200b", match.group()).split("\u200b")
    pieces = [p[i:i + LONG_WORD] for p in parts for i in range(0, max(1, len(p)), LONG_WORD)]
    return "\u200b".join(pieces)
