"""``lm-explorer head`` on every head type and ``lm-explorer finetune`` whose output folder runs with ``head``."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main
from explorer.core.io.paths import resources_dir


def _json(capsys):
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def sentiment_csv(tmp_path_factory):
    p = tmp_path_factory.mktemp("cli-data") / "s.csv"
    rows = [("good movie", "pos"), ("bad movie", "neg"), ("great film", "pos"), ("terrible film", "neg")] * 3
    p.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    return p


@pytest.mark.parametrize("mode", ["frozen", "adapter"])
def test_finetune_then_head_and_evaluate(capsys, tiny_factory, sentiment_csv, tmp_path, mode):
    base = str(tiny_factory("base"))
    out = tmp_path / mode
    code = main(["finetune", "--model", base, "--data", str(sentiment_csv), "--task", "classify", "--mode", mode,
                 "--epochs", "2", "--seed", "1", "--out", str(out), "--json"])
    assert code == 0
    r = _json(capsys)
    assert {"trainable_parameters", "weight_bytes", "stored_bytes", "history", "val_accuracy", "stopping_rule"} <= set(r)
    assert r["stored_bytes"] == sum(p.stat().st_size for p in out.iterdir())
    assert r["weight_bytes"] == 4 * r["costs"][mode]["stored_parameters"]
    assert r["val_accuracy"] == r["history"][-1]["val_accuracy"]
    assert main(["head", str(out), "--task", "classify", "good film", "--json"]) == 0
    h = _json(capsys)
    assert set(h["scores"]) == {"neg", "pos"} and h["label"] in h["scores"]
    assert sum(h["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    # options may come before the texts, and pair works on any classifier
    assert main(["head", str(out), "--json", "--task", "pair", "good film", "bad film"]) == 0
    assert _json(capsys)["text_pair"] == "bad film"
    # evaluate gives what head gives row by row
    assert main(["evaluate", str(out), "--data", str(sentiment_csv), "--json"]) == 0
    ev = _json(capsys)
    assert {"accuracy", "per_class", "confusion", "labels", "n", "macro_f1"} <= set(ev) and ev["n"] == 12
    rows = [line.split(",") for line in sentiment_csv.read_text().splitlines()[1:]]
    hits = 0
    for text, gold in rows:
        assert main(["head", str(out), "--task", "classify", text, "--json"]) == 0
        hits += _json(capsys)["label"] == gold
    assert ev["accuracy"] == pytest.approx(hits / len(rows))
    assert sum(map(sum, ev["confusion"])) == 12


def test_why_pretrain_exports_the_comparison(capsys, tiny_factory, sentiment_csv, tmp_path):
    png, data = tmp_path / "why.png", tmp_path / "why.json"
    assert main(["finetune", "--model", str(tiny_factory("base")), "--data", str(sentiment_csv), "--why-pretrain",
                 "--epochs", "2", "--export", str(png), "--json"]) == 0
    r = _json(capsys)
    assert r["pretrained"]["mode"] == "full" and r["scratch"]["mode"] == "scratch"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["finetune", "--model", str(tiny_factory("base")), "--data", str(sentiment_csv), "--why-pretrain",
                 "--epochs", "1", "--export", str(data)]) == 0
    names = [s["name"] for s in json.loads(data.read_text())["series"]]
    assert "scratch accuracy" in names and "pre-trained loss" in names
    assert "from scratch:" in capsys.readouterr().out


@pytest.mark.parametrize("extra", [
    ["--lr", "nan"], ["--lr", "-1"], ["--lr", "inf"], ["--lr", "0"], ["--lora-r", "0"], ["--epochs", "0"],
    ["--epochs", "-3"], ["--batch-size", "0"], ["--seed", "-1"], ["--out", "."], ["--out", "/proc/lmx-out"],
    ["--out", "BUSY"], ["--out", "FILE"],
])
def test_bad_values_fail_before_the_model_loads(capsys, sentiment_csv, tmp_path, monkeypatch, extra):
    (tmp_path / "BUSY").mkdir()
    (tmp_path / "BUSY" / "NOTES.md").write_text("mine")
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "cwd-notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    args = ["finetune", "--model", "no-such-model", "--data", str(sentiment_csv)]
    args += extra if "--out" in extra else extra + ["--out", str(tmp_path / "new")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("lm-explorer: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "no-such-model" not in err  # refused before any model was looked up
    assert (tmp_path / "BUSY" / "NOTES.md").read_text() == "mine" and (tmp_path / "cwd-notes.txt").is_file()


def test_finetune_plan_text(capsys):
    assert main(["finetune", "--model", "minilm", "--data", str(resources_dir() / "data" / "sentiment.csv"),
                 "--plan"]) == 0
    out = capsys.readouterr().out
    assert "frozen" in out and "90.86 MB" in out and "adapter" in out


def test_head_qa_tokens_fill_generate(capsys, tiny_factory, tmp_path):
    qa = str(tiny_factory("question-answering"))
    assert main(["head", qa, "--task", "qa", "where does john live?", "john lives in paris", "--json",
                 "--max-answer-len", "2"]) == 0
    r = _json(capsys)
    assert r["answer"] == r["spans"][0]["text"] and len(r["start_probs"]) == 4
    tok = str(tiny_factory("token-classification", ["O", "B-PER"]))
    assert main(["head", tok, "john lives in paris", "--json"]) == 0
    assert [t["token"] for t in _json(capsys)["tokens"]] == ["john", "lives", "in", "paris"]
    mlm = str(tiny_factory("mlm"))
    assert main(["head", mlm, "--task", "fill-mask", "the [MASK] is good", "--json", "--top-k", "2"]) == 0
    assert len(_json(capsys)["masks"][0]["candidates"]) == 2
    s2s = str(tiny_factory("seq2seq-lm"))
    assert main(["head", s2s, "--task", "generate", "the movie", "--max-new-tokens", "3", "--temperature", "1",
                 "--json"]) == 0
    assert _json(capsys)["kind"] == "seq2seq-lm"
    csv_path = tmp_path / "spans.csv"
    assert main(["head", qa, "--task", "qa", "who?", "john lives in paris", "--export", str(csv_path)]) == 0
    assert csv_path.read_text().startswith("series,")


def test_errors_are_one_line(capsys, sentiment_csv):
    assert main(["head", "minilm", "--task", "classify", "hello"]) == 2
    err = capsys.readouterr().err
    assert "needs a sequence-classification head" in err and err.count("\n") == 1
    assert main(["finetune", "--data", str(sentiment_csv)]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["evaluate", "minilm", "--data", str(sentiment_csv)]) == 2
    err = capsys.readouterr().err
    assert "needs a sequence-classification head" in err and err.count("\n") == 1


def test_finetune_qa_on_the_bundled_set_then_head_and_evaluate(capsys, tiny_factory, tmp_path):
    """`finetune --task qa --data qa` (the bundled set by name), then `head --task qa` and `evaluate --data qa-test`
    (SQuAD exact match / F1 over the held-out split)."""
    base = str(tiny_factory("base"))
    out = tmp_path / "qa"
    code = main(["finetune", "--model", base, "--data", "qa", "--task", "qa", "--mode", "adapter", "--epochs", "1",
                 "--out", str(out), "--json"])
    assert code == 0
    r = _json(capsys)
    assert r["task"] == "qa" and set(r["scores"]) == {"exact_match", "f1"} and r["val_rows"] > 0
    assert r["stored_bytes"] == sum(p.stat().st_size for p in out.iterdir())
    assert main(["head", str(out), "--task", "qa", "Where was Ada born?", "Ada was born in London.", "--json"]) == 0
    h = _json(capsys)
    assert h["answer"] and h["answer"] in "Ada was born in London." and len(h["start_probs"]) == len(h["tokens"])
    assert main(["evaluate", str(out), "--data", "qa-test", "--json"]) == 0
    e = _json(capsys)
    assert e["n"] >= 100 and 0.0 <= e["exact_match"] <= e["f1"] <= 1.0
    assert len(e["predictions"]) == e["n"]


def test_qa_refuses_scratch_and_unknown_data(capsys, tiny_factory, tmp_path):
    base = str(tiny_factory("base"))
    assert main(["finetune", "--model", base, "--data", "qa", "--mode", "scratch", "--out", str(tmp_path / "x")]) == 2
    assert "frozen, full, adapter" in capsys.readouterr().err
    assert main(["finetune", "--model", base, "--data", "no-such-set", "--out", str(tmp_path / "y")]) == 2
    assert "bundled: " in capsys.readouterr().err


def test_finetune_seq2seq_both_designs_then_head_and_evaluate(capsys, tiny_factory, tmp_path):
    """`finetune --task seq2seq --data dates` trains v1 and v2 on the same pairs, exports both curves, saves both;
    `head` generates from a saved design and `evaluate` scores it on the held-out file (exact match, chrF)."""
    out = tmp_path / "s2s"
    chart = tmp_path / "curves.json"
    code = main(["finetune", "--task", "seq2seq", "--data", "dates", "--model", str(tiny_factory("base")),
                 "--decoder", str(tiny_factory("causal-lm")), "--steps", "2", "--eval-every", "1",
                 "--batch-size", "4", "--val-fraction", "0.02", "--out", str(out), "--export", str(chart), "--json"])
    assert code == 0
    r = _json(capsys)
    assert set(r) == {"v1", "v2"}
    for d in ("v1", "v2"):
        assert [p["step"] for p in r[d]["curve"]] == [0, 1, 2]
        assert r[d]["stored_bytes"] == sum(p.stat().st_size for p in (out / d).iterdir())
    assert r["v2"]["stored_bytes"] < r["v1"]["stored_bytes"]  # an adapter against a whole encoder-decoder
    exported = json.loads(chart.read_text())
    assert "v1 exact match" in json.dumps(exported) and "v2 chrF" in json.dumps(exported)
    assert main(["head", str(out / "v1"), "the first of May nineteen ninety-nine", "--json"]) == 0
    h = _json(capsys)
    assert h["design"] == "v1" and isinstance(h["output"], str)
    assert main(["evaluate", str(out / "v2"), "--data", "dates-test", "--json"]) == 0
    e = _json(capsys)
    assert e["n"] >= 100 and 0.0 <= e["exact_match"] <= 1.0 and 0.0 <= e["chrf"] <= 1.0
