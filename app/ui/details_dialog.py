"""The answer's details, opened from its badge: its whole trace (route
attempts with their timings, tokens, cost, the retrieved passages with their
scores and citations, cache and privacy) and the notes of a live answer."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from app.core import trace as tr
from app.ui.answer_info import AnswerInfo, badge_text, fallback_reason


def _s(value: float | None, unit: str = " s") -> str:
    return "—" if value is None else f"{value:.2f}{unit}"


# Complex on purpose: one section per optional field of the answer.
def details_html(info: AnswerInfo) -> str:  # noqa: C901
    rows: list[tuple[str, str]] = [
        ("Answered by", f"{info.provider} · {info.model}"),
        ("Where", "on this computer" if info.local else "remote provider"),
        ("Status", {"complete": "complete", "cancelled": "stopped",
                    "error": "failed"}.get(info.status, info.status)),
    ]
    if info.prompt:
        rows.append(("Prompt", info.prompt))
    if info.local_only:
        rows.append(("Local only", "quotes files from a local-only folder; never sent to "
                                   "a remote provider"))
    r = info.route
    if r is not None and (r.history_withheld or r.local_only_dropped) and not info.notes:
        # A stored answer (its notes are not kept): say it from the route.
        rows.append(("Not sent", f"{r.history_withheld} earlier messages and "
                                 f"{r.local_only_dropped} passages from local-only folders"))
    reason = fallback_reason(info.route)
    if reason:
        rows.append(("Fell back because", reason))
    if info.error:
        rows.append(("Error", info.error))
    t = info.timings
    if t is not None:
        rows += [
            ("Time to first token", _s(t.ttft_s)),
            ("Total time", _s(t.total_s)),
            ("Speed", _s(t.tokens_per_s, " tokens/s")),
        ]
        if t.load_s is not None:
            rows.append(("Model load", _s(t.load_s)))
    u = info.usage
    if u is not None:
        rows.append(("Tokens", f"{u.prompt_tokens} in · {u.completion_tokens} out · "
                               f"{u.total_tokens} total"))
        cost = getattr(u, "cost_usd", None)
        if cost is not None:
            rows.append(("Cost", f"${cost:.4f}"))
    for note in info.notes:
        rows.append(("Note", note))
    out = [f"<h3>{html.escape(badge_text(info))}</h3><table cellpadding='3'>"]
    out += [f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>"
            for k, v in rows]
    out.append("</table>")
    if info.trace is not None:
        out.append(trace_html(info.trace))
        return "".join(out)
    if info.route is not None and info.route.attempts:
        out.append(f"<h4>Route ({html.escape(info.route.policy)})</h4>")
        if info.route.summary:
            out.append(f"<p>{html.escape(info.route.summary)}</p>")
        out.append("<table cellpadding='3' border='1' cellspacing='0'><tr><th>#</th>"
                   "<th>Provider</th><th>Model</th><th>Outcome</th><th>Reason</th>"
                   "<th>First token</th><th>Ended</th></tr>")
        for i, a in enumerate(info.route.attempts, 1):
            out.append(
                f"<tr><td>{i}</td><td>{html.escape(a.provider)}</td>"
                f"<td>{html.escape(a.model)}</td><td>{html.escape(a.outcome)}</td>"
                f"<td>{html.escape(a.reason or '')}</td><td>{_s(a.first_token_s)}</td>"
                f"<td>{_s(a.ended_s)}</td></tr>")
        out.append("</table>")
    if info.sources:
        out.append("<h4>Retrieved passages</h4><table cellpadding='3' border='1' "
                   "cellspacing='0'><tr><th>#</th><th>File</th><th>Where</th>"
                   "<th>Score</th></tr>")
        for src in info.sources:
            score = "—" if src.score is None else f"{src.score:.3f}"
            out.append(f"<tr><td>{src.number}</td><td>{html.escape(src.path)}</td>"
                       f"<td>{html.escape(location(src))}</td><td>{score}</td></tr>")
        out.append("</table>")
    return "".join(out)


def trace_html(t: tr.Trace) -> str:
    out = ["<h4>Trace</h4><table cellpadding='3'>"]
    out += [f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>"
            for k, v in tr.summary_rows(t)]
    out.append("</table>")
    for title, columns, rows in (("Route attempts", tr.ATTEMPT_COLUMNS, tr.attempt_rows(t)),
                                 ("Retrieved passages", tr.PASSAGE_COLUMNS,
                                  tr.passage_rows(t))):
        if not rows:
            continue
        out.append(f"<h4>{title}</h4><table cellpadding='3' border='1' cellspacing='0'><tr>")
        out += [f"<th>{html.escape(c)}</th>" for c in columns]
        out.append("</tr>")
        for row in rows:
            out.append("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>")
        out.append("</table>")
    return "".join(out)


def location(src: object) -> str:
    page = getattr(src, "page", None)
    start, end = getattr(src, "start_line", None), getattr(src, "end_line", None)
    if page is not None:
        return f"page {page}"
    if start is not None:
        return f"lines {start}–{end}" if end is not None and end != start else f"line {start}"
    return ""


class AnswerDetailsDialog(QDialog):
    def __init__(self, info: AnswerInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Answer details")
        self.resize(860, 560)
        self.view = QTextBrowser()
        self.view.setHtml(details_html(info))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
        layout.addWidget(buttons)
