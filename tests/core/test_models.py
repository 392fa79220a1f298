"""The model layer on the real bundled models and on tiny checkpoints."""

from __future__ import annotations

import pytest

from explorer.core.io.errors import ModelError
from explorer.core.models import catalog
from explorer.core.models.loading import describe, load_model


def test_minilm_card(minilm):
    card = minilm.card
    assert (card.kind, card.num_layers, card.num_heads, card.hidden_size) == ("encoder", 6, 12, 384)
    assert card.tokenizer_kind == "WordPiece"
    assert card.heads == []  # sentence-transformers ships no head: minilm-mlm is the one that fills masks
    assert 22_000_000 < card.num_parameters < 23_000_000
    assert card.max_positions == 512


def test_minilm_returns_attention(minilm):
    import torch

    enc = minilm.tokenizer("The dog barked.", return_tensors="pt")
    with torch.no_grad():
        out = minilm.model(**enc, output_attentions=True)
    assert len(out.attentions) == 6
    assert out.attentions[0].shape[1] == 12


def test_smollm2_card_and_cache(smollm2):
    from explorer.core.models.gguf import converted_folder

    card = smollm2.card
    assert card.kind == "decoder" and card.num_layers == 30
    assert 130e6 < card.num_parameters < 140e6
    assert card.tokenizer_kind == "byte-level BPE"
    assert "causal-lm" in card.heads
    assert converted_folder(smollm2.entry) is not None
    assert list(converted_folder(smollm2.entry).glob("*.safetensors"))


def test_describe_matches_loaded(minilm):
    card = describe("minilm")
    assert card.num_parameters == minilm.card.num_parameters


@pytest.mark.parametrize("head", ["mlm", "sequence-classification", "token-classification", "question-answering", "causal-lm"])
def test_tiny_heads_load(tiny_factory, head):
    folder = tiny_factory(head, labels=["NEG", "POS"] if "classification" in head else None)
    loaded = load_model(str(folder))
    assert head in loaded.card.heads
    assert loaded.card.hidden_size == 32
    assert type(loaded.model).__name__.endswith(
        {"mlm": "ForMaskedLM", "sequence-classification": "ForSequenceClassification",
         "token-classification": "ForTokenClassification", "question-answering": "ForQuestionAnswering",
         "causal-lm": "LMHeadModel"}[head]
    )


def test_not_a_model_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelError, match="not a model folder"):
        load_model(str(tmp_path))


def test_unknown_hub_id_offline():
    with pytest.raises(ModelError, match="offline|Hugging Face hub"):
        load_model("no-such-org/no-such-model-xyz")


def test_unknown_name():
    with pytest.raises(ModelError, match="Unknown model|not a model"):
        catalog.resolve("definitely not a model")


def test_add_user_folder(tiny_factory, data_dir):
    folder = tiny_factory("mlm")
    entry = catalog.add_user_folder(folder)
    assert entry.name in [e.name for e in catalog.list_models()]
    assert catalog.resolve(entry.name).location == str(folder.resolve())


def test_corrupt_weights(tiny_factory, tmp_path):
    import shutil

    folder = tmp_path / "corrupt"
    shutil.copytree(tiny_factory("mlm"), folder)
    (folder / "model.safetensors").write_bytes(b"this is not a safetensors file")
    with pytest.raises(ModelError, match="Could not load"):
        load_model(str(folder))


def test_concurrent_loads_are_serialised(tmp_path):
    """Two jobs loading at once (the window's start-up) both succeed and never run the loader together:
    transformers' lazy imports are not thread-safe."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import threading, time\n"
        "import explorer.core.models.loading as m\n"
        "inner = m._load_model\n"
        "active, peak, errors = [0], [0], []\n"
        "def counting(*a, **k):\n"
        "    active[0] += 1; peak[0] = max(peak[0], active[0])\n"
        "    try:\n"
        "        time.sleep(0.2)\n"
        "        return inner(*a, **k)\n"
        "    finally:\n"
        "        active[0] -= 1\n"
        "m._load_model = counting\n"
        "def go(name):\n"
        "    try:\n"
        "        m.load_model(name)\n"
        "    except Exception as e:\n"
        "        errors.append(repr(e))\n"
        "ts = [threading.Thread(target=go, args=(n,)) for n in ('minilm', 'minilm')]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print('peak', peak[0], 'errors', errors)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, LM_EXPLORER_DATA_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert "peak 1 errors []" in out.stdout, out.stdout + out.stderr
