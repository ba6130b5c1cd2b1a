"""Who answers the next question: Auto, Local only, Remote first (once a
remote provider is set up) or one provider by name. The providers are read
from providers.toml off the GUI thread (`run_op`); only the newest reading
fills the chooser, since an older one may end later."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox

from app.core.llm.registry import load_providers
from app.paths import Paths
from app.ui.workers import WorkerSet, run_op


class RouteChooser(QComboBox):
    """`refreshed` after each filling; `failed(message)` when providers.toml
    could not be read (the chooser then offers Auto and Local only)."""

    refreshed = Signal()
    failed = Signal(str)

    def __init__(self, paths: Paths, workers: WorkerSet,
                 default_policy: Callable[[], str]) -> None:
        super().__init__()
        self.setObjectName("routeChooser")
        self.setToolTip(
            "Who answers the next question: Auto (the local model, then the remote "
            "providers in order), only the local model, or one remote provider")
        self._paths = paths
        self._workers = workers
        self._default_policy = default_policy
        self._generation = 0

    def route(self) -> str | None:
        """The chosen route (a policy or a provider's name)."""
        data = self.currentData()
        return str(data) if data else None

    def refresh(self) -> None:
        """Fill from the configured providers, keeping the choice when it still
        exists (else the routing.policy setting)."""
        if not self.count():
            self.fill([])  # Auto and Local only need no file
        self._generation += 1
        generation = self._generation
        paths = self._paths

        def filled(names: list[str]) -> None:
            if generation == self._generation:
                self.fill(names)

        def failed(message: str, _details: str) -> None:
            self.failed.emit(message)
            filled([])

        run_op(self._workers, lambda: [p.name for p in load_providers(paths)], filled,
               failed, self)

    def fill(self, names: list[str]) -> None:
        current = self.currentData() if self.count() else None
        self.blockSignals(True)
        self.clear()
        self.addItem("Auto", "auto")
        self.addItem("Local only", "local-only")
        if names:
            self.addItem("Remote first", "remote-first")
        for name in names:
            self.addItem(name, name)
        index = self.findData(current or self._default_policy())
        self.setCurrentIndex(index if index >= 0 else 0)
        self.blockSignals(False)
        self.refreshed.emit()

    def set_default(self, policy: str) -> None:
        """The routing.policy setting changed: the chooser follows it."""
        index = self.findData(policy)
        if index >= 0:
            self.setCurrentIndex(index)
