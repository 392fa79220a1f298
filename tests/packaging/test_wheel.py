"""A non-editable install (the wheel, built and installed by the `installed` fixture in conftest.py) finds its
resources from any directory: tasks, samples, data sets, similarity's reference sentences, the Samples menu."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
A = "We sat on the bank of the river."
B = "She went to the bank to deposit her money."


def _run(installed, argv: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=installed["cwd"], env=installed["env"], capture_output=True, text=True,
                          timeout=timeout)


def test_wheel_carries_every_resource(installed):
    import zipfile

    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    on_disk = {"explorer/" + p.relative_to(ROOT).as_posix() for p in (ROOT / "resources").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert on_disk and on_disk <= names, sorted(on_disk - names)


def test_wheel_carries_the_licence(installed):
    import zipfile

    wheel = zipfile.ZipFile(installed["wheel"])
    licence = [n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert len(licence) == 1
    assert wheel.read(licence[0]) == (ROOT / "LICENSE").read_bytes()
    metadata = wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata
    assert "Requires-Python: <3.15,>=3.11" in metadata or "Requires-Python: >=3.11,<3.15" in metadata


def test_installed_resources_from_another_directory(installed):
    code = (
        "import json, explorer\n"
        "from explorer.core.io.paths import resources_dir\n"
        "from explorer.core.prompting.tasks import load_task\n"
        "from explorer.core.inspect.embeddings import load_reference_texts\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from explorer.gui.context import AppContext\n"
        "from explorer.gui.widgets.text_input import TextInput\n"
        "box = TextInput(AppContext())\n"
        "r = resources_dir()\n"
        "print(json.dumps({'package': explorer.__file__, 'resources': str(r),\n"
        "  'samples': sorted(p.name for p in (r / 'samples').iterdir()),\n"
        "  'data': sorted(p.name for p in (r / 'data').iterdir()),\n"
        "  'sentiment': len(load_task('sentiment').items), 'references': len(load_reference_texts()),\n"
        "  'menu_enabled': box.samples_btn.isEnabled(),\n"
        "  'menu': [a.text() for a in box.samples_btn.menu().actions()]}))\n"
    )
    proc = _run(installed, [str(installed["python"]), "-c", code])
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["package"].startswith(str(installed["venv"]))  # the wheel's copy, not the checkout
    assert out["resources"].startswith(str(installed["venv"]))
    assert out["samples"] == sorted(p.name for p in (ROOT / "resources/samples").iterdir())
    assert out["data"] == sorted(p.name for p in (ROOT / "resources/data").iterdir())
    sentiment_lines = (ROOT / "resources/tasks/sentiment.jsonl").read_text(encoding="utf-8").splitlines()
    assert out["sentiment"] == len([line for line in sentiment_lines if line.strip()])
    presets = json.loads((ROOT / "resources/presets/embeddings.json").read_text(encoding="utf-8"))
    assert out["references"] == len(presets["reference"]) > 0
    assert out["menu_enabled"] and len(out["menu"]) == len(out["samples"])


def test_installed_cli_similarity_uses_the_reference_sentences(installed, minilm):
    from explorer.core.inspect.embeddings import Context, compare_contexts

    proc = _run(installed, [str(installed["venv"] / "bin" / "lm-explorer"), "similarity", "--model", "minilm",
                            "--a", A, "--word-a", "bank", "--b", B, "--json"])
    assert proc.returncode == 0, proc.stderr
    got = np.array(json.loads(proc.stdout)["baseline"])
    presets = json.loads((ROOT / "resources/presets/embeddings.json").read_text(encoding="utf-8"))
    contexts = [Context(A, "bank", 0), Context(B, "bank", 0)]
    with_refs = np.array(compare_contexts(minilm, contexts, reference=presets["reference"], seed=0).baseline)
    without = np.array(compare_contexts(minilm, contexts, reference=[], seed=0).baseline)
    assert np.allclose(got, with_refs, atol=1e-4), (got, with_refs)
    assert not np.allclose(got, without, atol=1e-3)


def test_installed_cli_prompt_builtin_task(installed):
    proc = _run(installed, [str(installed["venv"] / "bin" / "lm-explorer"), "prompt", "--task", "sentiment",
                            "--model", "smollm2", "--score", "--json"])
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["task"] == "sentiment" and out["mode"] == "score"
    assert out["prompt"].startswith("Is each review positive or negative?")
    assert out["output"] in ("positive", "negative") and out["expected"] in ("positive", "negative")
    assert {s["option"].strip() for s in out["scores"]} == {"positive", "negative"}
