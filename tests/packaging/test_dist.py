"""The release tarball (packaging/make_dist.sh) and its install.sh / uninstall.sh, on a stand-in bundle whose
executable records its arguments: the menu entry validates and hands files to the app, --prefix is honoured,
and uninstall.sh leaves no file behind (asking the app to clear its caches only with --caches)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bundle(tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle" / "lm-explorer"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "_internal" / "data.txt").write_text("x")
    exe = bundle / "lm-explorer"
    exe.write_text('#!/bin/sh\nprintf "%s\\n" "$@" >> "$ARGS_OUT"\n')
    exe.chmod(0o755)
    return bundle


def _tarball(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(ROOT / "packaging" / "make_dist.sh"), "9.8.7", str(_bundle(tmp_path)),
                           str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    tarball = Path(proc.stdout.strip().splitlines()[-1])
    assert tarball.name == f"lm-explorer-9.8.7-linux-{os.uname().machine}.tar.gz" and tarball.is_file()
    return tarball


def _env(home: Path, args_out: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "LM_EXPLORER"))}
    env.update(HOME=str(home), ARGS_OUT=str(args_out))
    return env


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def _exec_argv(entry: Path, files: list[str]) -> list[str]:
    line = next(v for k, _, v in (ln.partition("=") for ln in entry.read_text().splitlines()) if k == "Exec")
    argv = shlex.split(line.replace("\\\\", "\\"))
    i = argv.index("%F")
    return argv[:i] + files + argv[i + 1:]


@pytest.mark.parametrize("prefix", [None, 'my "apps"/lm explorer'])
def test_install_then_uninstall_leaves_nothing(tmp_path, prefix):
    tarball = _tarball(tmp_path)
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "unpacked", filter="tar")
    top = tmp_path / "unpacked" / tarball.name.removesuffix(".tar.gz")
    for name in ("install.sh", "LICENSE", "lm-explorer.desktop", "lm-explorer.svg", "app/lm-explorer"):
        assert f"{top.name}/{name}" in names
    home = tmp_path / "home"
    home.mkdir()
    args_out = tmp_path / "args.txt"
    env = _env(home, args_out)
    argv = ["bash", str(top / "install.sh")] + (["--prefix", str(tmp_path / prefix)] if prefix else [])
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    where = (tmp_path / prefix) if prefix else home / ".local" / "share" / "lm-explorer"
    app = where / "app" / "lm-explorer"
    assert app.is_file() and (where / "app" / "_internal" / "data.txt").read_text() == "x"
    entry = home / ".local" / "share" / "applications" / "lm-explorer.desktop"
    assert (home / ".local" / "share" / "icons" / "hicolor" / "scalable" / "apps" / "lm-explorer.svg").is_file()
    assert "MimeType=text/plain;" in entry.read_text()
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert check.returncode == 0 and not (check.stdout + check.stderr).strip()
    dropped = [str(tmp_path / "a note.txt")]
    run = _exec_argv(entry, dropped)
    assert run[0] == str(app)
    subprocess.run(run, env=env, check=True, timeout=60)
    assert args_out.read_text().splitlines() == dropped
    link = home / ".local" / "bin" / "lm-explorer"
    assert link.is_symlink() and link.resolve() == app.resolve()

    args_out.unlink()
    proc = subprocess.run(["bash", str(where / "uninstall.sh"), "--caches"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert args_out.read_text().splitlines() == ["storage", "--clear", "all", "--yes"]
    assert _files(home) == [] and not where.exists()
    # the folders install.sh made (~/.local/share/applications, icons/…, ~/.local/bin, a --prefix's parent) go too
    assert list(home.iterdir()) == []
    assert not prefix or not where.parent.exists()


def test_uninstall_without_caches_does_not_touch_them(tmp_path):
    tarball = _tarball(tmp_path)
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path / "unpacked", filter="tar")
    top = tmp_path / "unpacked" / tarball.name.removesuffix(".tar.gz")
    home = tmp_path / "home"
    home.mkdir()
    args_out = tmp_path / "args.txt"
    env = _env(home, args_out)
    assert subprocess.run(["bash", str(top / "install.sh")], env=env, capture_output=True, timeout=120).returncode == 0
    session = home / ".local" / "share" / "lm-explorer" / "session.json"
    session.write_text("{}")
    proc = subprocess.run(["bash", str(home / ".local/share/lm-explorer/uninstall.sh")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not args_out.exists()  # the app was not asked to clear anything
    assert _files(home) == [".local/share/lm-explorer/session.json"]


def test_the_tarball_says_where_it_runs_how_to_install_and_uninstall(tmp_path):
    tarball = _tarball(tmp_path)
    with tarfile.open(tarball) as tar:
        text = tar.extractfile(f"{tarball.name.removesuffix('.tar.gz')}/README.txt").read().decode()
    glibc = subprocess.run(["getconf", "GNU_LIBC_VERSION"], capture_output=True, text=True).stdout.split()[-1]
    assert f"glibc {glibc} or newer" in text  # the build machine's glibc is the floor
    if glibc == "2.36":
        assert "Debian 12 and later" in text and "Not Ubuntu 22.04" in text
    sections = [line for line in text.splitlines() if line and not line.startswith(" ")]
    assert sections[1:] == ["Requirements", "Install", "Disk use", "Uninstall", "Licences"]
    uninstall = text.split("\nUninstall\n")[1].split("\nLicences\n")[0]
    assert "~/.local/share/lm-explorer/uninstall.sh" in uninstall and "DIR/uninstall.sh" in uninstall
    assert "--caches" in uninstall
    assert "./install.sh --prefix DIR" in text and "Gemma Terms of Use" in text
