"""Hearth's real system-tray icon: a virtual X display (Xvfb) with a real
XEmbed tray host (stalonetray, and trayer: one test each), and Hearth started in
a subprocess on the xcb platform, because this test process already runs an
offscreen QApplication. The subprocess checks, through Qt and through the X
server itself: the icon is embedded in the host and drawn there, the menu and
notifications, closing to the tray, real clicks (XTEST) on the icon and its
menu, and Quit Hearth from that menu ending the app cleanly.

Skipped, saying what to install, where Xvfb, the tray host or the xcb plugin's
system libraries are missing. Debian 12: apt-get install xvfb trayer
libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 (stalonetray is packaged in
Debian 11 and 13, not 12). HEARTH_TRAY_SCREENSHOT=/path.png saves the screen
once the icon is drawn."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow

# Standalone XEmbed tray hosts, best first, with their arguments: in the
# bottom-right corner, away from Hearth's window (no window manager places it).
TRAY_HOSTS: dict[str, list[str]] = {
    "stalonetray": ["--geometry", "4x1-0-0", "--icon-size", "32", "--background", "#808080"],
    "trayer": ["--edge", "bottom", "--align", "right", "--widthtype", "request",
               "--height", "32", "--tint", "0x808080", "--transparent", "true", "--alpha", "0"],
}
TRAY_SELECTION = b"_NET_SYSTEM_TRAY_S0"
MENU = ["Quick Ask…", "Show Hearth", "Pause indexing", "Offline mode", "Quit Hearth"]
START_TIMEOUT = 15.0  # seconds for Xvfb and the tray host to come up
CHILD_TIMEOUT = 120.0  # seconds for the Hearth subprocess, model preload included

# Runs in the subprocess (cwd = the repository, so `app` imports). Prints one
# JSON line starting with RESULT: what it found, and exits 0 once Hearth quit.
CHILD = r'''
import json, os, sys, threading, time, traceback

from PySide6.QtCore import QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

found = {"qt_messages": []}

def on_qt_message(kind, context, message):
    if kind != QtMsgType.QtDebugMsg:
        found["qt_messages"].append(f"{kind.name}: {message}")

qInstallMessageHandler(on_qt_message)
app = QApplication(sys.argv)
app.setQuitOnLastWindowClosed(False)  # as app.ui.app.run() does

from app.paths import get_paths
from app.settings import Settings
from app.ui.app import HearthApp

paths = get_paths()
settings = Settings.load(paths)
settings.override("ui.quick_ask_shortcut", "")
found["platform"] = app.platformName()
found["tray_available_static"] = QSystemTrayIcon.isSystemTrayAvailable()
hearth = HearthApp(settings, paths)
tray = hearth.tray
found["tray_available"] = tray.available

def wait_for(condition, timeout_ms):
    # QTest.qWaitFor is not in PySide6: the event loop runs in 20 ms steps.
    deadline = time.monotonic() + timeout_ms / 1000
    while not condition():
        if time.monotonic() > deadline:
            return False
        QTest.qWait(20)
    return True

# Ask the X server itself (libX11, as Qt's own view of an embedded window's
# position is not to be trusted) where the icon's window is.
import ctypes, ctypes.util
xlib = ctypes.CDLL(ctypes.util.find_library("X11"))
xlib.XOpenDisplay.restype = ctypes.c_void_p
xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
xlib.XDefaultRootWindow.restype = ctypes.c_ulong
xlib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
xlib.XQueryTree.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong),
                            ctypes.POINTER(ctypes.c_ulong),
                            ctypes.POINTER(ctypes.POINTER(ctypes.c_ulong)),
                            ctypes.POINTER(ctypes.c_uint)]
xlib.XTranslateCoordinates.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong,
                                       ctypes.c_int, ctypes.c_int,
                                       ctypes.POINTER(ctypes.c_int),
                                       ctypes.POINTER(ctypes.c_int),
                                       ctypes.POINTER(ctypes.c_ulong)]
xlib.XFree.argtypes = [ctypes.c_void_p]
xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]

class XWindowAttributes(ctypes.Structure):
    _fields_ = [(name, kind) for name, kind in (
        ("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int),
        ("height", ctypes.c_int), ("border_width", ctypes.c_int), ("depth", ctypes.c_int),
        ("visual", ctypes.c_void_p), ("root", ctypes.c_ulong), ("class_", ctypes.c_int),
        ("bit_gravity", ctypes.c_int), ("win_gravity", ctypes.c_int),
        ("backing_store", ctypes.c_int), ("backing_planes", ctypes.c_ulong),
        ("backing_pixel", ctypes.c_ulong), ("save_under", ctypes.c_int),
        ("colormap", ctypes.c_ulong), ("map_installed", ctypes.c_int),
        ("map_state", ctypes.c_int), ("all_event_masks", ctypes.c_long),
        ("your_event_mask", ctypes.c_long), ("do_not_propagate_mask", ctypes.c_long),
        ("override_redirect", ctypes.c_int), ("screen", ctypes.c_void_p))]

xlib.XGetWindowAttributes.argtypes = [ctypes.c_void_p, ctypes.c_ulong,
                                      ctypes.POINTER(XWindowAttributes)]
dpy = xlib.XOpenDisplay(None)

def viewable(wid):
    """The X server shows the window (mapped, and all its ancestors too)."""
    attributes = XWindowAttributes()
    if not xlib.XGetWindowAttributes(dpy, wid, ctypes.byref(attributes)):
        return False
    return attributes.map_state == 2  # IsViewable

def icon_window():
    """The QSystemTrayIconSys widget Qt shows for the icon on X11 (XEmbed)."""
    found_ = [w for w in app.topLevelWidgets()
              if w.metaObject().className() == "QSystemTrayIconSys"]
    return found_[0] if found_ else None

def x_parent_and_position(wid):
    root, parent, children = ctypes.c_ulong(), ctypes.c_ulong(), ctypes.POINTER(ctypes.c_ulong)()
    count = ctypes.c_uint()
    if not xlib.XQueryTree(dpy, wid, ctypes.byref(root), ctypes.byref(parent),
                           ctypes.byref(children), ctypes.byref(count)):
        return 0, 0, None
    if children:
        xlib.XFree(children)
    x, y, child = ctypes.c_int(), ctypes.c_int(), ctypes.c_ulong()
    xlib.XTranslateCoordinates(dpy, wid, root.value, 0, 0, ctypes.byref(x), ctypes.byref(y),
                               ctypes.byref(child))
    return root.value, parent.value, (x.value, y.value)

def embedded():
    """The tray host has reparented the icon's window into its own."""
    w = icon_window()
    if w is None or not w.isVisible():
        return False
    root, parent, _ = x_parent_and_position(int(w.winId()))
    return parent not in (0, root) and viewable(int(w.winId()))

def flame_on_screen():
    """What the screen shows where the icon's window is: Hearth's flame."""
    w = icon_window()
    _, _, (x, y) = x_parent_and_position(int(w.winId()))
    shot = app.primaryScreen().grabWindow(0, x, y, w.width(), w.height())
    image = shot.toImage()
    colours = {image.pixel(i, j) for i in range(image.width()) for j in range(image.height())}
    found["icon_on_screen"] = [x, y, w.width(), w.height()]
    found["icon_colours"] = len(colours)
    return any(QColor.fromRgb(c).hue() in range(0, 50) and QColor.fromRgb(c).saturation() > 120
               for c in colours)

def balloon():
    return [w for w in app.topLevelWidgets()
            if w.metaObject().className() == "QBalloonTip" and w.isVisible()]

# Real clicks through the X server (XTEST), as a user's mouse would make them.
xtst_name = ctypes.util.find_library("Xtst")
xtst = ctypes.CDLL(xtst_name) if xtst_name else None
if xtst is not None:
    xtst.XTestFakeMotionEvent.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                          ctypes.c_int, ctypes.c_ulong]
    xtst.XTestFakeButtonEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_ulong]
    xlib.XFlush.argtypes = [ctypes.c_void_p]

def click(x, y, button):
    xtst.XTestFakeMotionEvent(dpy, -1, x, y, 0)
    xtst.XTestFakeButtonEvent(dpy, button, 1, 0)
    xtst.XTestFakeButtonEvent(dpy, button, 0, 0)
    xlib.XFlush(dpy)

def click_icon(button):
    x, y, w, h = found["icon_on_screen"]
    click(x + w // 2, y + h // 2, button)

def click_menu_item(action):
    """Right-click the icon, then click `action` in the menu that opens."""
    click_icon(3)
    if not wait_for(lambda: tray.menu.isVisible() and viewable(int(tray.menu.winId())),
                    5_000):
        return False
    shown = [a.text() for a in tray.menu.actions() if a.isVisible() and not a.isSeparator()]
    found["menu_on_screen"] = shown
    centre = tray.menu.mapToGlobal(tray.menu.actionGeometry(action).center())
    click(centre.x(), centre.y(), 1)
    return True

def check():
    try:
        hearth.start()
        found["icon_visible"] = tray.icon.isVisible()
        found["embedded"] = wait_for(embedded, 10_000)
        found["window_visible"] = hearth.window.isVisible()
        found["tooltip"] = tray.icon.toolTip()
        found["menu"] = [a.text() for a in tray.menu.actions() if not a.isSeparator()]
        found["menu_is_context_menu"] = tray.icon.contextMenu() is tray.menu
        found["offline_checkable"] = tray.offline_action.isCheckable()
        found["supports_messages"] = QSystemTrayIcon.supportsMessages()
        found["icon_has_flame"] = found["embedded"] and wait_for(flame_on_screen, 5_000)
        def qt_geometry():
            g = tray.icon.geometry()
            found["geometry"] = [g.x(), g.y(), g.width(), g.height()]
            return found["geometry"] == found.get("icon_on_screen")
        # Qt's idea of where the icon is catches up with the X server's.
        found["geometry_matches"] = wait_for(qt_geometry, 5_000)
        if os.environ.get("HEARTH_TRAY_SCREENSHOT"):
            app.primaryScreen().grabWindow(0).save(os.environ["HEARTH_TRAY_SCREENSHOT"])
        notices = len(tray.notices)
        tray.notify("Hearth test", "A notification from the real tray test.")
        tray.notify("Hearth test", "An error notification.", error=True)
        found["notify_recorded"] = len(tray.notices) - notices
        found["balloon_shown"] = wait_for(lambda: bool(balloon()), 5_000)
        found["balloon_at"] = [[t.x(), t.y()] for t in balloon()]
        for tip in balloon():
            tip.close()
        # Closing the window with a real tray keeps Hearth running there.
        hearth.window.close()
        found["closed_to_tray"] = (not hearth.window.isVisible()
                                   and not hearth._quit_done)
        found["tray_notice"] = [t for t, _ in tray.notices if t == "Hearth is still running"]
        found["xtest"] = xtst is not None and found["icon_has_flame"]
        if not found["xtest"]:
            tray.show_action.trigger()
            found["shown_again"] = hearth.window.isVisible()
        else:
            # Left click on the icon: the window comes back.
            click_icon(1)
            found["shown_again"] = wait_for(hearth.window.isVisible, 5_000)
            # Middle click: the quick-ask popup.
            click_icon(2)
            found["middle_click_quick_ask"] = wait_for(hearth.quick.isVisible, 5_000)
            hearth.quick.close()
            # Right click, then "Show Hearth" in the menu that opens.
            hearth.window.hide()
            found["menu_opened"] = click_menu_item(tray.show_action)
            found["menu_show_hearth"] = wait_for(
                lambda: hearth.window.isVisible() and not tray.menu.isVisible(), 5_000)
    except Exception:
        found["error"] = traceback.format_exc()
    # Quit the way a user does: the tray menu's Quit Hearth ends app.exec().
    found["quit_started"] = time.monotonic()
    found["quit_via"] = "menu click"
    if not (found.get("xtest") and click_menu_item(tray.quit_action)):
        found["quit_via"] = "action"
        tray.quit_action.trigger()

QTimer.singleShot(0, check)
exec_timer = QTimer()
exec_timer.setSingleShot(True)
exec_timer.timeout.connect(lambda: (found.setdefault("error", "app.exec() did not end"),
                                    app.quit()))
exec_timer.start(60_000)
found["exec_code"] = app.exec()
exec_timer.stop()
hearth.quit()  # a no-op the second time, as in app.ui.app.run()
found["quit_seconds"] = round(time.monotonic() - found.pop("quit_started", time.monotonic()), 2)
found["icon_visible_after_quit"] = tray.icon.isVisible()
found["window_visible_after_quit"] = hearth.window.isVisible()
found["server_listening_after_quit"] = hearth.server.server.isListening()
found["threads_after_quit"] = sorted(
    t.name for t in threading.enumerate()
    if t is not threading.main_thread() and not t.name.startswith("Dummy-"))
xlib.XCloseDisplay(dpy)
print("RESULT:" + json.dumps(found), flush=True)
'''



def _package_for(soname: str) -> str:
    """Debian's package name for a shared library: libxcb-icccm.so.4 -> libxcb-icccm4."""
    name, _, version = soname.partition(".so.")
    name = name.lower()
    return f"{name}-{version}" if name[-1:].isdigit() else f"{name}{version}"


def _xcb_missing_libraries() -> list[str]:
    """The system libraries Qt's xcb platform plugin cannot find (ldd)."""
    from PySide6.QtCore import QLibraryInfo

    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    plugin = plugins / "platforms" / "libqxcb.so"
    if not plugin.is_file():
        pytest.skip(f"this PySide6 has no xcb platform plugin ({plugin})")
    if shutil.which("ldd") is None:
        return []  # nothing to check with; a failed start says it instead
    out = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True,
                         timeout=30).stdout
    return sorted(set(re.findall(r"^\s*(\S+) => not found", out, re.MULTILINE)))


def _libx11() -> ctypes.CDLL:
    name = ctypes.util.find_library("X11")
    if name is None:
        pytest.skip("libX11 is not installed (apt-get install libx11-6)")
    lib = ctypes.CDLL(name)
    lib.XOpenDisplay.restype = ctypes.c_void_p
    lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    lib.XInternAtom.restype = ctypes.c_ulong
    lib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.XGetSelectionOwner.restype = ctypes.c_ulong
    lib.XGetSelectionOwner.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    return lib


def _selection_owner(xlib: ctypes.CDLL, display: str, selection: bytes) -> int:
    """The X window that owns `selection` on `display`; 0 when none does."""
    dpy = xlib.XOpenDisplay(display.encode())
    if not dpy:
        return 0
    try:
        return int(xlib.XGetSelectionOwner(dpy, xlib.XInternAtom(dpy, selection, 0)))
    finally:
        xlib.XCloseDisplay(dpy)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.is_file() else ""


def _wait_until(condition: Callable[[], bool], timeout: float, what: str,
                processes: dict[str, tuple[subprocess.Popen[bytes], Path]]) -> None:
    """Poll `condition` until true; fail at `timeout` or when a process exits."""
    deadline = time.monotonic() + timeout
    while not condition():
        for name, (proc, log) in processes.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited ({proc.returncode}) before {what}: "
                                     f"{_tail(log)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _read_display_number(fd: int, xvfb: subprocess.Popen[bytes], log: Path) -> str:
    """What Xvfb -displayfd writes: its display number and a newline."""
    number = b""
    deadline = time.monotonic() + START_TIMEOUT
    while not number.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 16) if ready else b""
        if not chunk:
            raise AssertionError(f"Xvfb did not report its display number within "
                                 f"{START_TIMEOUT:.0f} s (exit {xvfb.poll()}): {_tail(log)}")
        number += chunk
    return f":{int(number)}"


@contextmanager
def _x_display_with_tray(host: str, workdir: Path, env: dict[str, str]) -> Iterator[str]:
    """Xvfb on a free display, `host` owning the tray selection there; yields ':N'.
    Both are stopped on the way out, whatever happened."""
    xlib = _libx11()
    xvfb_log, host_log = workdir / "xvfb.log", workdir / f"{host}.log"
    xvfb: subprocess.Popen[bytes] | None = None
    tray: subprocess.Popen[bytes] | None = None
    read_fd, write_fd = os.pipe()
    try:
        # -displayfd: Xvfb picks a free display number and writes it to the pipe.
        with xvfb_log.open("wb") as out:
            xvfb = subprocess.Popen(
                ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24",
                 "-nolisten", "tcp", "-noreset"],
                pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        os.close(write_fd)
        write_fd = -1
        display = _read_display_number(read_fd, xvfb, xvfb_log)
        with host_log.open("wb") as out:
            tray = subprocess.Popen([host, *TRAY_HOSTS[host]], env={**env, "DISPLAY": display},
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        _wait_until(lambda: _selection_owner(xlib, display, TRAY_SELECTION) != 0,
                    START_TIMEOUT, f"{host} to own {TRAY_SELECTION.decode()} on {display}",
                    {"Xvfb": (xvfb, xvfb_log), host: (tray, host_log)})
        yield display
    finally:
        _stop(tray)
        _stop(xvfb)
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)


@pytest.mark.parametrize("host", list(TRAY_HOSTS))
def test_tray_icon_menu_and_notifications_in_a_real_tray(host: str, hearth_home: Path,
                                                          tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the real-tray test runs on Linux (X11) only")
    if shutil.which("Xvfb") is None:
        pytest.skip("needs Xvfb on PATH (Debian/Ubuntu: apt-get install xvfb)")
    if shutil.which(host) is None:
        note = "; Debian 12 has no stalonetray package" if host == "stalonetray" else ""
        pytest.skip(f"needs the tray host {host} on PATH (Debian/Ubuntu: apt-get install "
                    f"{host}{note})")
    libraries = _xcb_missing_libraries()
    if libraries:
        pytest.skip(f"Qt's xcb platform plugin cannot load: missing {', '.join(libraries)} "
                    f"(apt-get install {' '.join(_package_for(x) for x in libraries)})")

    runtime_dir = tmp_path / "xdg-runtime"
    runtime_dir.mkdir(mode=0o700)
    env = {**os.environ, "HEARTH_HOME": str(hearth_home), "XDG_RUNTIME_DIR": str(runtime_dir)}
    # The XEmbed tray on the virtual display, not a StatusNotifier host or a
    # Wayland compositor that a surrounding desktop session might offer.
    for name in ("WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "QT_QPA_PLATFORM"):
        env.pop(name, None)
    with _x_display_with_tray(host, tmp_path, env) as display:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True,
            env={**env, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}, timeout=CHILD_TIMEOUT)
    if 'Could not load the Qt platform plugin "xcb"' in proc.stderr:
        pytest.skip(f"Qt's xcb platform plugin cannot load here: {proc.stderr.strip()[-500:]}")
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT:")]
    assert proc.returncode == 0 and lines, (
        f"exit {proc.returncode}\nstdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}")
    found = json.loads(lines[-1].removeprefix("RESULT:"))
    assert "error" not in found, f"{found.pop('error')}\n{found}"
    assert found["platform"] == "xcb"
    assert found["tray_available_static"] is True
    assert found["tray_available"] is True
    assert found["icon_visible"] is True
    assert found["embedded"] is True, f"the tray host never embedded the icon: {found}"
    assert found["icon_has_flame"] is True, f"the tray shows no Hearth icon: {found}"
    # Qt's idea of where the icon is matches the X server's.
    assert found["geometry_matches"] is True, found
    assert found["window_visible"] is True
    assert found["tooltip"] == "Hearth"
    assert found["menu"] == MENU
    assert found["menu_is_context_menu"] is True
    assert found["offline_checkable"] is True
    assert found["notify_recorded"] == 2
    assert found["supports_messages"] is True
    assert found["balloon_shown"] is True
    assert found["closed_to_tray"] is True
    assert found["tray_notice"] == ["Hearth is still running"]
    assert found["shown_again"] is True
    if found["xtest"]:  # libXtst is there: real clicks on the icon and its menu
        assert found["middle_click_quick_ask"] is True
        assert found["menu_opened"] is True
        assert found["menu_on_screen"] == MENU
        assert found["menu_show_hearth"] is True
        assert found["quit_via"] == "menu click"
    assert found["exec_code"] == 0
    assert found["icon_visible_after_quit"] is False
    assert found["window_visible_after_quit"] is False
    assert found["server_listening_after_quit"] is False
    assert found["threads_after_quit"] == []
    assert found["qt_messages"] == [], found["qt_messages"]
