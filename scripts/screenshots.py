"""Render the real widgets offscreen into docs/*.png (for the README).

Usage: python scripts/screenshots.py   (uses a throwaway HEARTH_HOME)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HEARTH_HOME"] = tempfile.mkdtemp(prefix="hearth-shots-")

import keyring  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QEventLoop, QPoint, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from app.core import secrets  # noqa: E402
from app.core.llm.registry import ProviderConfig, add_provider  # noqa: E402
from app.paths import get_paths  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.ui.app import HearthApp  # noqa: E402
from app.ui.theme import apply_theme  # noqa: E402
from tests.keyring_backend import MemoryKeyring  # noqa: E402

DOCS = REPO / "docs"
QUESTION = "Where does Hearth keep my API keys?"


def wait_for(signal: object, timeout_ms: int = 120_000) -> None:
    loop = QEventLoop()
    signal.connect(loop.quit)  # type: ignore[attr-defined]
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()


def settle() -> None:
    for _ in range(5):
        QApplication.processEvents()


def wait_until(condition: object, timeout_ms: int = 10_000) -> None:
    clock = QElapsedTimer()
    clock.start()
    while not condition() and clock.elapsed() < timeout_ms:  # type: ignore[operator]
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)


def save(widget: QWidget, name: str) -> None:
    settle()
    path = DOCS / name
    widget.grab().save(str(path))
    print(f"wrote {path.relative_to(REPO)}")


def main() -> int:
    app = QApplication(sys.argv)
    settings = Settings.load(get_paths())
    settings.override("generation.max_tokens", 160)
    settings.override("generation.temperature", 0.0)
    apply_theme(app, "light")
    hearth = HearthApp(settings, get_paths())
    window = hearth.window
    window.resize(1180, 760)
    window.show()
    # A folder of real documents (Hearth's own), indexed by the window's indexer.
    notes = Path(os.environ["HEARTH_HOME"]) / "Documents" / "Hearth notes"
    notes.mkdir(parents=True)
    for name in ("README.md", "CHANGELOG.md"):
        shutil.copyfile(REPO / name, notes / name)
    (notes / "scan.pdf").write_bytes(b"%PDF-1.4 a scan that was cut off")
    hearth.index.start()
    hearth.index.add_folder(str(notes))
    wait_for(hearth.index.finished)
    window.preload_model()
    wait_until(lambda: window.model_state == "ready", 60_000)
    # a real answer from the bundled model, with real sources from the index
    window.input.setPlainText(QUESTION)
    window.send()
    wait_for(window.answer_finished)
    index = hearth.index
    wait_until(lambda: index.state == "idle")
    window.input.setPlainText("And where are the indexed folders kept?")
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
    quick.close()
    # Settings › Providers with two providers, one key in the (in-memory) keyring
    keyring.set_keyring(MemoryKeyring())  # never the user's own keyring
    paths = get_paths()
    add_provider(paths, ProviderConfig("openai", "openai", "https://api.openai.com/v1",
                                       "gpt-4o-mini", timeout_s=20.0))
    add_provider(paths, ProviderConfig("claude", "anthropic", "https://api.anthropic.com",
                                       "claude-3-5-haiku-latest", heavy=True))
    secrets.set_key("openai", "sk-screenshot-placeholder")
    dialog = hearth.open_settings()
    dialog.resize(640, 620)
    page = dialog.page("Providers")
    dialog.tabs.setCurrentWidget(page)
    wait_until(lambda: "key: keyring" in page.list.item(0).text())  # type: ignore[attr-defined]
    page.list.setCurrentRow(0)  # type: ignore[attr-defined]
    save(dialog, "settings-providers.png")
    dialog.reject()
    folders = hearth.open_folders()
    folders.resize(760, 520)
    wait_until(lambda: folders.folders.topLevelItemCount() == 1)
    folders.select_path(str(notes))
    save(folders, "folders.png")
    folders.reject()
    hearth.quit()
    # Delete the widgets while Qt is still up, not during interpreter exit.
    for widget in (hearth.window, hearth.quick):
        widget.deleteLater()
    settle()
    del hearth
    return 0


if __name__ == "__main__":
    sys.exit(main())
