"""packaging/install-desktop-entry.sh: launches the bundle when built, else the venv, refuses with neither;
the entry passes desktop-file-validate and hands the files a file manager opens to the app (%F)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                                reason="desktop-file-utils is not installed")


def _checkout(tmp_path: Path) -> Path:
    """A copy of packaging/ in a checkout whose path needs quoting in the Exec key."""
    root = tmp_path / 'my "lm" checkout'
    shutil.copytree(ROOT / "packaging", root / "packaging", ignore=shutil.ignore_patterns("*.spec", "*.py"))
    return root


def _stub(path: Path) -> Path:
    """An executable that writes the arguments it got, one per line, to $ARGS_OUT."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS_OUT"\n')
    path.chmod(0o755)
    return path


def _install(root: Path, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOME=str(home), XDG_DATA_HOME=str(home / "share"))
    return subprocess.run(["bash", str(root / "packaging" / "install-desktop-entry.sh")], env=env,
                          capture_output=True, text=True, timeout=60)


def _exec_argv(entry: Path, files: list[str]) -> list[str]:
    """The command a launcher runs for ``files``: the Exec key unescaped (desktop entry spec), %F expanded."""
    line = next(v for k, _, v in (ln.partition("=") for ln in entry.read_text().splitlines()) if k == "Exec")
    argv = shlex.split(line.replace("\\\\", "\\"))
    i = argv.index("%F")
    return argv[:i] + files + argv[i + 1:]


def _validate(path: Path) -> str:
    proc = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return (proc.stdout + proc.stderr).strip()


def test_template_validates_without_warnings():
    assert _validate(ROOT / "packaging" / "lm-explorer.desktop") == ""


def test_refuses_when_nothing_is_built(tmp_path):
    root = _checkout(tmp_path)
    proc = _install(root, tmp_path / "home")
    assert proc.returncode == 1
    assert "nothing to launch" in proc.stderr and "make bundle" in proc.stderr and "make setup" in proc.stderr
    assert not (tmp_path / "home" / "share" / "applications" / "lm-explorer.desktop").exists()


def test_venv_then_bundle_and_files_reach_the_app(tmp_path):
    root = _checkout(tmp_path)
    home = tmp_path / "home"
    entry = home / "share" / "applications" / "lm-explorer.desktop"
    venv = _stub(root / ".venv" / "bin" / "lm-explorer")
    proc = _install(root, home)
    assert proc.returncode == 0, proc.stderr
    assert "launching the venv" in proc.stdout
    assert _validate(entry) == ""
    assert (home / "share" / "icons" / "hicolor" / "scalable" / "apps" / "lm-explorer.svg").is_file()
    files = [str(tmp_path / "a note.txt"), str(tmp_path / "reviews.csv")]
    argv = _exec_argv(entry, files)
    assert argv[0] == str(venv)
    out = tmp_path / "args.txt"
    subprocess.run(argv, env=dict(os.environ, ARGS_OUT=str(out)), check=True, timeout=60)
    assert out.read_text().splitlines() == files

    bundle = _stub(root / "dist" / "lm-explorer" / "lm-explorer")
    proc = _install(root, home)
    assert proc.returncode == 0, proc.stderr
    assert "launching the bundle" in proc.stdout
    assert _validate(entry) == ""
    assert _exec_argv(entry, files)[0] == str(bundle)
