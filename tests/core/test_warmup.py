"""The libraries' warm-up that keeps a model load from holding the GIL for long (explorer.core.models.warmup).

What it must do, not how fast: the import happens in separate steps (torch's native library first, through a
call that releases the GIL), the garbage collector is paused while the steps and a load run and is on again after,
the imported objects are frozen, a later load of a bundled model imports none of the heavy modules itself, and
the models loaded after it are the ones bare transformers loads (equal outputs).
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from explorer.core.models import warmup

ROOT = Path(__file__).resolve().parents[2]


def test_gc_paused_nests_across_threads_and_restores():
    assert gc.isenabled()
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with warmup.gc_paused():
            entered.set()
            release.wait(10)

    t = threading.Thread(target=other)
    with warmup.gc_paused():
        assert not gc.isenabled()
        t.start()
        assert entered.wait(10)
        with warmup.gc_paused():
            assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread's pause is still open
    release.set()
    t.join(10)
    assert gc.isenabled()


def test_gc_paused_leaves_a_disabled_collector_disabled():
    gc.disable()
    try:
        with warmup.gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_steps_split_the_imports_and_name_real_modules():
    steps = warmup.steps()
    kinds = [k for k, _ in steps]
    modules = [w for k, w in steps if k == "import"]
    assert [w for k, w in steps if k == "tokenizer"] == ["BertTokenizer", "TokenizersBackend", "GemmaTokenizer"]
    assert len(modules) == len(set(modules)) > 10  # one module per step
    if sys.platform.startswith("linux"):
        assert kinds[0] == "native" and steps[0][1].endswith("libtorch_cpu.so") and Path(steps[0][1]).is_file()
    assert modules.index("torch") < modules.index("transformers") < modules.index("transformers.modeling_utils")
    for name in warmup.BASE_MODULES:
        assert importlib.util.find_spec(name) is not None, name
    # the three bundled architectures' modeling and tokenizer modules
    for name in ("transformers.models.bert.modeling_bert", "transformers.models.llama.modeling_llama",
                 "transformers.models.gemma3.modeling_gemma3", "transformers.models.gemma.tokenization_gemma"):
        assert name in modules and importlib.util.find_spec(name) is not None, name


def test_open_native_library_reports_a_missing_file():
    assert warmup.open_native_library("/nonexistent/libnothing.so") is False


_FRESH = r"""
import gc, json, sys, threading
from pathlib import Path
from explorer.core.models import warmup
from explorer.core.io.errors import Cancelled

out = {"torch_at_start": "torch" in sys.modules}
native = [w for k, w in warmup.steps() if k == "native"]
if native:
    out["native_opened"] = warmup.open_native_library(native[0])
    out["native_mapped"] = Path(native[0]).name in Path("/proc/self/maps").read_text()
    out["torch_after_native"] = "torch" in sys.modules
stop = threading.Event()
stop.set()
try:
    warmup.warm_up(cancel=stop)
    out["cancel"] = "ignored"
except Cancelled:
    out["cancel"] = "raised"
out["warm_after_cancel"], out["gc_after_cancel"] = warmup.is_warm(), gc.isenabled()
seen = []
timings = warmup.warm_up(lambda f, m="": seen.append((f, gc.isenabled())))
out["steps_run"] = [name for name, _ in timings]
out["gc_during_warm_up"] = sorted({on for f, on in seen if f < 1.0})
out["last_report"] = seen[-1]
out["frozen"], out["gc_after_warm_up"] = gc.get_freeze_count(), gc.isenabled()
out["again"] = warmup.warm_up()

from explorer.core.models.gguf import converted_folder
from explorer.core.models.loading import load_model

before = set(sys.modules)
during = []
mini = load_model("minilm", progress=lambda f, m="": during.append(gc.isenabled()))
smol = load_model("smollm2", progress=lambda f, m="": during.append(gc.isenabled()))
heavy = ("torch", "transformers", "tokenizers", "safetensors", "accelerate", "scipy", "sympy", "gguf")
out["imported_by_loads"] = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in heavy)
out["gc_during_loads"], out["gc_after_loads"] = sorted(set(during)), gc.isenabled()

import torch
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

text = "The students read the lecture notes about pre-trained language models and their attention heads."
kw = {"attn_implementation": "eager", "dtype": torch.float32, "local_files_only": True}
bare_tok = AutoTokenizer.from_pretrained(mini.entry.location, local_files_only=True)
bare = AutoModel.from_pretrained(mini.entry.location, **kw).eval()
enc, bare_enc = mini.tokenizer(text, return_tensors="pt"), bare_tok(text, return_tensors="pt")
with torch.inference_mode():
    out["minilm_ids_equal"] = enc["input_ids"].tolist() == bare_enc["input_ids"].tolist()
    out["minilm_max_diff"] = float((mini.model(**enc).last_hidden_state - bare(**bare_enc).last_hidden_state).abs().max())
folder = str(converted_folder(smol.entry))
bare_tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
bare = AutoModelForCausalLM.from_pretrained(folder, **kw).eval()
enc, bare_enc = smol.tokenizer(text, return_tensors="pt"), bare_tok(text, return_tensors="pt")
with torch.inference_mode():
    out["smollm2_ids_equal"] = enc["input_ids"].tolist() == bare_enc["input_ids"].tolist()
    out["smollm2_max_diff"] = float((smol.model(**enc).logits - bare(**bare_enc).logits).abs().max())
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def fresh() -> dict:
    """The warm-up and two loads in a fresh process (this one has imported torch long ago)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", _FRESH], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line is not None, proc.stderr[-3000:]
    return json.loads(line[len("RESULT"):])


def test_torch_native_library_opens_before_torch_is_imported(fresh):
    assert fresh["torch_at_start"] is False
    if sys.platform.startswith("linux"):
        assert fresh["native_opened"] and fresh["native_mapped"] and fresh["torch_after_native"] is False


def test_warm_up_runs_every_step_once_with_the_collector_paused_then_freezes(fresh):
    assert fresh["cancel"] == "raised" and fresh["warm_after_cancel"] is False and fresh["gc_after_cancel"] is True
    assert fresh["steps_run"] == [w for _k, w in warmup.steps()]
    assert fresh["gc_during_warm_up"] == [False]
    assert fresh["last_report"] == [1.0, True]
    assert fresh["gc_after_warm_up"] is True and fresh["frozen"] > 100_000
    assert fresh["again"] == []  # idempotent: a load's own call costs nothing


def test_loads_after_the_warm_up_import_no_heavy_module_themselves(fresh):
    assert fresh["imported_by_loads"] == []
    assert fresh["gc_during_loads"] == [False] and fresh["gc_after_loads"] is True


def test_models_loaded_after_the_warm_up_equal_bare_transformers(fresh):
    assert fresh["minilm_ids_equal"] and fresh["smollm2_ids_equal"]
    assert fresh["minilm_max_diff"] == 0.0
    assert fresh["smollm2_max_diff"] == 0.0
