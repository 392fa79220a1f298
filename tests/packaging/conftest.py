"""The project installed from its wheel into a fresh venv, shared by the tests of what a wheel install does.

The wheel is built from a copy of the sources and installed without dependencies into a fresh venv that sees
this interpreter's site-packages through a .pth file (plain path lines, so the editable install of the
checkout living there is not activated): the heavy packages are reused, the project comes from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _site_dirs() -> list[str]:
    """This interpreter's site-packages folders (a venv's own and any it reuses), never the checkout."""
    dirs = [sysconfig.get_paths()["purelib"]] + [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    return [d for d in dict.fromkeys(dirs) if Path(d).is_dir() and Path(d).resolve() != ROOT]


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """The wheel installed in a fresh venv: its python, venv, an empty working directory elsewhere and the env."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for folder in ("explorer", "resources"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    run = dict(capture_output=True, text=True, timeout=300)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "-w", str(tmp / "dist"), str(src)], **run)
    assert build.returncode == 0, build.stderr
    wheel = next((tmp / "dist").glob("lm_explorer-*.whl"))
    venv = tmp / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], **run)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                           "-q", str(wheel)], **run)
    assert inst.returncode == 0, inst.stderr
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             **run).stdout.strip()
    Path(purelib, "_reuse_heavy_packages.pth").write_text("\n".join(_site_dirs()) + "\n")
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1", LM_EXPLORER_DATA_DIR=str(tmp / "data"))
    return {"venv": venv, "python": python, "cwd": elsewhere, "env": env, "wheel": wheel}
