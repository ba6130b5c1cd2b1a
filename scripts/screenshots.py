"""Render the real widgets offscreen into docs/*.png (for the README).

Usage: python scripts/screenshots.py   (uses a throwaway HEARTH_HOME)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HEARTH_HOME"] = tempfile.mkdtemp(prefix="hearth-shots-")

from PySide6.QtCore import QEventLoop, QPoint, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from app.core.events import Source, Sources  # noqa: E402
from app.paths import get_paths  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.ui.app import HearthApp  # noqa: E402
from app.ui.theme import apply_theme  # noqa: E402

DOCS = REPO / "docs"
QUESTION = "How do I list the files in a folder with Python? Show a short example."


def wait_for(signal: object, timeout_ms: int = 120_000) -> None:
    loop = QEventLoop()
    signal.connect(loop.quit)  # type: ignore[attr-defined]
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()


def settle() -> None:
    for _ in range(5):
        QApplication.processEvents()


def save(widget: QWidget, name: str) -> None:
    settle()
    path = DOCS / name
    widget.grab().save(str(path))
    print(f"wrote {path.relative_to(REPO)}")


def main() -> int:
    app = QApplication(sys.argv)
    settings = Settings.load(get_paths())
    settings.override("generation.max_tokens", 160)
    settings.override("generation.temperature", 0.2)
    apply_theme(app, "light")
    hearth = HearthApp(settings, get_paths())
    window = hearth.window
    window.resize(1180, 760)
    window.show()
    window.preload_model()
    wait_for(window.model_state_changed)
    # a real answer from the bundled model
    window.input.setPlainText(QUESTION)
    window.send()
    wait_for(window.answer_finished)
    # the sources panel fed a real Sources event, as retrieval will emit it
    window._on_event(Sources((
        Source(1, str(REPO / "README.md"), 1, 8, None,
               "Hearth is a local-first desktop AI copilot. It runs quantized GGUF models "
               "on your own computer…", 0.83),
        Source(2, str(REPO / "app" / "paths.py"), 60, 75, None,
               "def get_paths() -> Paths: Resolve Hearth's folders now…", 0.61),
    )))
    last = window.chat.last("assistant")
    if last is not None and last.info is not None:
        last.info.sources = window.sources_panel.sources
        last.set_info(last.info)
    window.input.setPlainText("And recursively?")
    save(window, "main-window.png")
    apply_theme(app, "dark")
    window.chat.load(window.assistant.store.messages(window.conversation_id or ""))
    save(window, "main-window-dark.png")
    apply_theme(app, "light")
    # quick-ask popup with its own answer
    quick = hearth.quick
    quick.popup(QPoint(400, 200))
    quick.input.setText("What is a GGUF file, in one sentence?")
    quick.ask()
    wait_for(quick.answer_finished)
    save(quick, "quick-ask.png")
    hearth.quit()
    # Delete the widgets while Qt is still up, not during interpreter exit.
    for widget in (hearth.window, hearth.quick):
        widget.deleteLater()
    settle()
    del hearth
    return 0


if __name__ == "__main__":
    sys.exit(main())
