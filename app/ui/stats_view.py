"""The Statistics view (View ▸ Statistics…): the figures of `app.core.stats`,
read off the GUI thread. Counts that compare (answers per model, tokens per
day, fallback reasons, files left out) are bar charts; the rest are tables.

The bars are painted here rather than with QtCharts: QtCharts lives in
PySide6-Addons, a download several times the size of what Hearth needs, for
four bar charts."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.core import stats
from app.paths import Paths
from app.ui.workers import WorkerSet, call_in_background

SPANS = (("All time", None), ("Last 24 hours", "24h"), ("Last 7 days", "7d"),
         ("Last 30 days", "30d"))


class BarChart(QWidget):
    """Horizontal bars, one a row: a label, the bar, its value. Empty: a line saying so."""

    ROW = 22

    def __init__(self, empty_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.empty_text = empty_text
        self.bars: list[tuple[str, float, str]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_bars(self, bars: Sequence[tuple[str, float, str]]) -> None:
        """(label, value, value as text) each, in the order to show."""
        self.bars = list(bars)
        self.setFixedHeight(self.sizeHint().height())
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(420, max(1, len(self.bars)) * self.ROW + 8)

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        try:
            pal = self.palette()
            p.setPen(pal.color(QPalette.ColorRole.WindowText))
            if not self.bars:
                p.drawText(self.rect().adjusted(4, 0, 0, 0),
                           Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                           self.empty_text)
                return
            fm = p.fontMetrics()
            label_w = min(self.width() // 3, max(fm.horizontalAdvance(b[0]) for b in self.bars)
                          + 8)
            value_w = max(fm.horizontalAdvance(b[2]) for b in self.bars) + 8
            span = max(1.0, float(self.width() - label_w - value_w - 8))
            top = max((b[1] for b in self.bars), default=0.0) or 1.0
            for i, (label, value, text) in enumerate(self.bars):
                y = 4 + i * self.ROW
                p.setPen(pal.color(QPalette.ColorRole.WindowText))
                p.drawText(QRectF(0, y, label_w - 8, self.ROW - 4),
                           Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                           fm.elidedText(label, Qt.TextElideMode.ElideMiddle, label_w - 8))
                width = span * max(0.0, value) / top
                p.fillRect(QRectF(label_w, y + 3, max(1.0, width), self.ROW - 10),
                           pal.color(QPalette.ColorRole.Highlight))
                p.drawText(QRectF(label_w + width + 6, y, value_w, self.ROW - 4),
                           Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        finally:
            p.end()


def chart_bars(s: dict[str, Any]) -> dict[str, list[tuple[str, float, str]]]:
    """The bars of each chart, from the figures (Qt-free data, tested on its own)."""
    per_day: dict[str, int] = {}
    for d in s["tokens"]["by_day"]:
        per_day[d["day"]] = per_day.get(d["day"], 0) + d["prompt_tokens"] + d[
            "completion_tokens"]
    return {
        "models": [(f"{m['provider']} · {m['model']}", m["answers"], str(m["answers"]))
                   for m in s["by_model"]],
        "days": [(day, n, f"{n:,}") for day, n in sorted(per_day.items())[-14:]],
        "fallbacks": [(why, n, str(n)) for why, n in s["fallback"]["reasons"].items()],
        "left_out": [(why, n, str(n)) for why, n in
                     list(s["index"]["left_out_reasons"].items())[:10]],
    }


def tables_html(s: dict[str, Any]) -> str:
    def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
        out = ["<table cellpadding='3' border='1' cellspacing='0'><tr>"]
        out += [f"<th>{html.escape(h)}</th>" for h in head]
        out.append("</tr>")
        for r in rows:
            out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
        out.append("</table>")
        return "".join(out)

    def n(x: float | None, unit: str = "", digits: int = 2) -> str:
        return "—" if x is None else f"{x:.{digits}f}{unit}"

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{x:.0%}"

    def cost(x: float | None) -> str:
        return "—" if x is None else f"${x:.4f}"

    tok, fb, c, ci = s["tokens"], s["fallback"], s["cache"], s["citations"]
    parts = [
        "<h4>Speed per model</h4>",
        table(("Provider", "Model", "Answers", "Failed", "First token p50", "p95",
               "Tokens/s p50", "p95"),
              [(m["provider"], m["model"], str(m["answers"]), str(m["failed"]),
                n(m["ttft_p50_s"], " s"), n(m["ttft_p95_s"], " s"),
                n(m["tokens_per_s_p50"], "", 1), n(m["tokens_per_s_p95"], "", 1))
               for m in s["by_model"]]),
        "<h4>Tokens and cost per provider</h4>",
        table(("Provider", "Tokens in", "Tokens out", "Cost"),
              [(p["provider"], f"{p['prompt_tokens']:,}", f"{p['completion_tokens']:,}",
                cost(p["cost_usd"])) for p in [*tok["by_provider"],
                                               {"provider": "total", **tok["total"]}]]),
        f"<p>Fallbacks: {fb['answers']} of {fb['routed']} answers ({pct(fb['rate'])}). "
        f"Cache: {c['hits']} hits of {c['lookups']} lookups ({pct(c['hit_rate'])}). "
        f"Answers citing a file: {ci['citing']} of {ci['answers']} ({pct(ci['share'])}).</p>",
    ]
    return "".join(parts)


class StatsDialog(QDialog):
    def __init__(self, paths: Paths, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.paths = paths
        self.figures: dict[str, Any] | None = None
        self._workers = WorkerSet()
        self.setWindowTitle("Statistics")
        self.resize(760, 720)
        self.span = QComboBox()
        for label, value in SPANS:
            self.span.addItem(label, value)
        self.span.currentIndexChanged.connect(lambda _i: self.refresh())
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.summary = QLabel("Reading the history…")
        self.summary.setWordWrap(True)
        self.charts = {
            "models": BarChart("No answers yet."),
            "days": BarChart("No tokens yet."),
            "fallbacks": BarChart("No fallbacks: the first choice always answered."),
            "left_out": BarChart("No file was left out."),
        }
        titles = {"models": "Answers per model", "days": "Tokens per day",
                  "fallbacks": "Why the first choice did not answer",
                  "left_out": "Files left out of the index, and why"}
        self.tables = QTextBrowser()
        self.tables.setMinimumHeight(220)
        body = QWidget()
        grid = QGridLayout(body)
        for row, key in enumerate(self.charts):
            box = QGroupBox(titles[key])
            QVBoxLayout(box).addWidget(self.charts[key])
            grid.addWidget(box, row, 0)
        grid.addWidget(self.tables, len(self.charts), 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        top = QHBoxLayout()
        top.addWidget(self.span)
        top.addStretch(1)
        top.addWidget(self.refresh_button)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(scroll, 1)
        layout.addWidget(buttons)
        self.refresh()

    def refresh(self) -> None:
        since_text = self.span.currentData()
        paths = self.paths

        def work() -> dict[str, Any]:
            since = stats.parse_since(since_text) if since_text else None
            return stats.collect(paths, since)

        self.refresh_button.setEnabled(False)
        worker = call_in_background(work, self)
        worker.item.connect(self.show_figures)
        worker.failed.connect(self._on_failed)
        worker.done.connect(lambda: self.refresh_button.setEnabled(True))
        self._workers.start(worker)

    def show_figures(self, s: dict[str, Any]) -> None:
        self.figures = s
        ix = s["index"]
        index_line = (f"Index: {ix['folders']} folders, {ix['indexed']:,} of {ix['files']:,} "
                      f"files indexed, {ix['chunks']:,} passages, "
                      f"{ix['bytes_on_disk'] / 1e6:.1f} MB; {ix['left_out']:,} files left out.")
        head = s["message"] or f"{s['answers']:,} answers."
        self.summary.setText(f"{head} {index_line}")
        for key, bars in chart_bars(s).items():
            self.charts[key].set_bars(bars)
        self.tables.setHtml("" if s["message"] else tables_html(s))

    def _on_failed(self, message: str, details: str) -> None:
        from app.ui.errors import show_error

        self.summary.setText(message)
        show_error(self, message, details)

    def done(self, result: int) -> None:
        self._workers.stop_all()
        super().done(result)
