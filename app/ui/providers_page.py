"""Settings › Providers: the remote providers Hearth may fall back to (add,
edit, remove, test) and their API keys, which go straight to the OS keyring.

Provider records are saved at once to providers.toml. Reading and writing
that file, keyring calls and connection tests all run in workers (a keyring
may wait on an unlock prompt, a server may not answer, a disk may be slow),
and their results arrive through signals: a failed write says why in one
sentence and leaves the list as it was."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QWidget,
)

from app.core import secrets
from app.core.errors import HearthError
from app.core.llm.probe import ProbeResult, probe_config
from app.core.llm.provider import CancelToken
from app.core.llm.registry import (
    ProviderConfig,
    ProviderConfigError,
    add_provider,
    load_providers,
    remove_provider,
    save_providers,
)
from app.paths import Paths
from app.settings import Settings
from app.ui.labels import WrappedLabel
from app.ui.settings_dialog import SettingsPage
from app.ui.workers import GeneratorWorker, WorkerSet

INTRO = ("Remote providers answer when the local model cannot, in this order. Changes here "
         "are saved at once; keys go to the system keyring, never to a file.")
KIND_LABELS = {"openai": "OpenAI-compatible (OpenAI, Groq, Mistral, Ollama, vLLM…)",
               "anthropic": "Anthropic"}


def parse_headers(text: str) -> dict[str, str]:
    """`Name: value` (or `Name=value`) per line; raises ProviderConfigError."""
    headers: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        colon, equals = line.find(":"), line.find("=")
        cut = min(i for i in (colon, equals) if i >= 0) if max(colon, equals) >= 0 else -1
        name, value = (line[:cut].strip(), line[cut + 1:].strip()) if cut > 0 else ("", "")
        if not name or not value:
            raise ProviderConfigError(
                f"Each header line needs a name and a value, like X-Team: hearth; got "
                f"{line.strip()!r}.")
        headers[name] = value
    return headers


class ProvidersPage(SettingsPage):
    changed = Signal(list)  # provider names, in order, after the user changed them
    loaded = Signal(list)  # provider names, in order, each time providers.toml was read
    # The sentence shown after a background step (save, remove, save key,
    # forget key, test).
    finished = Signal(str)

    def __init__(self, paths: Paths) -> None:
        super().__init__("Providers", [], INTRO)
        self.paths = paths
        self.settings: Settings | None = None
        self.providers: list[ProviderConfig] = []
        self.key_sources: dict[str, str] = {}
        self.editing: str | None = None  # the provider in the form; None: a new one
        self.last_result: ProbeResult | None = None
        self._workers = WorkerSet()
        self._worker: GeneratorWorker | None = None
        self._inspect_pending = False
        self._read_pending = False

        self.keyring_note = WrappedLabel()
        self.keyring_note.setObjectName("keyringNote")
        self.keyring_note.hide()
        self.list = QListWidget()
        self.list.setMaximumHeight(110)
        self.list.setToolTip("Configured providers, in fallback order")
        self.list.currentRowChanged.connect(self._on_selected)
        self.new_button = QPushButton("New")
        self.new_button.setToolTip("Set up another provider")
        self.new_button.clicked.connect(self.new)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected provider (its key stays until you "
                                      "forget it)")
        self.remove_button.clicked.connect(self.remove)

        self.name = QLineEdit()
        self.name.setPlaceholderText("e.g. openai")
        self.name.setToolTip("Lowercase letters, digits, '-' or '_'")
        self.kind = QComboBox()
        for kind, label in KIND_LABELS.items():
            self.kind.addItem(label, kind)
        self.base_url = QLineEdit()
        self.base_url.setPlaceholderText("https://api.openai.com/v1")
        self.model = QLineEdit()
        self.model.setPlaceholderText("e.g. gpt-4o-mini")
        self.headers = QPlainTextEdit()
        self.headers.setPlaceholderText("Optional, one per line: X-Team: hearth")
        self.headers.setMaximumHeight(54)
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(0.5, 3600.0)
        self.timeout.setDecimals(1)
        self.timeout.setValue(30.0)
        self.timeout.setSuffix(" s")
        self.timeout.setToolTip("Seconds to wait for the first word before moving on")
        self.heavy = QCheckBox("Use first for heavy or \"deep\" questions")
        self.key = QLineEdit()
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setObjectName("apiKey")
        self.key.setToolTip("Stored in the system keyring when you save; never in a file")
        self.save_button = QPushButton("Save provider")
        self.save_button.clicked.connect(self.save)
        self.test_button = QPushButton("Test connection")
        self.test_button.setToolTip("Send a tiny request to the provider in the form (saved "
                                    "or not), with the key typed here or the stored one")
        self.test_button.clicked.connect(self.test)
        self.forget_button = QPushButton("Forget key")
        self.forget_button.setToolTip("Delete this provider's key from the keyring")
        self.forget_button.clicked.connect(self.forget_key)
        self.status = QLabel()
        self.status.setObjectName("providerStatus")
        self.status.setWordWrap(True)

        form = self.layout()
        assert isinstance(form, QFormLayout)
        form.addRow(self.keyring_note)
        form.addRow(self.list)
        form.addRow(_row(self.new_button, self.remove_button))
        form.addRow("Name", self.name)
        form.addRow("Kind", self.kind)
        form.addRow("Base URL", self.base_url)
        form.addRow("Model", self.model)
        form.addRow("Extra headers", self.headers)
        form.addRow("Timeout", self.timeout)
        form.addRow(self.heavy)
        form.addRow("API key", self.key)
        form.addRow(_row(self.save_button, self.test_button, self.forget_button))
        form.addRow(self.status)
        self._buttons = (self.new_button, self.remove_button, self.save_button,
                         self.test_button, self.forget_button)
        self.new()

    # -- the list ------------------------------------------------------------------

    def load(self, settings: Settings) -> None:
        self.settings = settings
        self._read_pending = True

    def start(self) -> None:
        if self._read_pending:
            self._read_pending = False
            self.reload()

    def reload(self, select: str | None = None) -> None:
        """Read providers.toml (in a worker) and refresh the list; key sources follow."""
        paths = self.paths

        def read(_cancel: CancelToken) -> Iterator[Any]:
            yield load_providers(paths)

        def unreadable(message: str, _details: str) -> None:
            self._say(message)
            self._show_providers([], select)

        self._run(read, lambda found: self._show_providers(found, select), quiet=True,
                  failed=unreadable)

    def _show_providers(self, providers: object, select: str | None = None) -> None:
        assert isinstance(providers, list)
        self.providers = providers
        self._fill_list(select)
        self.loaded.emit([p.name for p in self.providers])
        # Asked only while the page is on screen: a dialog that is built but
        # never shown (or never shows this page) starts no work at all.
        self._inspect_pending = True
        if self.isVisible():
            self._inspect()

    def _inspect(self) -> None:
        self._inspect_pending = False
        names = [p.name for p in self.providers]

        def inspect(_cancel: CancelToken) -> Iterator[Any]:
            yield secrets.backend_status(), {n: secrets.key_source(n) for n in names}

        self._run(inspect, self._on_inspected, quiet=True)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._inspect_pending:
            self._inspect()

    def _fill_list(self, select: str | None = None) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for p in self.providers:
            key = self.key_sources.get(p.name, "…")
            self.list.addItem(f"{p.name} — {p.model} ({p.kind}) · key: {key}")
        self.list.blockSignals(False)
        names = [p.name for p in self.providers]
        if select in names:
            self.list.setCurrentRow(names.index(select))

    def _on_inspected(self, value: object) -> None:
        assert isinstance(value, tuple)
        status: secrets.BackendStatus = value[0]
        self.key_sources = dict(value[1])
        self._fill_list(self.editing)
        usable = bool(status.usable)
        self.key.setEnabled(usable)
        self.forget_button.setEnabled(usable and self.editing is not None)
        if usable:
            self.keyring_note.hide()
            self.key.setPlaceholderText("Paste the key; leave empty to keep the stored one")
            return
        example = secrets.env_var(self.providers[0].name if self.providers else "openai")
        self.keyring_note.setText(
            f"Hearth will not store keys because {status.note}; install and unlock a Secret "
            "Service (GNOME Keyring or KWallet), or set HEARTH_<NAME>_API_KEY (e.g. "
            f"{example}) in the environment before starting Hearth.")
        self.keyring_note.show()
        self.key.setPlaceholderText("No usable keyring: see above")

    def _on_selected(self, row: int) -> None:
        if not 0 <= row < len(self.providers):
            return
        p = self.providers[row]
        self.editing = p.name
        self.name.setText(p.name)
        self.name.setReadOnly(True)
        self.kind.setCurrentIndex(max(0, self.kind.findData(p.kind)))
        self.base_url.setText(p.base_url)
        self.model.setText(p.model)
        self.headers.setPlainText("\n".join(f"{k}: {v}" for k, v in p.headers.items()))
        self.timeout.setValue(p.timeout_s)
        self.heavy.setChecked(p.heavy)
        self.key.clear()
        self._enable(True)

    # -- actions -------------------------------------------------------------------

    def new(self) -> None:
        self.editing = None
        self.list.clearSelection()
        self.list.setCurrentRow(-1)
        for edit in (self.name, self.base_url, self.model, self.key):
            edit.clear()
        self.name.setReadOnly(False)
        self.kind.setCurrentIndex(0)
        self.headers.clear()
        self.timeout.setValue(30.0)
        self.heavy.setChecked(False)
        self._enable(True)

    def config(self) -> ProviderConfig:
        """The provider in the form, validated (raises ProviderConfigError)."""
        return ProviderConfig(
            self.name.text().strip(), str(self.kind.currentData()),
            self.base_url.text().strip().rstrip("/"), self.model.text().strip(),
            parse_headers(self.headers.toPlainText()), timeout_s=self.timeout.value(),
            heavy=self.heavy.isChecked(),
        ).validate()

    def save(self) -> None:
        """Save the provider in the form (in a worker); a typed key then goes
        to the keyring. A failure says why and leaves the form as it is."""
        try:
            config = self.config()
        except HearthError as exc:
            self._say(str(exc))
            return
        paths, editing = self.paths, self.editing

        def write(_cancel: CancelToken) -> Iterator[Any]:
            if editing is None:
                add_provider(paths, config)
            else:
                save_providers(paths, [config if p.name == editing else p
                                       for p in load_providers(paths)])
            yield load_providers(paths)

        self._run(write, lambda found: self._saved(config.name, found),
                  f"Saving {config.name}…")

    def _saved(self, name: str, providers: object) -> None:
        # Read once and cleared at once: the key lives only in the keyring.
        key = self.key.text()
        self.key.clear()
        self.editing = name
        self.name.setReadOnly(True)
        self._show_providers(providers, select=name)
        self.changed.emit([p.name for p in self.providers])
        if not key.strip():
            self._say(f"Saved {name}.")
            self.finished.emit(f"Saved {name}.")
            return

        def store(_cancel: CancelToken) -> Iterator[Any]:
            secrets.set_key(name, key)
            yield f"Saved {name}; its key is in the system keyring."

        # Queued: the write's worker is still ending (and counts as busy).
        QTimer.singleShot(0, self, lambda: self._run(store, self._on_done_step,
                                                     f"Saving the key for {name}…"))

    def remove(self) -> None:
        name = self.editing
        if name is None:
            self._say("Choose a provider in the list first.")
            return
        paths = self.paths

        def write(_cancel: CancelToken) -> Iterator[Any]:
            remove_provider(paths, name)
            yield load_providers(paths)

        def removed(providers: object) -> None:
            self.new()
            self._show_providers(providers)
            self.changed.emit([p.name for p in self.providers])
            said = f"Removed {name}; its key stays in the keyring until you forget it."
            self._say(said)
            self.finished.emit(said)

        self._run(write, removed, f"Removing {name}…")

    def forget_key(self) -> None:
        name = self.editing
        if name is None:
            self._say("Choose a provider in the list first.")
            return

        def forget(_cancel: CancelToken) -> Iterator[Any]:
            gone = secrets.delete_key(name)
            yield (f"Forgot the key for {name}." if gone
                   else f"There was no stored key for {name}.")

        self._run(forget, self._on_done_step, f"Forgetting the key for {name}…")

    def test(self) -> None:
        """Test what is in the form (saved or not) with a tiny request, in a
        worker: the key typed in the form, else the one stored for the name."""
        settings = self.settings
        if settings is None:
            return
        try:
            config = self.config()
        except HearthError as exc:
            self._say(str(exc))
            return
        typed = self.key.text().strip() or None
        paths = self.paths

        def probe(cancel: CancelToken) -> Iterator[Any]:
            yield probe_config(settings, paths, config, typed, cancel)

        self._run(probe, self._on_tested, f"Testing {config.name} at {config.base_url}…")

    def _on_tested(self, value: object) -> None:
        assert isinstance(value, ProbeResult)
        self.last_result = value
        self._say(value.message)
        self.finished.emit(value.message)

    def _on_done_step(self, value: object) -> None:
        self.reload(select=self.editing)
        self._say(str(value))
        self.finished.emit(str(value))

    # -- workers -------------------------------------------------------------------

    def _run(self, work: Callable[[CancelToken], Iterator[Any]],
             on_item: Callable[[object], None], busy_text: str = "",
             quiet: bool = False, failed: Callable[[str, str], None] | None = None) -> None:
        worker = GeneratorWorker(work, self)
        worker.item.connect(on_item)
        worker.failed.connect(failed or self._on_failed)
        if not quiet:
            self._say(busy_text)
            self._enable(False)
            worker.done.connect(lambda: self._enable(True))
            self._worker = worker
        self._workers.start(worker)

    def _on_failed(self, message: str, _details: str) -> None:
        # Only the sentence: the details of a keyring failure are not shown
        # (the core never puts a key in them, and this keeps it that way here).
        self._say(message)
        self.finished.emit(message)

    @property
    def busy(self) -> bool:
        return self._worker is not None and self._worker.running

    def _enable(self, on: bool) -> None:
        for button in self._buttons:
            button.setEnabled(on)
        if on:
            chosen = self.editing is not None
            self.remove_button.setEnabled(chosen)
            self.forget_button.setEnabled(chosen and self.key.isEnabled())

    def _say(self, text: str) -> None:
        self.status.setText(text)

    def shutdown(self) -> None:
        self._workers.stop_all()


def _row(*widgets: QWidget) -> QWidget:
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        row.addWidget(widget)
    row.addStretch(1)
    return box
