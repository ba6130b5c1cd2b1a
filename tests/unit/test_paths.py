from __future__ import annotations

from pathlib import Path

import pytest

from app.paths import DataDirError, get_paths


def test_hearth_home_holds_everything(hearth_home: Path) -> None:
    p = get_paths()
    for d in (p.config_dir, p.data_dir, p.cache_dir, p.log_dir):
        assert hearth_home in d.parents
    p.ensure()
    assert all(d.is_dir() for d in (p.config_dir, p.data_dir, p.cache_dir, p.log_dir))


def test_platform_dirs_without_hearth_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTH_HOME")
    p = get_paths()
    assert "hearth" in str(p.data_dir).lower()


def test_unusable_folder_is_one_clear_sentence(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("HEARTH_HOME", str(blocker / "home"))
    with pytest.raises(DataDirError, match=r"^Hearth cannot create its folder .*\.$"):
        get_paths().ensure()


def test_no_folder_is_inside_the_install(tmp_path: Path, monkeypatch) -> None:
    """A read-only install works: whether run from source, a wheel or the
    bundle (frozen, its executable anywhere), Hearth's folders are the user's."""
    import sys

    import app

    package = Path(app.__file__).resolve().parent
    bundle = tmp_path / "bundle" / "hearth"
    for frozen in (False, True):
        if frozen:
            monkeypatch.setattr(sys, "frozen", True, raising=False)
            monkeypatch.setattr(sys, "executable", str(bundle))
        install = Path(sys.executable).resolve().parent
        for home in (str(tmp_path / "home"), None):
            if home is None:
                monkeypatch.delenv("HEARTH_HOME", raising=False)
            else:
                monkeypatch.setenv("HEARTH_HOME", home)
            p = get_paths()
            for d in (p.config_dir, p.data_dir, p.cache_dir, p.log_dir):
                assert d.is_absolute()
                for inside in (package, install, Path(sys.prefix).resolve()):
                    assert not d.resolve().is_relative_to(inside), (d, inside)
