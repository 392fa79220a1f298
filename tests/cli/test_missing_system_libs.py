"""Start-up without Qt's X11 libraries: one line with the apt-get command and exit 2, before Qt aborts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.gui.system_libs import install_line, missing_xcb_libraries, parse_ldd

ROOT = Path(__file__).resolve().parents[2]
LDD = """\tlinux-vdso.so.1 (0x00007ffd)
\tlibxcb-icccm.so.4 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
"""


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = ":1234"  # no such display: Qt would abort or fail if it got that far
    return env


def test_ldd_output_names_each_missing_library_once():
    assert parse_ldd(LDD) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    line = install_line(["libxcb-icccm.so.4", "libxcb-cursor.so.0"])
    assert line.endswith("apt-get install -y libxcb-cursor0 libxcb-icccm4")


def test_window_start_without_the_libraries_prints_the_install_line_and_exits_2():
    code = ("import sys, explorer.gui.system_libs as s; s.missing_xcb_libraries = lambda: ['libxcb-cursor.so.0']; "
            "from explorer.gui.app import main; rc = main([]); "
            "print('qt-loaded' if 'PySide6.QtWidgets' in sys.modules else 'qt-not-loaded'); raise SystemExit(rc)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("apt-get install -y libxcb-cursor0"), run.stderr
    assert run.stdout.strip() == "qt-not-loaded"


def test_this_machine_lacks_libraries_and_the_app_says_which():
    if not missing_xcb_libraries():  # asked now, not at collection: a package may be installed meanwhile
        pytest.skip("this machine has every library Qt's X11 plugin needs")
    run = subprocess.run([sys.executable, "-m", "explorer"], cwd=ROOT, env=_env(), capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2
    assert "apt-get install -y" in run.stderr and missing_xcb_libraries()[0] in run.stderr
    assert "Aborted" not in run.stderr and "could not load the Qt platform plugin" not in run.stderr
