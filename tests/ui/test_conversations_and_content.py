"""Conversation list CRUD over the real store; Markdown, code-block copy and
the sources panel in the real widgets."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication, QTextCursor
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from app.core.events import Attempt, Route, Source, Sources
from app.ui.answer_info import AnswerInfo, badge_text
from app.ui.chat_view import ChatView
from app.ui.main_window import MainWindow
from app.ui.markdown import render_markdown
from app.ui.sources_panel import SourceViewer


def _store_conversations(qtbot: QtBot, window: MainWindow) -> tuple[str, str]:
    store = window.assistant.store
    a = store.create("Garden plans")
    store.add_message(a.id, "user", "When do I plant tulips?")
    store.add_message(a.id, "assistant", "Plant **tulip** bulbs in autumn.", model="m1",
                      provider="local", tokens_per_s=33.0, completion_tokens=7)
    b = store.create("Bread")
    store.add_message(b.id, "user", "How long does sourdough rise?")
    refreshed(qtbot, window)
    return a.id, b.id


def refreshed(qtbot: QtBot, window: MainWindow) -> None:
    """Refresh the list and wait for the store's answer (read off the GUI thread)."""
    with qtbot.waitSignal(window.conversations.refreshed, timeout=10_000):
        window.conversations.refresh()


def test_conversation_list_open_search_rename_delete(qtbot: QtBot, window: MainWindow) -> None:
    a, b = _store_conversations(qtbot, window)
    assert window.conversations.titles() == ["Bread", "Garden plans"]  # newest first
    # open: the messages and the stored badge come back (read off the GUI thread)
    with qtbot.waitSignal(window.conversation_opened, timeout=10_000):
        window.conversations.list.setCurrentRow(1)
    assert window.conversation_id == a
    transcript = window.chat.transcript()
    assert "When do I plant tulips?" in transcript and "tulip bulbs in autumn" in transcript
    assert "Local · m1 · 33 tok/s" in transcript
    # search matches message text, not only titles
    window.conversations.search.setText("sourdough")
    qtbot.waitUntil(lambda: window.conversations.titles() == ["Bread"], timeout=2_000)
    window.conversations.search.setText("")
    qtbot.waitUntil(lambda: len(window.conversations.titles()) == 2, timeout=2_000)
    # rename in place (what F2 + typing does) is stored
    item = window.conversations.list.item(1)
    item.setText("Tulips")
    qtbot.waitUntil(lambda: window.assistant.store.get(a).title == "Tulips", timeout=5_000)
    qtbot.waitUntil(lambda: "Tulips" in window.conversations.titles(), timeout=5_000)
    # delete asks first; Cancel keeps it, Delete removes it and clears the view
    box = window.conversations.ask_delete(a)
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert len(window.conversations.ids()) == 2
    box = window.conversations.ask_delete(a)
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: window.conversations.ids() == [b], timeout=5_000)
    assert window.conversation_id is None and window.chat.messages == []
    assert [c.id for c in window.assistant.store.search()] == [b]
    # new conversation: an empty view, nothing selected
    with qtbot.waitSignal(window.conversation_opened, timeout=10_000):
        window.conversations.list.setCurrentRow(0)
    assert window.conversation_id == b
    window.conversations.new_button.click()
    assert window.conversation_id is None and window.chat.messages == []


def test_markdown_renders_headings_lists_code_and_links() -> None:
    text = ("# Title\n\n- one\n- two\n\n```python\nprint('<hi>')\n```\n\n"
            "See [docs](https://example.org). <script>x</script>")
    out = render_markdown(text)
    assert "<h1>Title</h1>" in out.html
    assert "<li>one</li>" in out.html
    assert "<a href=\"https://example.org\">docs</a>" in out.html
    assert "print(&#x27;&lt;hi&gt;&#x27;)" in out.html or "print('&lt;hi&gt;')" in out.html
    assert "hearth-copy:0" in out.html and "monospace" in out.html
    assert "<script>" not in out.html  # raw HTML is shown as text
    assert out.code_blocks == ["print('<hi>')"]


def test_code_block_copy_link_copies_the_code(qtbot: QtBot) -> None:
    view = ChatView()
    qtbot.addWidget(view)
    view.show()
    answer = view.add_answer("Here:\n\n```sh\nls -la\n```\n\nand\n\n```\necho two\n```")
    answer.body.anchorClicked.emit(QUrl("hearth-copy:1"))
    assert QGuiApplication.clipboard().text() == "echo two"
    assert "ls -la" in answer.body.toPlainText()


def test_badge_says_remote_and_why_the_router_fell_back() -> None:
    route = Route("auto", (
        Attempt("local", "qwen", 0.0, None, 20.0, "failed", "ttft_timeout",
                "local model timed out after 20 s"),
        Attempt("openai", "gpt-4o-mini", 20.0, 20.4, 22.0, "answered"),
    ), "answered by openai/gpt-4o-mini — local model timed out after 20 s")
    info = AnswerInfo("openai", "gpt-4o-mini", route=route)
    assert badge_text(info) == "Remote · gpt-4o-mini — local model timed out after 20 s"
    # A stored route without per-attempt details: the summary's reason still shows.
    bare = Route("auto", (Attempt("local", "qwen", 0.0, None, 20.0, "failed"),
                          route.attempts[1]), route.summary)
    assert badge_text(AnswerInfo("openai", "gpt-4o-mini", route=bare)) == badge_text(info)
    assert badge_text(AnswerInfo("local", "qwen")) == "Local · qwen"


def _sources(tmp_path: Path) -> tuple[Source, ...]:
    notes = tmp_path / "notes.md"
    notes.write_text("".join(f"line {i}\n" for i in range(1, 301)))
    pdf = tmp_path / "manual.pdf"
    pdf.write_bytes(b"%PDF-1.4 a real file on disk")
    return (
        Source(1, str(notes), 200, 204, None, "line 200 line 201", 0.91),
        Source(2, str(pdf), None, None, 3, "page three text", 0.42),
        Source(3, str(tmp_path / "gone.txt"), 1, 2, None, "vanished", 0.1),
    )


class _UrlCatcher(QObject):
    """Offscreen there is no desktop to open files in: catch the request
    through Qt's own URL-handler hook instead."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def test_sources_panel_lists_citations_and_opens_them(qtbot: QtBot, window: MainWindow,
                                                      tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    # the event as Assistant.ask emits it once retrieval exists
    window._on_event(Sources(sources))
    panel = window.sources_panel
    assert panel.isVisible() and panel.list.count() == 3
    first = panel.list.item(0).text()
    assert first.startswith("[1] notes.md · lines 200–204") and "line 200" in first
    assert panel.list.item(1).text().startswith("[2] manual.pdf · page 3")
    # a text file opens in the viewer, scrolled to and highlighting the lines
    with qtbot.waitSignal(panel.viewer_opened, timeout=2_000) as opened:
        panel.list.itemClicked.emit(panel.list.item(0))
    viewer = opened.args[0]
    assert isinstance(viewer, SourceViewer)
    qtbot.waitUntil(lambda: viewer.first_visible_line > 150, timeout=2_000)
    assert viewer.first_visible_line <= 200
    highlighted = viewer.editor.extraSelections()[0]
    selection = QTextCursor(highlighted.cursor).selectedText()
    assert selection.startswith("line 200") and "line 204" in selection
    viewer.close()
    # a PDF page goes to the default application
    catcher = _UrlCatcher()
    QDesktopServices.setUrlHandler("file", catcher, "open")  # type: ignore[call-overload]
    try:
        panel.list.itemClicked.emit(panel.list.item(1))
        qtbot.waitUntil(lambda: bool(catcher.urls), timeout=5_000)
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [u.toLocalFile() for u in catcher.urls] == [sources[1].path]
    # a file that has gone says so

    def box_shown() -> QMessageBox | None:
        return next((b for b in QApplication.topLevelWidgets()
                     if isinstance(b, QMessageBox) and b.isVisible()), None)

    panel.list.itemClicked.emit(panel.list.item(2))
    qtbot.waitUntil(lambda: box_shown() is not None, timeout=5_000)
    box = box_shown()
    assert box is not None
    assert "is no longer there" in box.text()
    box.close()
