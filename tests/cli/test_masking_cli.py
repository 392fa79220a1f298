"""``lm-explorer mask`` and ``objective``: the issue's JSON keys and its "Done when" figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.core.io.paths import resources_dir

ROOT = Path(__file__).resolve().parents[2]
LONG = str(resources_dir() / "samples" / "long-pretraining.txt")


@pytest.fixture
def models(monkeypatch, minilm, minilm_mlm, smollm2):
    """The session's loaded models instead of loading again for every command (loading has its own tests)."""
    import explorer.commands.masking as cmd

    table = {"minilm": minilm, "minilm-mlm": minilm_mlm, "smollm2": smollm2}
    monkeypatch.setattr(cmd, "load", lambda name: table[name])
    return table


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_span_samples_meet_the_issue(models, capsys):
    out = run_json(capsys, ["mask", "--file", LONG, "--strategy", "span", "--samples", "2000", "--json"])
    for key in ("tokens", "words", "masked", "actions", "input_tokens", "spans", "stats"):
        assert key in out
    stats = out["stats"]
    assert abs(stats["span_length_mean"] - 3.797) < 0.2
    assert abs(stats["mask_ratio_mean"] - 0.15) < 0.01
    assert all(int(k) <= 10 for k in stats["span_length_hist"])
    assert len(out["actions"]) == len(out["masked"])
    assert set(out["actions"]) <= {"mask", "random", "keep"}
    for s, e in out["spans"]:
        assert all(i in out["masked"] for i in range(s, e))


@pytest.mark.parametrize("strategy", ["wwm", "phrase", "entity", "span"])
@pytest.mark.parametrize("model", ["minilm", "smollm2"])
def test_never_part_of_a_word(models, capsys, strategy, model):
    text = Path(LONG).read_text(encoding="utf-8")[:1200]
    for seed in range(3):
        out = run_json(capsys, ["mask", text, "--model", model, "--strategy", strategy, "--seed", str(seed), "--json"])
        words, masked = out["words"], set(out["masked"])
        assert masked
        for w in {words[i] for i in masked}:
            assert all(i in masked for i, x in enumerate(words) if x == w), (strategy, model, w)
        assert all(words[i] is not None for i in masked)


def test_random_json_and_corruption(models, capsys):
    out = run_json(capsys, ["mask", "The cat sat on the mat near the door today.", "--seed", "3", "--ratio", "0.5",
                            "--json"])
    assert out["spans"] == []
    assert len(out["masked"]) == round(0.5 * 11)  # 11 non-special tokens
    for i, act in zip(out["masked"], out["actions"], strict=True):
        if act == "mask":
            assert out["input_tokens"][i] == "[MASK]"
        elif act == "keep":
            assert out["input_tokens"][i] == out["tokens"][i]


def test_text_output_and_exports(models, capsys, tmp_path):
    csv_path, freq_path = tmp_path / "span.csv", tmp_path / "freq.json"
    assert main(["mask", "--file", LONG, "--strategy", "span", "--samples", "200", "--export", str(csv_path),
                 "--export-frequency", str(freq_path)]) == 0
    out = capsys.readouterr()
    assert "mask ratio" in out.out and "theory" in out.out
    assert "first 512" in out.err  # the long text was truncated to the model's limit, and said so
    assert csv_path.read_text().startswith("series,span length (words),share of spans")
    assert len(json.loads(freq_path.read_text())["series"][0]["y"]) == 512


def test_objective_json(models, capsys):
    out = run_json(capsys, ["objective", "One sentence here. And a second one.", "--kind", "unilm-seq2seq",
                            "--seed", "2", "--json"])
    for key in ("input_tokens", "target_tokens", "attention_mask"):
        assert key in out
    m = out["attention_mask"]
    assert len(m) == len(m[0]) == len(out["input_tokens"])
    assert {v for row in m for v in row} == {0, 1}
    out = run_json(capsys, ["objective", "a b c d e f g", "--kind", "xlnet", "--json"])
    assert "query_mask" in out and sorted(out["order"]) == list(range(1, 8))


def test_objective_electra_with_causal_generator(models, capsys, tmp_path):
    png = tmp_path / "mask.png"
    out = run_json(capsys, ["objective", "The capital of France is Paris.", "--model", "smollm2", "--kind",
                            "electra", "--json", "--export", str(png)])
    assert "causal LM" in out["generator"]
    assert png.stat().st_size > 1000


def test_objective_electra_on_minilm_samples_from_minilm_mlm(models, capsys):
    out = run_json(capsys, ["objective", "The quick brown fox jumps over the lazy dog near the river bank.",
                            "--model", "minilm", "--kind", "electra", "--seed", "3", "--json"])
    assert out["generator_kind"] == "mlm" and out["generator"].startswith("minilm-mlm (masked LM")
    for i in out["sampled_positions"]:
        assert not out["input_tokens"][i].startswith("[")


def test_fill_every_mask_json(models, capsys):
    out = run_json(capsys, ["fill", "The capital of France is [MASK].", "--json"])  # default: minilm-mlm
    assert out["model"] == "minilm-mlm"
    assert len(out["masks"]) == 1
    m = out["masks"][0]
    assert out["tokens"][m["position"]] == "[MASK]" and len(m["candidates"]) == 5
    assert set(m["candidates"][0]) == {"token", "probability"}
    assert "paris" in [c["token"] for c in m["candidates"]]
    probs = [c["probability"] for c in m["candidates"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    out = run_json(capsys, ["fill", "The [MASK] sat on the [MASK].", "--top-k", "3", "--json"])
    assert [len(x["candidates"]) for x in out["masks"]] == [3, 3]
    assert run_json(capsys, ["fill", "A week has seven [MASK].", "--json"])["masks"][0]["candidates"][0]["token"] == "days"
    assert main(["fill", "The [MASK] sat on the mat."]) == 0
    assert "mask 1" in capsys.readouterr().out
    assert main(["fill", "The [MASK] sat on the mat.", "--model", "minilm"]) == 2
    assert "minilm-mlm" in capsys.readouterr().err  # the published encoder has no MLM head and says which has
    assert main(["fill", "No mask at all."]) == 2
    assert "[MASK]" in capsys.readouterr().err
    assert main(["fill", "The capital of France is [MASK].", "--model", "smollm2"]) == 2
    assert "mlm head" in capsys.readouterr().err


def test_fill_compare_both_sides_with_left_only(models, capsys):
    out = run_json(capsys, ["fill", "The capital of France is [MASK].", "--compare", "smollm2", "--json"])
    rows = out["rows"]
    assert [(r["model"], r["context"]) for r in rows] == [("minilm-mlm", "both sides"), ("smollm2", "left only")]
    assert rows[1]["seen"] == "The capital of France is"
    assert [c["token"] for c in rows[0]["candidates"]] == [c["token"] for c in out["fill"]["masks"][0]["candidates"]]
    assert main(["fill", "The capital of France is [MASK].", "--compare", "smollm2"]) == 0
    text = capsys.readouterr().out
    assert "both sides" in text and "left only" in text
    assert main(["fill", "The capital of France is [MASK].", "--compare", ","]) == 2
    assert "--compare" in capsys.readouterr().err
    assert main(["fill", "The capital of France is [MASK].", "--compare", "minilm"]) == 2
    assert "not a causal LM" in capsys.readouterr().err


def test_errors_are_one_line(models, capsys):
    assert main(["mask", "", "--strategy", "span"]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["mask", "text", "--p-mask", "0.95", "--p-random", "0.1"]) == 2
    assert "add up" in capsys.readouterr().err


def test_real_subprocess_end_to_end():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "explorer", "mask", "Whole word masking keeps words together.", "--strategy", "wwm",
         "--json"], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["strategy"] == "wwm" and out["tokens"][0] == "[CLS]"
