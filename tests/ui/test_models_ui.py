"""The model picker, the Models dialog and the first-run hint, with a real
download from a loopback mirror and real model switches. Renders PNGs for
the README when HEARTH_SCREENSHOTS is set."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from app.core.assistant import Assistant
from app.core.models.download import Progress
from app.paths import Paths
from app.settings import Settings
from app.ui.main_window import MainWindow
from app.ui.models_dialog import ModelsDialog, ModelService
from tests.model_server import ModelServer, write_catalog_copy

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _shot(widget: object, name: str) -> None:
    if os.environ.get("HEARTH_SCREENSHOTS"):
        widget.grab().save(str(DOCS / name))  # type: ignore[attr-defined]


@pytest.fixture
def served(paths: Paths, model_path: Path) -> Iterator[ModelServer]:
    server = ModelServer(model_path, mode="slow", slow_delay=0.004)
    write_catalog_copy(paths.config_dir, model_path, server.url,
                       "SmolLM2 135M (a second copy)", "Trying downloads")
    yield server
    server.close()


@pytest.fixture
def service(qtbot: QtBot, settings: Settings, paths: Paths) -> Iterator[ModelService]:
    svc = ModelService(settings, paths)
    with qtbot.wait_signal(svc.rows_changed, timeout=30_000):
        svc.refresh()
    yield svc
    svc.shutdown()


def _wait_state(qtbot: QtBot, service: ModelService, model_id: str, state: str) -> Progress:
    seen: list[Progress] = []

    def check(p: Progress) -> bool:
        seen.append(p)
        return p.model_id == model_id and p.state == state

    with qtbot.wait_signal(service.progress, timeout=60_000, check_params_cb=check):
        pass
    return seen[-1]


def test_dialog_lists_installed_and_catalog_models_with_fit_badges(
        qtbot: QtBot, service: ModelService, served: ModelServer) -> None:
    dialog = ModelsDialog(service)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.wait_until(lambda: dialog.tree.topLevelItemCount() == 2)
    installed, catalog = dialog.tree.topLevelItem(0), dialog.tree.topLevelItem(1)
    assert installed is not None and catalog is not None
    assert installed.child(0).text(0).startswith("SmolLM2 135M Instruct (bundled demo)")
    assert installed.child(0).text(3) == "In use"
    names = [catalog.child(i).text(0) for i in range(catalog.childCount())]
    assert "Qwen3 4B" in names and "Llama 3.1 8B Instruct" in names
    qwen = dialog.item_for("qwen3-4b")
    assert qwen is not None and qwen.text(2) in ("Fits", "Tight", "Won't fit")
    assert "GB weights" in qwen.toolTip(2)
    dialog.select("qwen3-4b")
    assert dialog.download_button.isEnabled() and not dialog.use_button.isEnabled()
    assert "Memory:" in dialog.detail.text() and "sha256" in dialog.detail.text()
    dialog.select("mistral-7b")
    assert "cannot be verified" in dialog.detail.text()


def test_download_with_progress_pause_resume_and_use(
        qtbot: QtBot, service: ModelService, served: ModelServer, paths: Paths,
        model_path: Path) -> None:
    dialog = ModelsDialog(service)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.wait_until(lambda: dialog.item_for("smol-copy") is not None)
    dialog.select("smol-copy")
    dialog.download_button.click()
    qtbot.wait_until(lambda: dialog.pause_button.isEnabled(), timeout=30_000)
    qtbot.wait_until(lambda: dialog.bar.value() > 50, timeout=30_000)
    assert dialog.bar.isVisible() and "MB/s" in dialog.bar_text.text()
    _shot(dialog, "models.png")
    dialog.pause_button.click()
    _wait_state(qtbot, service, "smol-copy", "paused")
    part = paths.data_dir / "models" / "smol-copy.gguf.part"
    assert part.exists()
    with qtbot.wait_signal(service.rows_changed, timeout=30_000):
        service.refresh()
    item = dialog.item_for("smol-copy")
    assert item is not None and item.text(3).startswith("Paused at")
    assert dialog.download_button.text() == "Resume"
    kept = part.stat().st_size
    served.slow_delay = 0.0005
    dialog.download_button.click()
    _wait_state(qtbot, service, "smol-copy", "done")
    assert served.requests[-1]["range"] == f"bytes={kept}-"  # resumed, not restarted
    qtbot.wait_until(lambda: (i := dialog.item_for("smol-copy")) is not None
                     and i.parent() is dialog.tree.topLevelItem(0), timeout=30_000)
    assert (paths.data_dir / "models" / "smol-copy.gguf").read_bytes() == model_path.read_bytes()
    dialog.select("smol-copy")
    with qtbot.wait_signal(dialog.use_requested, timeout=5_000) as used:
        dialog.use_button.click()
    assert used.args == ["smol-copy", False]


def test_cancel_deletes_the_partial_download(
        qtbot: QtBot, service: ModelService, served: ModelServer, paths: Paths) -> None:
    dialog = ModelsDialog(service)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.wait_until(lambda: dialog.item_for("smol-copy") is not None)
    dialog.select("smol-copy")
    dialog.download_button.click()
    qtbot.wait_until(lambda: dialog.bar.value() > 20, timeout=30_000)
    dialog.cancel_button.click()
    _wait_state(qtbot, service, "smol-copy", "cancelled")
    assert not (paths.data_dir / "models" / "smol-copy.gguf.part").exists()


def test_a_failed_download_says_why(qtbot: QtBot, service: ModelService,
                                    served: ModelServer, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr("app.ui.models_dialog.show_error",
                        lambda _parent, message, details="": shown.append(message))
    served.mode = "404"
    dialog = ModelsDialog(service)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.wait_until(lambda: dialog.item_for("smol-copy") is not None)
    dialog.select("smol-copy")
    dialog.download_button.click()
    _wait_state(qtbot, service, "smol-copy", "failed")
    assert shown and "answered 404" in shown[0]


@pytest.fixture
def window(qtbot: QtBot, settings: Settings, paths: Paths) -> Iterator[MainWindow]:
    w = MainWindow(Assistant(settings, paths))
    qtbot.addWidget(w)
    w.show()
    yield w
    w.shutdown()


def test_first_run_hint_in_the_empty_chat(qtbot: QtBot, window: MainWindow,
                                          service: ModelService) -> None:
    from app.core.models.library import best_fitting

    suggestion = best_fitting(service.rows)
    assert suggestion is not None
    window.set_first_run_hint(True, suggestion)
    hint = window.chat.hint
    assert "small demo model" in hint and suggestion.name in hint
    assert "Add a folder" in hint
    with qtbot.wait_signal(window.download_requested) as asked:
        window.chat.hint_link_activated.emit(f"hearth:download:{suggestion.id}")
    assert asked.args == [suggestion.id]
    with qtbot.wait_signal(window.folders_requested):
        window.chat.hint_link_activated.emit("hearth:folders")
    with qtbot.wait_signal(window.models_requested):
        window.chat.hint_link_activated.emit("hearth:models")
    window.set_first_run_hint(False, None)
    assert "small demo" not in window.chat.hint


def test_picker_in_the_status_bar_switches_models_in_the_background(
        qtbot: QtBot, window: MainWindow, service: ModelService, paths: Paths,
        settings: Settings, model_path: Path, tmp_path: Path) -> None:
    from app.core.models.catalog import load_catalog
    from app.core.models.library import import_model

    source = tmp_path / "Second.gguf"
    shutil.copyfile(model_path, source)
    import_model(paths, load_catalog(paths), source)
    with qtbot.wait_signal(service.rows_changed, timeout=30_000):
        service.refresh()
    window.set_model_rows(service.rows)
    with qtbot.wait_signal(window.model_state_changed, timeout=120_000,
                           check_params_cb=lambda s: s == "ready"):
        window.preload_model()
    actions = [a for a in window.model_menu.actions() if a.data()]
    assert [a.data() for a in actions] == ["smollm2-135m", "second"]
    assert actions[0].isChecked()
    with qtbot.wait_signal(window.model_switched, timeout=120_000) as switched:
        actions[1].trigger()
        assert window.model_state == "loading"
        assert "loading" in window.model_status.text()
    assert switched.args[0] is not None
    assert window.model_state == "ready"
    assert settings.snapshot().model.path == str(paths.data_dir / "models" / "Second.gguf")


def test_switching_to_a_model_that_fails_keeps_the_old_one(
        qtbot: QtBot, window: MainWindow, settings: Settings, tmp_path: Path,
        model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr("app.ui.main_window.show_error",
                        lambda _parent, message, details="": shown.append(message))
    with qtbot.wait_signal(window.model_state_changed, timeout=120_000,
                           check_params_cb=lambda s: s == "ready"):
        window.preload_model()
    before = window.model_status.text()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(model_path.read_bytes()[:5_000_000])
    with qtbot.wait_signal(window.model_switched, timeout=120_000) as switched:
        window.switch_model("Broken", str(broken))
    assert switched.args == [None]
    assert shown and shown[0].startswith("Broken could not be loaded, so Hearth keeps")
    assert settings.snapshot().model.path == ""
    qtbot.wait_until(lambda: window.model_state == "ready", timeout=120_000)
    assert window.model_status.text() == before
    window.input.setPlainText("Hello")
    with qtbot.wait_signal(window.answer_finished, timeout=120_000):
        window.send()


def test_a_model_that_will_not_fit_asks_before_loading(
        qtbot: QtBot, window: MainWindow, service: ModelService,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    row = next(r for r in service.rows if r.id == "smollm2-135m")
    wont = replace(row, current=False, fit=replace(row.fit, ram_free=1))
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: (
        asked.append(a[2]), QMessageBox.StandardButton.No)[1])
    started: list[str] = []
    monkeypatch.setattr(window, "switch_model", lambda *a: started.append(a[0]))
    window.choose_model(wont)
    assert asked and "will not fit" in asked[0] and started == []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.choose_model(wont)
    assert started == [row.name]


def test_hearth_resumes_an_interrupted_download_at_start_and_shows_the_hint(
        qtbot: QtBot, hearth: object, served: ModelServer, paths: Paths,
        model_path: Path) -> None:
    from typing import Any

    app: Any = hearth
    folder = paths.data_dir / "models"
    folder.mkdir(parents=True)
    (folder / "smol-copy.gguf.part").write_bytes(model_path.read_bytes()[:3_000_000])
    served.slow_delay = 0.0005
    with qtbot.wait_signal(app.models.progress, timeout=60_000,
                           check_params_cb=lambda p: p.state == "done"):
        app.start()
    assert served.requests[0]["range"] == "bytes=3000000-"
    assert (folder / "smol-copy.gguf").read_bytes() == model_path.read_bytes()
    qtbot.wait_until(lambda: "small demo model" in app.window.chat.hint, timeout=30_000)
    qtbot.wait_until(lambda: app.window.model_state == "ready", timeout=120_000)
    _shot(app.window, "first-run.png")


def test_closing_to_the_tray_pauses_downloads_unless_asked_to_keep_them(
        qtbot: QtBot, hearth: object, served: ModelServer, paths: Paths) -> None:
    from typing import Any

    app: Any = hearth
    app.start()
    app.tray.available = True  # offscreen has no tray; pretend there is one
    qtbot.wait_until(lambda: app.models.row("smol-copy") is not None, timeout=30_000)
    app.models.download("smol-copy")
    qtbot.wait_until(lambda: (p := app.models.downloads.progress("smol-copy")) is not None
                     and p.done > 500_000, timeout=30_000)
    with qtbot.wait_signal(app.models.progress, timeout=30_000,
                           check_params_cb=lambda p: p.state == "paused"):
        app.window.close()
    assert ("Downloads paused", app.tray.notices[0][1]) == app.tray.notices[0]
    assert (paths.data_dir / "models" / "smol-copy.gguf.part").exists()
    # with "keep downloading in the tray" it goes on while the window is closed
    app.settings.set("models.keep_downloading_in_tray", True)
    app.tray.show_action.trigger()  # showing the window again resumes it
    qtbot.wait_until(lambda: app.models.downloads.running() == ["smol-copy"], timeout=30_000)
    app.window.close()
    assert app.models.downloads.running() == ["smol-copy"]
