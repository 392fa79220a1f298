"""``lm-explorer attention / similarity / embed``: JSON equals bare transformers, exports are written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from explorer.cli import main


@pytest.fixture
def use_loaded(monkeypatch, minilm, request):
    """Hand the session's loaded models to the CLI instead of loading again (the loading is tested elsewhere)."""
    models = {"minilm": minilm}

    def fake_load(name, trust_remote_code=False):
        if name not in models:
            models[name] = request.getfixturevalue(name)
        return models[name]

    monkeypatch.setattr("explorer.commands.attention.load", fake_load)
    return models


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_attention_json_equals_bare_encoder(use_loaded, minilm, capsys):
    text, pair = "The bank of the river.", "She deposits money."
    assert main(["attention", text, "--pair", pair, "--model", "minilm", "--json"]) == 0
    out = _json(capsys)
    enc = minilm.tokenizer(text, pair, return_tensors="pt")
    with torch.no_grad():
        bare = minilm.model(**enc, output_attentions=True)
    assert out["tokens"] == minilm.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    att = np.array(out["attentions"])
    assert att.shape == (6, 12, len(out["tokens"]), len(out["tokens"]))
    np.testing.assert_allclose(att, torch.stack([a[0] for a in bare.attentions]).numpy(), atol=1e-5)
    assert out["segment_ids"][-1] == 1

    assert main(["attention", text, "--model", "minilm", "--layer", "3", "--head", "7", "--json"]) == 0
    one = _json(capsys)
    enc = minilm.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        bare = minilm.model(**enc, output_attentions=True)
    np.testing.assert_allclose(np.array(one["attentions"]), bare.attentions[3][0, 7].numpy(), atol=1e-5)


@pytest.mark.slow
def test_attention_json_equals_bare_decoder(use_loaded, smollm2, capsys):
    text = "The cat sat on the mat."
    assert main(["attention", text, "--model", "smollm2", "--layer", "-1", "--json"]) == 0
    out = _json(capsys)
    enc = smollm2.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        bare = smollm2.model(**enc, output_attentions=True)
    np.testing.assert_allclose(np.array(out["attentions"]), bare.attentions[-1][0].numpy(), atol=1e-5)


def test_attention_text_and_exports(use_loaded, tmp_path, capsys):
    assert main(["attention", "The bank of the river.", "--layer", "1", "--head", "rollout"]) == 0
    text = capsys.readouterr().out
    assert "layer 1, rollout" in text and "river" in text
    csv_path, png_path = tmp_path / "att.csv", tmp_path / "att.png"
    assert main(["attention", "The bank of the river.", "--hide-special", "--export", str(csv_path)]) == 0
    rows = csv_path.read_text().splitlines()
    assert "[CLS]" not in rows[0] and len(rows) == 7  # header + 6 tokens
    assert main(["attention", "The bank of the river.", "--threshold", "0.8", "--export", str(png_path)]) == 0
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_attention_bad_input(use_loaded, capsys):
    assert main(["attention", "hello", "--layer", "12"]) == 2
    assert "Layer 12 does not exist" in capsys.readouterr().err
    assert main(["attention", "  "]) == 2
    assert "empty" in capsys.readouterr().err


def test_similarity_bank_falls_across_layers(use_loaded, tmp_path, capsys):
    args = ["similarity", "--model", "minilm", "--a", "We sat on the bank of the river.", "--word-a", "bank",
            "--b", "She went to the bank to deposit her money.", "--word-b", "bank"]
    assert main(args + ["--json"]) == 0
    out = _json(capsys)
    layers = np.array(out["layers"])
    assert len(layers) == 7 and len(out["baseline"]) == 7
    assert layers[-1] < layers[0] - 0.1 and layers[-3:].mean() < layers[:3].mean()
    svg = tmp_path / "sim.svg"
    assert main(args + ["--export", str(svg)]) == 0
    assert "<svg" in svg.read_text()[:2000]
    assert "baseline" in capsys.readouterr().out
    assert main(args[:-2] + ["--word-b", "zebra"]) == 2
    assert "does not occur" in capsys.readouterr().err


def test_embed_corpus(use_loaded, tmp_path, capsys):
    river = tmp_path / "river.txt"
    money = tmp_path / "money.txt"
    river.write_text("The bank of the river was muddy. The river bank flooded.", encoding="utf-8")
    money.write_text("He robbed a bank. The bank lent him money.", encoding="gb18030")
    out_csv = tmp_path / "embed.csv"
    assert main(["embed", str(river), str(money), "--word", "bank", "--json", "--export", str(out_csv)]) == 0
    out = _json(capsys)
    assert len(out["points"]) == 4 and out["layer"] == 6 and out["method"] == "pca"
    assert {p["group"] for p in out["points"]} == {str(river), str(money)}
    assert out["points"][2]["neighbours"][0]["index"] == 3
    assert out_csv.read_text().count("\n") == 5


def test_similarity_two_senses_preset_and_views(use_loaded, tmp_path, capsys):
    args = ["similarity", "--preset", "bank: river twice", "--view", "centred"]
    assert main(args + ["--json"]) == 0
    out = _json(capsys)
    assert out["view"] == "centred" and [o["sense"] for o in out["occurrences"]] == ["river", "river", "money", "money"]
    assert {p["relation"] for p in out["pairs"]} == {"same", "different"}
    for view in ("raw", "centred", "minus-baseline"):
        v = out["views"][view]
        best = v["best_layer"]
        assert v["same_sense"][best] > v["different_sense"][best], view
    assert "different sentences and different words" in out["baseline_definition"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "same sense" in text and "best layer" in text
    # extra sentences with their sense on the command line
    assert main(["similarity", "--model", "minilm", "--context", "The bat flew out of the cave.|bat|animal",
                 "--context", "A bat hunted moths at night.|bat|animal", "--context",
                 "He swung the bat at the ball.|bat|sport", "--json"]) == 0
    out = _json(capsys)
    assert [p["relation"] for p in out["pairs"]] == ["same", "different", "different"]
    assert main(["similarity", "--preset", "no such preset"]) == 2
    assert "No preset" in capsys.readouterr().err
    assert main(["similarity", "--model", "minilm", "--context", "only one|one"]) == 2
    assert "at least two" in capsys.readouterr().err
