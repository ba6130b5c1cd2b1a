"""The Settings dialog: one page per area, each field built from its
declaration in `app.settings`, validated there, and written to settings.toml.
Checking the values (a model file is opened to check it) and writing them
run in a worker (`run_op`); the dialog closes once the write succeeded, and
a refused value or a failed write is said in one sentence with the form
left as the user had it.

Pages are `SettingsPage`s; another area is one more page passed to
`SettingsDialog.add_page`. The Providers page (`app.ui.providers_page`) saves
at once, since keys go straight to the keyring."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import HearthError
from app.core.llm.registry import load_providers
from app.core.llm.router import POLICIES
from app.core.models.files import check_model_file
from app.paths import Paths, get_paths
from app.settings import Settings, SettingsError, Value, lookup
from app.ui import autostart
from app.ui.global_shortcut import unavailable_reason
from app.ui.workers import WorkerSet, run_op

SPECIAL_TEXT = {
    "model.context_size": "The model's trained length",
    "model.threads": "Automatic (one per core)",
    "model.gpu_layers": "As many as fit in free VRAM",
    "routing.heavy_prompt_tokens": "Never",
}
POLICY_LABELS = {"auto": "Auto (local first, then remote)", "local-only": "Local only",
                 "remote-first": "Remote first"}
LABELS = {
    "model.path": "Model file",
    "model.context_size": "Context size (tokens)",
    "model.threads": "CPU threads",
    "model.gpu_layers": "GPU layers",
    "generation.max_tokens": "Longest answer (tokens)",
    "generation.temperature": "Temperature",
    "generation.repeat_penalty": "Repetition penalty (local model)",
    "generation.system_prompt": "Instructions",
    "network.offline": "Offline mode: send nothing over the network",
    "cache.enabled": "Give close questions the earlier answer at once",
    "cache.min_similarity": "How close a question must be (cosine)",
    "ui.theme": "Colours",
    "ui.close_to_tray": "Closing the window keeps Hearth in the system tray",
    "ui.quick_ask_shortcut": "Quick-ask shortcut",
    "ui.start_minimised": "Start minimised to the system tray",
    "ui.start_at_login": "Start Hearth when I log in",
    "routing.policy": "Who answers",
    "routing.ttft_timeout_s": "Wait for the local model's first word (s)",
    "routing.stall_timeout_s": "Local model may pause mid-answer for (s)",
    "routing.remote_fallback": "Allow remote providers (fall back when the local model fails)",
    "routing.heavy_prompt_tokens": "Send prompts longer than (tokens) to the remote first",
    "privacy.redact_secrets": "Redact keys, tokens and passwords from what is sent to a "
                              "remote provider",
}


class ModelPathField(QWidget):
    """A GGUF file chosen with a file dialog (empty = the bundled model)."""

    def __init__(self) -> None:
        super().__init__()
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Bundled model (SmolLM2-135M-Instruct)")
        self.browse = QPushButton("Choose…")
        self.browse.setToolTip("Choose a GGUF model file")
        self.browse.clicked.connect(self._choose)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse)

    def _choose(self) -> None:
        start = str(Path(self.edit.text()).expanduser().parent) if self.edit.text() else ""
        path, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF model", start,
                                              "GGUF models (*.gguf);;All files (*)")
        if path:
            self.edit.setText(path)


def _field(key: str) -> QWidget:
    s = lookup(key)
    tip = f"{s.description} Allowed: {s.allowed()}."
    widget: QWidget
    if key == "model.path":
        widget = ModelPathField()
    elif key == "routing.policy":
        policy = QComboBox()
        for choice in POLICIES:
            policy.addItem(POLICY_LABELS[choice], choice)
        widget = policy
    elif key == "generation.system_prompt":
        edit = QPlainTextEdit()
        edit.setMaximumHeight(110)
        widget = edit
    elif s.choices:
        combo = QComboBox()
        for choice in s.choices:
            combo.addItem(choice.capitalize(), choice)
        widget = combo
    elif s.type is bool:
        widget = QCheckBox(LABELS.get(key, key))
    elif s.type is int:
        spin = QSpinBox()
        spin.setRange(int(s.minimum or 0), int(s.maximum or 2**31 - 1))
        if key in SPECIAL_TEXT:
            spin.setSpecialValueText(SPECIAL_TEXT[key])
        widget = spin
    elif s.type is float:
        dspin = QDoubleSpinBox()
        dspin.setRange(float(s.minimum or 0.0), float(s.maximum or 1e9))
        dspin.setSingleStep(0.05)
        dspin.setDecimals(2)
        widget = dspin
    else:
        widget = QLineEdit()
    widget.setToolTip(tip)
    widget.setObjectName(key)
    return widget


def _get(widget: QWidget) -> Any:
    if isinstance(widget, ModelPathField):
        return widget.edit.text().strip()
    if isinstance(widget, QPlainTextEdit):
        return widget.toPlainText()
    if isinstance(widget, QComboBox):
        return widget.currentData()
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, QSpinBox | QDoubleSpinBox):
        return widget.value()
    if isinstance(widget, QLineEdit):
        return widget.text()
    raise TypeError(type(widget))


def _put(widget: QWidget, value: Any) -> None:
    if isinstance(widget, ModelPathField):
        widget.edit.setText(str(value))
    elif isinstance(widget, QPlainTextEdit):
        widget.setPlainText(str(value))
    elif isinstance(widget, QComboBox):
        widget.setCurrentIndex(max(0, widget.findData(value)))
    elif isinstance(widget, QCheckBox):
        widget.setChecked(bool(value))
    elif isinstance(widget, QSpinBox):
        widget.setValue(int(value))
    elif isinstance(widget, QDoubleSpinBox):
        widget.setValue(float(value))
    elif isinstance(widget, QLineEdit):
        widget.setText(str(value))


class SettingsPage(QWidget):
    """A page of settings fields; `check` adds rules beyond the declarations."""

    def __init__(self, title: str, keys: Sequence[str], intro: str = "") -> None:
        super().__init__()
        self.title = title
        self.fields: dict[str, QWidget] = {}
        form = QFormLayout(self)
        form.setContentsMargins(16, 16, 16, 16)
        form.setSpacing(10)
        if intro:
            label = QLabel(intro)
            label.setWordWrap(True)
            form.addRow(label)
        for key in keys:
            widget = _field(key)
            self.fields[key] = widget
            if isinstance(widget, QCheckBox):
                form.addRow(widget)
            else:
                form.addRow(LABELS.get(key, key), widget)

    def load(self, settings: Settings) -> None:
        for key, widget in self.fields.items():
            _put(widget, settings.get(key))

    def raw(self) -> dict[str, Any]:
        """What the fields hold, unchecked (read on the GUI thread)."""
        return {key: _get(widget) for key, widget in self.fields.items()}

    def validate(self, raw: dict[str, Any]) -> dict[str, Value]:
        """Validated values; raises SettingsError naming the first bad one.
        Touches no widget, so it may run in a worker."""
        out: dict[str, Value] = {}
        for key, value in raw.items():
            out[key] = lookup(key).validate(value)
        self.check(out)
        return out

    def check(self, values: dict[str, Value]) -> None:
        """Extra checks for this page (raise SettingsError); may run in a worker."""

    def providers_updated(self, names: list[str]) -> None:
        """The configured remote providers changed (names in order)."""

    def start(self) -> None:
        """The dialog is on screen: start reading what this page shows."""

    def shutdown(self) -> None:
        """The dialog is closing: stop this page's background work."""


class ModelPage(SettingsPage):
    def __init__(self) -> None:
        super().__init__("Model", ["model.path", "model.context_size", "model.threads",
                                   "model.gpu_layers"],
                         "The local model runs on this computer. A larger GGUF file gives "
                         "better answers; it must fit in memory.")

    def check(self, values: dict[str, Value]) -> None:
        path = str(values["model.path"])
        if path:
            try:
                check_model_file(Path(path).expanduser())
            except HearthError as exc:
                raise SettingsError(str(exc)) from exc


class RoutingPage(SettingsPage):
    """Who answers and when Hearth gives up on the local model; the policy
    offers each configured provider by name."""

    def __init__(self, providers: list[str], paths: Paths | None = None) -> None:
        super().__init__("Routing", ["routing.policy", "routing.ttft_timeout_s",
                                     "routing.stall_timeout_s", "routing.remote_fallback",
                                     "routing.heavy_prompt_tokens"],
                         "Hearth answers with the model on this computer and falls back to "
                         "the remote providers, in order, when it is too slow, stalls or "
                         "cannot take the question.")
        self.policy = self.fields["routing.policy"]
        assert isinstance(self.policy, QComboBox)
        self.paths = paths
        self.providers: list[str] = []
        self.providers_updated(providers)

    def providers_updated(self, names: list[str]) -> None:
        combo = self.policy
        assert isinstance(combo, QComboBox)
        current = combo.currentData()
        self.providers = list(names)
        while combo.count() > len(POLICIES):
            combo.removeItem(combo.count() - 1)
        for name in names:
            combo.addItem(f"Only {name}", name)
        if current is not None:
            self._select(str(current))

    def _select(self, value: str) -> None:
        combo = self.policy
        assert isinstance(combo, QComboBox)
        index = combo.findData(value)
        if index < 0:
            # Kept visible (and refused on OK) rather than silently replaced.
            combo.addItem(f"{value} (not configured)", value)
            index = combo.count() - 1
        combo.setCurrentIndex(index)

    def load(self, settings: Settings) -> None:
        super().load(settings)
        self._select(settings.snapshot().routing.policy)

    def check(self, values: dict[str, Value]) -> None:
        policy = str(values["routing.policy"])
        providers = self.providers
        if self.paths is not None:  # in the save's worker: the file is the truth
            with contextlib.suppress(HearthError):
                providers = [p.name for p in load_providers(self.paths)]
        if policy not in POLICIES and policy not in providers:
            raise SettingsError(
                f"The routing policy names the provider {policy!r}, which is not set up; "
                "choose another or add it on the Providers page.")


class CachePage(SettingsPage):
    """The answer cache: on or off, how close a question must be, and Clear."""

    def __init__(self, paths: Paths) -> None:
        super().__init__("Cache", ["cache.enabled", "cache.min_similarity"],
                         "A question close enough to an earlier one, over the same files, "
                         "model, prompt and route, gets the earlier answer at once, marked "
                         "\"From earlier answer · Ask again\". An answer is never reused once "
                         "a file it was built from has changed.")
        self.paths = paths
        self._workers = WorkerSet()
        self.clear_button = QPushButton("Clear cache")
        self.clear_button.setToolTip("Forget every cached answer; conversations keep them")
        self.clear_button.clicked.connect(self.clear)
        self.result = QLabel()
        self.result.setWordWrap(True)
        self.result.setObjectName("placeholder")
        form = self.layout()
        assert isinstance(form, QFormLayout)
        form.addRow(self.clear_button)
        form.addRow(self.result)

    def clear(self) -> None:
        """Forget every cached answer (in a worker: it is an SQLite DELETE)."""
        paths = self.paths
        self.clear_button.setEnabled(False)

        def done(said: str) -> None:
            self.clear_button.setEnabled(True)
            self.result.setText(said)

        run_op(self._workers, lambda: _clear_cache(paths), done,
               lambda message, _details: done(message), self)

    def shutdown(self) -> None:
        self._workers.stop_all()


def _clear_cache(paths: Paths) -> str:
    from app.core.answer_cache import EMPTY_CLEAR, clear_store
    from app.core.conversations import ConversationStore

    if not paths.conversations_db.exists():
        return EMPTY_CLEAR
    try:
        store = ConversationStore(paths.conversations_db)
        try:
            n = clear_store(store)
        finally:
            store.close()
    except (HearthError, OSError) as exc:
        return f"The cache could not be cleared: {exc}"
    return f"Cleared {n} cached answer{'s' if n != 1 else ''}." if n else EMPTY_CLEAR


class DesktopPage(SettingsPage):
    def __init__(self) -> None:
        super().__init__("Desktop", ["ui.theme", "ui.close_to_tray", "ui.start_minimised",
                                     "ui.start_at_login", "ui.quick_ask_shortcut"],
                         "On Wayland, bind `hearth --quick-ask` to a shortcut in your desktop's "
                         "keyboard settings instead.")
        self.login_note = QLabel()
        self.login_note.setWordWrap(True)
        self.login_note.setObjectName("placeholder")
        login = self.fields["ui.start_at_login"]
        if autostart.supported():
            self.login_note.setText(f"Adds {autostart.entry_path()} (an XDG autostart entry).")
        else:
            self.login_note.setText(autostart.UNSUPPORTED)
            login.setEnabled(False)
        form = self.layout()
        assert isinstance(form, QFormLayout)
        # PySide6's stubs type getWidgetPosition as returning `object`.
        position: Any = form.getWidgetPosition(login)
        form.insertRow(int(position[0]) + 1, self.login_note)
        # Whether the shortcut really works here: a setting that looks active
        # while nothing listens for the keys is worse than none.
        self.shortcut_note = QLabel()
        self.shortcut_note.setWordWrap(True)
        self.shortcut_note.setObjectName("shortcutNote")
        reason = unavailable_reason()
        if reason is not None:
            self.show_shortcut_state(False, reason)
        position = form.getWidgetPosition(self.fields["ui.quick_ask_shortcut"])
        form.insertRow(int(position[0]) + 1, self.shortcut_note)

    def show_shortcut_state(self, active: bool, why: str = "") -> None:
        """Say whether the global shortcut is listening, and if not, why."""
        self.shortcut_note.setText(
            "Active: the shortcut opens Quick Ask from any application." if active
            else f"Inactive: {why}")
        self.shortcut_note.setVisible(True)


def default_pages(paths: Paths | None = None) -> list[SettingsPage]:
    from app.ui.providers_page import ProvidersPage

    paths = paths or get_paths()
    # The Routing page learns the providers when the Providers page has read them.
    return [
        ModelPage(),
        SettingsPage("Answers", ["generation.max_tokens", "generation.temperature",
                                 "generation.repeat_penalty", "generation.system_prompt"]),
        ProvidersPage(paths),
        RoutingPage([], paths),
        SettingsPage("Privacy", ["network.offline", "privacy.redact_secrets"],
                     "In offline mode Hearth refuses every network connection. Before "
                     "anything goes to a remote provider, secrets are redacted and text "
                     "from local-only folders is removed."),
        CachePage(paths),
        DesktopPage(),
    ]


class SettingsDialog(QDialog):
    """Edits the settings; OK writes the changed ones and emits `applied`."""

    applied = Signal(object)  # set of changed keys
    providers_changed = Signal(list)  # provider names, in order
    saved = Signal(bool)  # after save(): True if everything was written

    def __init__(self, settings: Settings, parent: QWidget | None = None,
                 pages: Sequence[SettingsPage] | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle("Hearth settings")
        self.resize(560, 440)
        self.tabs = QTabWidget()
        self.pages: list[SettingsPage] = []
        self._workers = WorkerSet()
        self._saving = False
        self.error = QLabel()
        self.error.setObjectName("errorText")
        self.error.setWordWrap(True)
        self.error.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        for page in pages if pages is not None else default_pages():
            self.add_page(page)

    def add_page(self, page: SettingsPage) -> None:
        page.load(self.settings)
        self.pages.append(page)
        self.tabs.addTab(page, page.title)
        changed = getattr(page, "changed", None)
        if changed is not None:
            changed.connect(self._on_providers_changed)
        loaded = getattr(page, "loaded", None)
        if loaded is not None:
            loaded.connect(self._on_providers_loaded)

    def page(self, title: str) -> SettingsPage:
        for page in self.pages:
            if page.title == title:
                return page
        raise KeyError(title)

    def _on_providers_loaded(self, names: list[str]) -> None:
        for page in self.pages:
            page.providers_updated(names)

    def _on_providers_changed(self, names: list[str]) -> None:
        self._on_providers_loaded(names)
        self.providers_changed.emit(names)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        for page in self.pages:
            page.start()

    def done(self, result: int) -> None:
        for page in self.pages:
            page.shutdown()
        self._workers.stop_all()
        super().done(result)

    def field(self, key: str) -> QWidget:
        for page in self.pages:
            if key in page.fields:
                return page.fields[key]
        raise KeyError(key)

    def save(self) -> None:
        """Check every page, then write what changed, in a worker; `saved`
        follows. On a refusal or a failed write the dialog stays open and
        says why (what was written before it stays written)."""
        if self._saving:
            return
        self._saving = True
        self.buttons.setEnabled(False)
        pages = [(page, page.raw()) for page in self.pages]
        settings = self.settings
        run_op(self._workers, lambda: _write(settings, pages), self._saved,
               lambda message, _details: self._saved(_Result(set(), message)), self)

    def _saved(self, result: _Result) -> None:
        self._saving = False
        self.buttons.setEnabled(True)
        if result.error is not None:
            if result.page is not None:
                self.tabs.setCurrentWidget(result.page)
            self.error.setText(result.error)
            self.error.show()
            if result.changed:
                self.applied.emit(result.changed)
            self.saved.emit(False)
            return
        self.error.hide()
        self.applied.emit(result.changed)
        self.accept()
        self.saved.emit(True)


@dataclass(frozen=True)
class _Result:
    changed: set[str]
    error: str | None = None
    page: SettingsPage | None = None  # the page with the refused value


def _write(settings: Settings, pages: list[tuple[SettingsPage, dict[str, Any]]]) -> _Result:
    """Check and write (in a worker): settings.toml is written once per changed key."""
    values: dict[str, Value] = {}
    for page, raw in pages:
        try:
            values.update(page.validate(raw))
        except SettingsError as exc:
            return _Result(set(), str(exc), page)
    changed: set[str] = set()
    for key, value in values.items():
        if settings.get(key) != value:
            try:
                settings.set(key, value)
            except SettingsError as exc:
                return _Result(changed, str(exc))
            changed.add(key)
    return _Result(changed)
