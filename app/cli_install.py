"""`hearth --install-desktop-entry`, `--uninstall-desktop-entry` and
`hearth uninstall`: the menu entry of this install, and removing what Hearth
has put on this computer (its data only with --purge)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import desktop
from app.paths import Paths, get_paths


def add_arguments(parser: argparse.ArgumentParser, sub: Any) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--install-desktop-entry", action="store_true",
                       help="add Hearth to this user's application menu (Linux)")
    group.add_argument("--uninstall-desktop-entry", action="store_true",
                       help="remove Hearth from this user's application menu")
    un = sub.add_parser("uninstall", help="remove Hearth's menu and autostart entries; "
                                          "with --purge also your data, settings and keys")
    un.add_argument("--purge", action="store_true",
                    help="also remove conversations, the index, models, settings, logs "
                         "and the API keys of configured providers")
    un.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def cmd_desktop_entry(args: argparse.Namespace) -> int:
    from app.cli_common import EXIT_FAIL, EXIT_OK, fail

    try:
        if args.install_desktop_entry:
            written = desktop.install()
            print(f"Added Hearth to the application menu: {written[0]}")
            print(f"It starts {desktop.exec_value(desktop.command())}. If you move Hearth to "
                  "another folder, start it once from there (the entry follows it) or run "
                  "this again.")
        else:
            removed = desktop.uninstall()
            print(f"Removed {len(removed)} file(s) of Hearth's menu entry." if removed
                  else "Hearth has no menu entry for this user; nothing was removed.")
    except desktop.DesktopError as exc:
        return fail(str(exc), EXIT_FAIL)
    return EXIT_OK


@dataclass
class Plan:
    """What `hearth uninstall` removes, in the order it removes it."""

    files: list[tuple[str, Path]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    kept: list[tuple[str, Path]] = field(default_factory=list)


def _size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _user_data(paths: Paths) -> list[tuple[str, Path]]:
    from app.core.knowledge.location import knowledge_dir
    from app.core.models.library import models_dir

    named = [("conversations", paths.conversations_db),
             ("index of your folders", knowledge_dir(paths)),
             ("downloaded and imported models", models_dir(paths)),
             ("settings and providers", paths.config_dir),
             ("data folder (with the above)", paths.data_dir),
             ("caches", paths.cache_dir), ("logs", paths.log_dir)]
    seen: set[Path] = set()
    out: list[tuple[str, Path]] = []
    for what, path in named:
        if (path.exists() or path.is_symlink()) and path not in seen:
            out.append((what, path))
            seen.add(path)
    return out


def make_plan(paths: Paths, purge: bool) -> Plan:
    from app.ui import autostart

    plan = Plan()
    entries = desktop.installed()
    if entries:
        plan.files.append(("application menu entry", entries[0]))
        plan.files += [("menu entry file", p) for p in entries[1:]]
    if desktop.is_ours(autostart.entry_path()):
        plan.files.append(("start-at-login entry", autostart.entry_path()))
    data = _user_data(paths)
    if purge:
        from app.core.llm.registry import ProviderConfigError, load_providers
        from app.core.secrets import env_var, get_key

        try:
            providers = load_providers(paths)
        except ProviderConfigError:
            providers = []  # a damaged providers.toml still goes with the settings
        # Only keys in the keyring: one from HEARTH_<NAME>_API_KEY belongs to the
        # user's environment, not to Hearth.
        plan.keys = [p.name for p in providers
                     if not os.environ.get(env_var(p.name)) and get_key(p.name)]
        plan.files += data
    else:
        plan.kept = data
    return plan


def _unsafe(path: Path) -> bool:
    # A HEARTH_HOME pointed at a folder of the user's own must never take that
    # folder, the home folder or anything above it with it.
    resolved = path.resolve()
    home = Path.home().resolve()
    return resolved == Path(resolved.anchor) or resolved == home or home.is_relative_to(resolved)


def cmd_uninstall(args: argparse.Namespace) -> int:
    from app.cli_common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, fail

    paths = get_paths()
    if _running(paths):
        return fail("Hearth is running; quit it first (tray menu → Quit), then uninstall.")
    plan = make_plan(paths, args.purge)
    if not plan.keys and not any(_size(path) for _what, path in plan.files):
        # Empty folders only (this very command opens its log folder): tidy
        # them away without asking.
        _remove(plan)
        print("Nothing of Hearth's is installed for this user; nothing to remove.")
        _print_kept(plan)
        return EXIT_OK
    print("hearth uninstall will remove:")
    for what, path in plan.files:
        size = f" ({_human(_size(path))})" if path.is_dir() else ""
        print(f"  {what}: {path}{size}")
    for name in plan.keys:
        print(f"  API key of provider {name!r} in the keyring")
    _print_kept(plan)
    if not args.yes:
        if sys.stdin is None or sys.stdin.closed:
            return fail("add --yes to remove these without being asked", EXIT_USAGE)
        print("Remove these? [y/N] ", end="", flush=True)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            print("Nothing was removed.")
            return EXIT_OK
    problems = _remove(plan)
    for problem in problems:
        print(f"hearth: {problem}", file=sys.stderr)
    if problems:
        return EXIT_FAIL
    print("Removed." + (f" {how_to_remove_the_program()}" if args.purge else ""))
    return EXIT_OK


def how_to_remove_the_program() -> str:
    """The last step of an uninstall, for this kind of install."""
    if getattr(sys, "frozen", False):
        return (f"The hearth app itself goes when you delete its folder, "
                f"{Path(sys.executable).absolute().parent}.")
    return ("The hearth command itself is removed with `pip uninstall hearth` (or by "
            "deleting the checkout).")


def _print_kept(plan: Plan) -> None:
    if plan.kept:
        print("Kept (add --purge to remove them too):")
        for what, path in plan.kept:
            print(f"  {what}: {path}")


def _remove(plan: Plan) -> list[str]:
    from app.core.secrets import delete_key

    problems: list[str] = []
    # Keys first: their list lives in providers.toml, which goes with the settings.
    for name in plan.keys:
        try:
            delete_key(name)
        except Exception as exc:  # noqa: BLE001  keyring backends raise their own types; removal goes on
            problems.append(f"the key of {name!r} could not be removed from the keyring: "
                            f"{exc}")
    for _what, path in plan.files:
        if _unsafe(path):
            problems.append(f"{path} was left alone: it is a home or top-level folder.")
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError as exc:
            problems.append(f"{path} could not be removed: {exc.strerror or exc}.")
    # HEARTH_HOME, once a purge has emptied it, goes too.
    home = os.environ.get("HEARTH_HOME")
    root = Path(home).expanduser().absolute() if home else None
    if root is not None and root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    return problems


def _running(paths: Paths) -> bool:
    """Whether a Hearth window listens for this user and HEARTH_HOME."""
    try:
        from PySide6.QtNetwork import QLocalSocket

        from app.ui.single_instance import server_name
    except ImportError:
        return False
    sock = QLocalSocket()
    sock.connectToServer(server_name(paths))
    connected = sock.waitForConnected(300)
    sock.abort()
    return connected


HANDLERS = {"uninstall": cmd_uninstall}
