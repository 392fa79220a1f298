"""``lm-explorer --install-desktop-entry`` (for pip installs, whose wheel has no .desktop file): the entry is
packaging/lm-explorer.desktop with this install's launcher in Exec, validates, hands files over (%F), and
``--uninstall-desktop-entry`` removes what it wrote."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from explorer.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_template_is_the_packaged_entry():
    from explorer.desktop_entry import ENTRY

    assert ENTRY.format(exec="lm-explorer") == (ROOT / "packaging" / "lm-explorer.desktop").read_text()


def test_install_and_uninstall(tmp_path, monkeypatch, capsys):
    import explorer.desktop_entry as de

    data = tmp_path / "share"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    launcher = tmp_path / 'my "env"' / "bin" / "lm-explorer"
    launcher.parent.mkdir(parents=True)
    launcher.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS_OUT"\n')
    launcher.chmod(0o755)
    monkeypatch.setattr(de, "launcher", lambda: [str(launcher)])
    assert main(["--install-desktop-entry"]) == 0
    assert "Installed" in capsys.readouterr().out
    entry = data / "applications" / "lm-explorer.desktop"
    icon = data / "icons" / "hicolor" / "scalable" / "apps" / "lm-explorer.svg"
    assert icon.read_bytes() == (ROOT / "resources" / "icons" / "lm-explorer.svg").read_bytes()
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert check.returncode == 0 and not (check.stdout + check.stderr).strip()
    line = next(v for k, _, v in (ln.partition("=") for ln in entry.read_text().splitlines()) if k == "Exec")
    argv = shlex.split(line.replace("\\\\", "\\"))
    assert argv == [str(launcher), "%F"]
    files = [str(tmp_path / "a note.txt")]
    out = tmp_path / "args.txt"
    subprocess.run([argv[0], *files], env={"ARGS_OUT": str(out)}, check=True, timeout=60)
    assert out.read_text().splitlines() == files
    assert main(["--uninstall-desktop-entry"]) == 0
    assert not entry.exists() and not icon.exists()


def test_launcher_of_a_venv_is_its_script():
    import sys

    from explorer.desktop_entry import launcher

    beside = Path(sys.executable).parent / "lm-explorer"  # the venv's console script (make setup installs it)
    assert beside.is_file()
    assert launcher() == [str(beside)]
