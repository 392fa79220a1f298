"""Every line of the README's command-line block runs as written, from another directory, against the wheel
install (the `installed` fixture): bundled data sets by name, the files each command says it writes, strict JSON.

The commands run in the README's order (the fine-tunes before the commands that use their folders) in one
working directory, with LM_EXPLORER_HOME in a temp folder whose converted-model cache is a copy of this
machine's (big files hard-linked, so `storage --clear converted` deletes the copy's links only).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def readme_commands() -> list[str]:
    """The lines of the ```bash block under '### Command line'."""
    section = README.read_text(encoding="utf-8").split("\n### Command line\n", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the Command line section has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


COMMANDS = readme_commands()


def test_the_block_is_lm_explorer_commands_that_need_no_checkout():
    assert len(COMMANDS) >= 20
    for line in COMMANDS:
        argv = shlex.split(line, comments=True)
        assert argv[0] == "lm-explorer" and len(argv) > 1, line
        assert not any(a.startswith(("resources/", "explorer/", "/tmp/", "path/to")) for a in argv), line
    # Every data set named in the block is one the project ships.
    from explorer.core.io.bundled_data import bundled_sets

    named = {a[i + 1] for a in map(lambda line: shlex.split(line, comments=True), COMMANDS)
             for i in range(len(a) - 1) if a[i] == "--data"}
    assert named and named <= set(bundled_sets())


def _copy_cache(src: Path, dst: Path) -> None:
    """The converted models, big files hard-linked (a copy of 1.6 GB would take minutes), small ones copied."""
    def link_or_copy(a: str, b: str) -> None:
        if os.path.getsize(a) > 1_000_000:
            try:
                os.link(a, b)
                return
            except OSError:
                pass
        shutil.copy2(a, b)

    dst.mkdir(parents=True)
    if not src.is_dir():
        return
    for item in src.iterdir():
        if item.is_dir():
            shutil.copytree(item, dst / item.name, copy_function=link_or_copy)
        elif item.suffix == ".json":
            shutil.copy2(item, dst / item.name)


@pytest.fixture(scope="module")
def workspace(installed, tmp_path_factory):
    from explorer.core.io.paths import cache_dir

    tmp = tmp_path_factory.mktemp("readme")
    home = tmp / "home"
    _copy_cache(cache_dir() / "converted", home / "cache" / "converted")
    cwd = tmp / "work"
    cwd.mkdir()
    (cwd / "notes.txt").write_text("The dog chased the cat across the garden.\n", encoding="utf-8")
    env = {k: v for k, v in installed["env"].items() if k != "LM_EXPLORER_DATA_DIR"}
    env.update(LM_EXPLORER_HOME=str(home), PATH=f"{installed['venv'] / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return {"cwd": cwd, "env": env, "home": home, "exe": str(installed["venv"] / "bin" / "lm-explorer")}


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def _check_written(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0, path
    head = path.read_bytes()[:200]
    if path.suffix == ".png":
        assert head.startswith(b"\x89PNG"), path
    elif path.suffix == ".svg":
        assert b"<svg" in path.read_bytes(), path


@pytest.mark.slow
@pytest.mark.parametrize("line", COMMANDS, ids=[f"{i:02d}-{' '.join(shlex.split(c, comments=True)[1:3])}" for i, c in
                                                enumerate(COMMANDS)])
def test_readme_command_runs_as_written(line, workspace):
    argv = shlex.split(line, comments=True)
    proc = subprocess.run([workspace["exe"], *argv[1:]], cwd=workspace["cwd"], env=workspace["env"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{line}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    if "--json" in argv:
        json.loads(proc.stdout)  # strict JSON, nothing else on standard output
    for option in ("--export", "--export-size"):
        if (name := _option(argv, option)) is not None:
            _check_written(workspace["cwd"] / name)
    if (out := _option(argv, "--out")) is not None:
        saved = json.loads((workspace["cwd"] / out / "finetune.json").read_text(encoding="utf-8"))
        assert saved and (workspace["cwd"] / out / "head.safetensors").is_file(), saved
    if argv[1:3] == ["storage", "--clear"]:
        left = [p for p in (workspace["home"] / "cache" / "converted").iterdir() if p.is_dir()]
        assert not left, left
    if argv[1] == "selftest":
        assert "selftest passed" in proc.stdout
