"""scripts/synth_everyday.py: the prompts it samples from, and a resume that skips what is on file."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synth():
    spec = importlib.util.spec_from_file_location("synth_everyday", ROOT / "scripts" / "synth_everyday.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["synth_everyday"] = module
    spec.loader.exec_module(module)
    return module


def test_every_subject_in_every_form_once(synth):
    prompts = synth.prompts()
    assert len(prompts) == len(synth.SUBJECTS) * len(synth.FORMS) + len(synth.PLACES) * len(synth.PLACE_FORMS) == 1340
    assert len({pid for pid, _ in prompts}) == len(prompts) and len({p for _, p in prompts}) == len(prompts)
    assert all("{s}" not in p for _, p in prompts)


def test_the_first_corpus_keeps_its_ids(synth):
    """Subjects and forms were appended, so a file written from the first 84 x 8 prompts resumes without a repeat."""
    prompts = dict(synth.prompts())
    assert prompts["0-0"] == "Write two sentences of an honest review of a coffee shop."
    assert prompts["83-7"] == "Write a short, positive review of a printer."
    assert prompts["p0-0"] == "Write three simple facts about France."


def test_a_finished_file_is_not_generated_again(synth, tmp_path, capsys):
    """Resuming skips the ids already on file: with every prompt of round 0 there, nothing loads or runs."""
    out = tmp_path / "everyday.jsonl"
    out.write_text("".join(json.dumps({"id": f"{pid}-r0", "prompt": p, "text": "A day."}) + "\n"
                           for pid, p in synth.prompts()), encoding="utf-8")
    assert synth.main(["--out", str(out), "--rounds", "1"]) == 0
    assert "1340 generations on file, 0 to go" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["--rounds", "0"], ["--batch", "-1"], ["--minutes", "nan"], ["--threads", "x"]])
def test_bad_values_are_one_line_errors(synth, tmp_path, capsys, args):
    with pytest.raises(SystemExit) as stop:
        synth.main(["--out", str(tmp_path / "e.jsonl"), *args])
    assert stop.value.code == 2 and "error: argument" in capsys.readouterr().err


def test_an_out_that_is_a_folder_or_not_its_file_is_refused_and_kept(synth, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        synth.main(["--out", str(tmp_path)])
    assert stop.value.code == 2 and "not a regular file" in capsys.readouterr().err
    notes = tmp_path / "notes.txt"
    notes.write_text("my own notes\n", encoding="utf-8")
    with pytest.raises(SystemExit) as stop:
        synth.main(["--out", str(notes)])
    assert stop.value.code == 2 and "not one of this script's" in capsys.readouterr().err
    assert notes.read_text(encoding="utf-8") == "my own notes\n"  # nothing appended, nothing deleted
