"""The system libraries Qt's X11 plugin needs, checked before Qt starts: without them Qt aborts the process
("xcb-cursor0 … is needed") and never says how to install them. No Qt module is imported here.

``python -m explorer.gui.system_libs`` prints the Debian/Ubuntu packages that are missing (scripts/system-deps.sh
installs them for ``make run``), one line, nothing when all are present.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

# Library (as the dynamic linker names it) -> the Debian/Ubuntu package that ships it.
PACKAGES = {
    "libxcb-icccm.so.4": "libxcb-icccm4", "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0", "libxcb-xinerama.so.0": "libxcb-xinerama0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0", "libxkbcommon.so.0": "libxkbcommon0", "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1", "libfontconfig.so.1": "libfontconfig1", "libdbus-1.so.3": "libdbus-1-3",
    "libX11-xcb.so.1": "libx11-xcb1", "libxcb-sync.so.1": "libxcb-sync1", "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-shm.so.0": "libxcb-shm0", "libxcb-render.so.0": "libxcb-render0", "libxcb-util.so.1": "libxcb-util1",
}


def parse_ldd(output: str) -> list[str]:
    """The libraries ``ldd`` reports as "not found", in order, once each."""
    missing: list[str] = []
    for line in output.splitlines():
        if "not found" in line:
            name = line.split("=>")[0].strip()
            if name and name not in missing:
                missing.append(name)
    return missing


def _qt_dir() -> Path | None:
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "Qt"


def missing_xcb_libraries() -> list[str]:
    """Libraries Qt's xcb platform plugin (and its X11 glue library) cannot find on this system; [] when all are
    there or when it cannot be told (no ldd, a bundle laid out otherwise)."""
    qt = _qt_dir()
    ldd = shutil.which("ldd")
    if qt is None or ldd is None:
        return []
    missing: list[str] = []
    for binary in (qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6"):
        if not binary.exists():
            continue
        try:
            out = subprocess.run([ldd, str(binary)], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        missing += [lib for lib in parse_ldd(out) if lib not in missing]
    # libxcb-cursor is opened at run time (dlopen), so ldd does not list it; Qt 6.5+ refuses to start without it.
    try:
        ctypes.CDLL("libxcb-cursor.so.0")  # the dynamic linker's own search, as Qt's dlopen does
    except OSError:
        if "libxcb-cursor.so.0" not in missing:
            missing.append("libxcb-cursor.so.0")
    return missing


def install_line(missing: list[str]) -> str:
    """The one command that installs ``missing`` on Debian/Ubuntu (libraries it cannot map are named after it)."""
    packages = sorted({PACKAGES[lib] for lib in missing if lib in PACKAGES})
    unknown = [lib for lib in missing if lib not in PACKAGES]
    sudo = "sudo " if hasattr(os, "geteuid") and os.geteuid() != 0 else ""
    line = f"{sudo}apt-get install -y {' '.join(packages)}" if packages else ""
    if unknown:
        line += ("; " if line else "") + "and the packages that provide " + ", ".join(unknown)
    return line


def uses_xcb() -> bool:
    """Whether Qt will open the window through X11 (xcb): the platform asked for, else X11 on Linux unless it is
    a Wayland session."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0] == "xcb"
    if not sys.platform.startswith("linux"):
        return False
    wayland = os.environ.get("WAYLAND_DISPLAY") and os.environ.get("XDG_SESSION_TYPE") == "wayland"
    return not wayland


if __name__ == "__main__":
    print(" ".join(sorted({PACKAGES[lib] for lib in missing_xcb_libraries() if lib in PACKAGES})))
