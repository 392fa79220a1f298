"""Issue 25: a fine-tune is saved as a transaction. A kill mid-save leaves the earlier result loadable and only a
temporary sibling (removed by the next save); one writer per folder; the base model's folder is refused; only
files the app wrote (manifest and sha256) are ever removed; a user's files survive any manifest."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from explorer.core.io.errors import InputError
from explorer.core.models.loading import load_model
from explorer.core.tuning import finetune as ft
from explorer.core.tuning import taskstore
from explorer.core.tuning.datasets import load_task_data

ROOT = Path(__file__).resolve().parents[2]
POS = ["good movie", "great film", "i love this movie", "really fun film", "very good", "love it"]
NEG = ["bad movie", "terrible film", "i hate this movie", "really boring film", "very bad", "hate it"]


@pytest.fixture(scope="module")
def tiny_base(tiny_factory):
    return load_model(str(tiny_factory("base")))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    p = tmp_path_factory.mktemp("data") / "tiny.csv"
    p.write_text("text,label\n" + "".join(f"{t},positive\n" for t in POS) + "".join(f"{t},negative\n" for t in NEG))
    return load_task_data(p, seed=0)


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _python(code: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_a_kill_during_a_resave_leaves_the_earlier_result_loadable(tiny_base, tiny_data, tmp_path):
    out = tmp_path / "run"
    ft.finetune(tiny_base, tiny_data, "full", epochs=1, out_dir=out)
    (out / "NOTES.md").write_text("mine")
    before = _snapshot(out)
    killed = _python(f"""
        import os, signal
        from pathlib import Path
        from explorer.core.tuning.taskstore import write_folder

        def write(tmp):
            (tmp / "head.safetensors").write_bytes(b"x" * 1000)
            (tmp / "config.json").write_text("{{}}")
            os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of the save

        write_folder(Path({str(out)!r}), write, {{"storage": "head"}})
    """)
    killed.communicate(timeout=120)
    assert killed.returncode == -9
    assert _snapshot(out) == before  # the earlier result, untouched
    assert load_model(str(out)).heads == ["sequence-classification"]
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".run.lmx-saving-")]
    assert len(leftovers) == 1
    r = ft.finetune(tiny_base, tiny_data, "frozen", out_dir=out)  # the same --out is accepted again
    assert set(r.files) == {"head.safetensors", "finetune.json"} and (out / "NOTES.md").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if ".lmx-" in p.name]  # the dead process's folder is cleaned


def test_the_folder_is_swapped_in_whole(tiny_base, tiny_data, tmp_path, monkeypatch):
    """Up to the swap ``out`` is the earlier result; a failure before it changes nothing."""
    out = tmp_path / "run"
    ft.finetune(tiny_base, tiny_data, "frozen", out_dir=out)
    before = _snapshot(out)

    def broken(tmp, target):
        assert _snapshot(target) == before  # everything new sits in the temporary folder so far
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(taskstore, "_swap_in", broken)
    with pytest.raises(InputError, match="No space left.*unchanged"):
        ft.finetune(tiny_base, tiny_data, "full", epochs=1, out_dir=out)
    assert _snapshot(out) == before and not [p for p in tmp_path.iterdir() if ".lmx-" in p.name]


def test_a_second_writer_is_refused(tiny_base, tiny_data, tmp_path):
    out = tmp_path / "run"
    holder = _python(f"""
        import sys, time
        from explorer.core.tuning.taskstore import out_lock
        with out_lock({str(out)!r}):
            print("held", flush=True)
            time.sleep(60)
    """)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match="Another fine-tune is saving into .*process"):
            ft.finetune(tiny_base, tiny_data, "frozen", out_dir=out)
        assert not out.exists()
    finally:
        holder.kill()
        holder.communicate()
    ft.finetune(tiny_base, tiny_data, "frozen", out_dir=out)  # free again once the holder is gone
    assert taskstore.read_meta(out)["storage"] == "head"


def test_the_base_model_folder_is_refused(tiny_base, tiny_data, tmp_path, capsys):
    base = tmp_path / "a"
    ft.finetune(tiny_base, tiny_data, "full", epochs=1, out_dir=base)
    before = _snapshot(base)
    lm = load_model(str(base))
    for out in (base, tmp_path):  # the folder itself, or one that holds it
        with pytest.raises(InputError, match="base model"):
            ft.finetune(lm, tiny_data, "full", epochs=1, out_dir=out)
    from explorer.cli import main

    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"{t},positive\n" for t in POS) + "".join(f"{t},negative\n" for t in NEG))
    code = main(["finetune", "--model", str(base), "--data", str(data), "--mode", "full", "--out", str(base)])
    err = capsys.readouterr().err
    assert code == 2 and "base model" in err and len(err.strip().splitlines()) == 1
    assert _snapshot(base) == before


@pytest.mark.parametrize("manifest", [
    {"storage": "full", "files": ["NOTES.md", "thesis.docx", "config.json", "vocab.txt", "finetune.json"]},
    {"storage": "full"},  # a legacy manifest: no file list, no hashes
    {"storage": "full", "files": ["thesis.docx", "config.json"], "sha256": {}},
])
def test_a_manifest_never_makes_user_files_the_apps(tiny_base, tiny_data, tmp_path, manifest):
    out = tmp_path / "run"
    out.mkdir()
    (out / "NOTES.md").write_text("notes")
    (out / "thesis.docx").write_bytes(b"PK thesis")
    (out / "config.json").write_text('{"mine": true}')
    (out / "vocab.txt").write_text("my words")
    manifest = dict(manifest)
    if "sha256" in manifest:  # a crafted manifest with the right hash of a user's file
        manifest["sha256"] = {"thesis.docx": hashlib.sha256(b"PK thesis").hexdigest()}
    (out / "finetune.json").write_text(json.dumps(manifest))
    mine = {k: v for k, v in _snapshot(out).items() if k != "finetune.json"}
    ft.finetune(tiny_base, tiny_data, "frozen", out_dir=out)  # writes head.safetensors + finetune.json only
    assert {k: v for k, v in _snapshot(out).items() if k in mine} == mine
    with pytest.raises(InputError, match="config.json.*did not write"):
        ft.finetune(tiny_base, tiny_data, "full", epochs=1, out_dir=out)  # would replace the user's config.json
    assert {k: v for k, v in _snapshot(out).items() if k in mine} == mine


def test_only_files_with_the_recorded_hash_are_replaced(tiny_base, tiny_data, tmp_path):
    out = tmp_path / "run"
    ft.finetune(tiny_base, tiny_data, "full", epochs=1, out_dir=out)
    meta = taskstore.read_meta(out)
    assert set(meta["sha256"]) == set(meta["files"]) - {"finetune.json"}
    (out / "vocab.txt").write_text("edited by hand")  # no longer what the app wrote
    ft.finetune(tiny_base, tiny_data, "frozen", out_dir=out)
    assert (out / "vocab.txt").read_text() == "edited by hand" and not (out / "model.safetensors").exists()


def test_leftovers_of_dead_processes_are_cleaned_and_live_ones_kept(tiny_base, tiny_data, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lmx-saving-k2j4h1").mkdir()  # what an older version left inside after a kill
    (out / ".lmx-saving-k2j4h1" / "model.safetensors").write_bytes(b"half")
    dead = tmp_path / ".run.lmx-saving-999999999-0a1b2c3d"
    live = tmp_path / f".run.lmx-saving-{os.getppid()}-0a1b2c3d"
    other = tmp_path / ".other.lmx-saving-999999999-0a1b2c3d"
    for p in (dead, live, other):
        p.mkdir()
    ft.finetune(tiny_base, tiny_data, "frozen", out_dir=out)  # not refused for the leftover inside
    assert not dead.exists() and live.exists() and other.exists()
    assert sorted(p.name for p in out.iterdir()) == ["finetune.json", "head.safetensors"]


def test_dead_assembly_parts_are_removed_and_live_ones_kept(tmp_path):
    from explorer.core.models.gguf import remove_dead_parts

    target = tmp_path / "gemma-3-270m.gguf"
    dead = tmp_path / "gemma-3-270m.gguf.part-999999999"
    live = tmp_path / f"gemma-3-270m.gguf.part-{os.getppid()}"
    for p in (dead, live):
        p.write_bytes(b"\0" * 1000)
    assert remove_dead_parts(target) == [dead]
    assert not dead.exists() and live.exists()

