"""One Hearth per user, whichever install starts it: a bundle started while a
source install's window runs hands its request to that window. The instance's
name comes from the user and the config folder, never from the executable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pytestqt.qtbot import QtBot

from app.ui.single_instance import InstanceServer, server_name
from tests.helpers import REPO

# A launch that looks like the bundle's: frozen, another executable and argv[0].
AS_A_BUNDLE = """
import sys
exe = sys.argv[1]
sys.frozen = True
sys.executable = exe
sys.argv = [exe]
from app.ui.single_instance import server_name
print(server_name(), flush=True)
from app.cli import main
sys.exit(main([]))
"""


def test_a_bundle_launch_hands_over_to_the_source_install_running(
        qtbot: QtBot, tmp_path: Path) -> None:
    server = InstanceServer()  # this process plays the running source install
    assert server.listen()
    received: list[dict[str, Any]] = []
    server.request_received.connect(received.append)
    env = dict(os.environ)
    # Without a display: were the hand-off to fail, it would say so (exit 3)
    # instead of opening a second window.
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    bundle = tmp_path / "Applications" / "hearth" / "hearth"
    proc = subprocess.Popen([sys.executable, "-c", AS_A_BUNDLE, str(bundle)], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        qtbot.waitUntil(lambda: proc.poll() is not None, timeout=30_000)
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
        server.close()
    assert proc.returncode == 0, err
    assert out.split() == [server_name()]
    assert received == [{"action": "show"}]
