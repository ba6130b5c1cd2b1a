"""Small helpers shared by tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.ui.providers_page import ProvidersPage
    from app.ui.settings_dialog import SettingsDialog

REPO = Path(__file__).resolve().parent.parent
# About 3,000 tokens: seconds of prompt reading for the bundled model here.
LONG_QUESTION = "Summarise this text: " + "lorem ipsum dolor sit amet " * 300


def run_hearth(*args: str, env: dict[str, str] | None = None, input: str | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (`python -m app`) in a subprocess."""
    full_env = dict(os.environ)
    full_env.pop("QT_QPA_PLATFORM", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, env=full_env,
        input=input, timeout=timeout, cwd=REPO,
    )


class GuiTicks:
    """Counts GUI-thread timer ticks: they go on only while the GUI thread is
    free, so a test sees whether background work kept it waiting."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.count = 0
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        self.count += 1


def providers_page(dialog: SettingsDialog) -> ProvidersPage:
    """A Settings dialog's Providers page, made the current tab."""
    from app.ui.providers_page import ProvidersPage  # Qt only where the window is tested

    page = dialog.page("Providers")
    assert isinstance(page, ProvidersPage)
    dialog.tabs.setCurrentWidget(page)
    return page
