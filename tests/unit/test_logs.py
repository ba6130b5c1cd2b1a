"""Log files: rotated at the size the settings give, at the level they give;
above debug a long text (a passage, a prompt) is cut to its start, and
`hearth doctor` names the files."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from app import cli
from app.logs import log_files, log_to_file
from app.paths import Paths
from app.settings import Settings

PASSAGE = "The quarterly plan for the lighthouse keepers reads: " + "storm log " * 80


@pytest.fixture
def root_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    monkeypatch.delenv("HEARTH_LOG_LEVEL", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for h in root.handlers:
        if h not in handlers:
            h.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_levels_rotation_and_long_texts_follow_the_settings(
        paths: Paths, settings: Settings, root_logging: logging.Logger) -> None:
    settings.set("logging.level", "warning")
    settings.set("logging.max_mb", 1)
    settings.set("logging.backups", 2)
    log_to_file(paths, "hearth.log", settings)
    log = logging.getLogger("hearth.test")
    log.info("an info line")
    log.warning("read %s", PASSAGE)
    for h in root_logging.handlers:
        h.flush()
    text = (paths.log_dir / "hearth.log").read_text()
    assert "an info line" not in text
    assert PASSAGE not in text and PASSAGE[:80] in text
    assert f"({len(PASSAGE):,} characters, shown in full at debug)" in text
    handler = root_logging.handlers[-1]
    assert isinstance(handler, logging.handlers.RotatingFileHandler)
    assert (handler.maxBytes, handler.backupCount) == (1_000_000, 2)
    for _ in range(4000):  # about 1.3 MB: one rotation
        log.warning("x" * 250)
    assert [p.name for p in log_files(paths)] == ["hearth.log", "hearth.log.1"]


def test_debug_keeps_long_texts_whole(paths: Paths, settings: Settings,
                                      root_logging: logging.Logger) -> None:
    settings.set("logging.level", "debug")
    log_to_file(paths, "index.log", settings)
    logging.getLogger("hearth.test").debug("read %s", PASSAGE)
    for h in root_logging.handlers:
        h.flush()
    assert PASSAGE in (paths.log_dir / "index.log").read_text()


def test_doctor_names_the_log_files(paths: Paths, root_logging: logging.Logger,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["doctor", "--no-load", "--json"]) in (0, 1)
    logs = json.loads(capsys.readouterr().out)["logs"]
    assert logs["dir"] == str(paths.log_dir) and logs["level"] == "info"
    assert logs["names"] == ["hearth.log", "index.log"]
    # cli.main opened hearth.log itself before the report was made.
    assert [f["path"] for f in logs["files"]] == [str(paths.log_dir / "hearth.log")]
    assert cli.main(["doctor", "--no-load"]) in (0, 1)
    out = capsys.readouterr().out
    assert f"Logs          hearth.log, index.log in {paths.log_dir} (level info" in out
