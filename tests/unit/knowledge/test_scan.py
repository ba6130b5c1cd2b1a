"""Which files are indexed: defaults, .gitignore, include/exclude, symlink loops."""

from __future__ import annotations

import os
from pathlib import Path

from app.core.knowledge.scan import Entry, FolderRules, Problem
from app.core.knowledge.store import Folder


def _folder(root: Path, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> Folder:
    return Folder(1, str(root), include, exclude, False, False, "ok", None, 0.0, None)


def _tree(root: Path, files: list[str]) -> None:
    for f in files:
        p = root / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("text " + f)


def _walk(rules: FolderRules) -> tuple[set[str], list[Problem]]:
    found, problems = set(), []
    for e in rules.walk():
        if isinstance(e, Entry):
            found.add(os.path.relpath(e.path, rules.root))
        else:
            problems.append(e)
    return found, problems


def test_defaults_skip_hidden_vcs_deps_venvs_build_and_binaries(tmp_path: Path) -> None:
    _tree(tmp_path, [
        "notes.md", "src/app.py", ".hidden/secret.md", ".git/config", "node_modules/x/i.js",
        "build/out.txt", "dist/pkg.txt", "__pycache__/m.txt", "myenv/lib/site.py",
        "photo.png", ".dotfile.md", "docs/guide.rst",
    ])
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("home = /usr")
    found, problems = _walk(FolderRules(_folder(tmp_path)))
    assert found == {"notes.md", "src/app.py", "docs/guide.rst"}
    assert not problems


def test_gitignore_files_are_honoured_at_every_level(tmp_path: Path) -> None:
    _tree(tmp_path, ["keep.md", "drafts/a.md", "logs/x.log", "sub/keep.md", "sub/tmp/t.md",
                     "sub/private.md"])
    (tmp_path / ".gitignore").write_text("drafts/\n*.log\n")
    (tmp_path / "sub" / ".gitignore").write_text("tmp/\nprivate.md\n")
    rules = FolderRules(_folder(tmp_path))
    found, _ = _walk(rules)
    assert found == {"keep.md", "sub/keep.md"}
    assert rules.wanted(str(tmp_path / "sub" / "private.md")) is None
    assert rules.wanted(str(tmp_path / "drafts" / "new.md")) is None
    assert rules.wanted(str(tmp_path / "sub" / "new.md")) == "markdown"


def test_include_and_exclude_globs(tmp_path: Path) -> None:
    _tree(tmp_path, ["a.md", "b.txt", "deep/c.md", "deep/skip/d.md"])
    rules = FolderRules(_folder(tmp_path, include=("*.md",), exclude=("skip/",)))
    found, _ = _walk(rules)
    assert found == {"a.md", "deep/c.md"}


def test_symlink_loops_are_reported_not_followed(tmp_path: Path) -> None:
    _tree(tmp_path, ["a/real.md"])
    os.symlink(tmp_path / "a", tmp_path / "a" / "loop")
    os.symlink(tmp_path / "x.md", tmp_path / "y.md")
    os.symlink(tmp_path / "y.md", tmp_path / "x.md")
    found, problems = _walk(FolderRules(_folder(tmp_path)))
    assert found == {"a/real.md"}
    reasons = {os.path.basename(p.path): p.reason for p in problems}
    assert "symlink loop" in reasons["loop"]
    assert "symlink loop" in reasons["x.md"] and "symlink loop" in reasons["y.md"]


def test_odd_characters_in_names(tmp_path: Path) -> None:
    names = ["spaces in name.md", "ünïcödé.md", "quote'\"s.md", "emoji 🔥.md", "brackets [1].md",
             "star*.md", "new\nline.md", "#hash%.md"]
    _tree(tmp_path, names)
    found, _ = _walk(FolderRules(_folder(tmp_path)))
    assert found == set(names)


def test_symlinks_out_of_the_folder_are_not_followed(tmp_path: Path) -> None:
    root, private = tmp_path / "a", tmp_path / "private"
    _tree(root, ["notes.md", "sub/inner.md"])
    _tree(private, ["diary.md"])
    os.symlink(private / "diary.md", root / "diary-link.md")  # a file outside
    os.symlink(private, root / "private-link")  # a folder outside
    os.symlink(root, private / "back")  # and a loop back: a -> private -> a
    os.symlink(root / "sub" / "inner.md", root / "inner-link.md")  # stays inside: fine
    rules = FolderRules(_folder(root))
    found, problems = _walk(rules)
    assert found == {"notes.md", "sub/inner.md", "inner-link.md"}
    reasons = {Path(p.path).name: p.reason for p in problems}
    assert set(reasons) == {"diary-link.md", "private-link"}
    assert all("outside the folder" in r for r in reasons.values())
    # The watcher asks `wanted()` about single paths: the same rule.
    assert rules.wanted(str(root / "diary-link.md")) is None
    assert rules.wanted(str(root / "private-link" / "diary.md")) is None
    assert rules.wanted(str(root / "inner-link.md")) == "markdown"
    # Walking the private folder follows its link back out no further either.
    private_found, private_problems = _walk(FolderRules(_folder(private)))
    assert private_found == {"diary.md"}
    assert [Path(p.path).name for p in private_problems] == ["back"]


def test_pipes_sockets_and_devices_are_listed_with_a_reason(tmp_path: Path) -> None:
    import socket

    _tree(tmp_path, ["notes.md"])
    os.mkfifo(tmp_path / "pipe.txt")
    os.mkfifo(tmp_path / "no-extension")
    os.symlink("/dev/null", tmp_path / "null.md")  # creating a device node needs root
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "hearth.sock"))
        found, problems = _walk(FolderRules(_folder(tmp_path)))
    finally:
        server.close()
    assert found == {"notes.md"}
    reasons = {os.path.basename(p.path): p.reason for p in problems}
    assert reasons == {
        "pipe.txt": "not a regular file: a named pipe (FIFO) is never read",
        "no-extension": "not a regular file: a named pipe (FIFO) is never read",
        "hearth.sock": "not a regular file: a socket is never read",
        "null.md": "not a regular file: a device is never read",
    }
