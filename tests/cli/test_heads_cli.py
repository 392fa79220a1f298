"""``lm-explorer head`` on every head type and ``lm-explorer finetune`` whose output folder runs with ``head``."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main
from explorer.core.paths import resources_dir


def _json(capsys):
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def sentiment_csv(tmp_path_factory):
    p = tmp_path_factory.mktemp("cli-data") / "s.csv"
    rows = [("good movie", "pos"), ("bad movie", "neg"), ("great film", "pos"), ("terrible film", "neg")] * 3
    p.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    return p


@pytest.mark.parametrize("mode", ["frozen", "adapter"])
def test_finetune_then_head(capsys, tiny_factory, sentiment_csv, tmp_path, mode):
    base = str(tiny_factory("base"))
    out = tmp_path / mode
    code = main(["finetune", "--model", base, "--data", str(sentiment_csv), "--task", "classify", "--mode", mode,
                 "--epochs", "2", "--seed", "1", "--out", str(out), "--json"])
    assert code == 0
    r = _json(capsys)
    assert {"trainable_parameters", "stored_bytes", "history", "val_accuracy"} <= set(r)
    assert len(r["history"]) == 2 and set(r["history"][0]) >= {"loss", "val_accuracy"}
    assert r["val_accuracy"] == r["history"][-1]["val_accuracy"]
    assert main(["head", str(out), "--task", "classify", "good film", "--json"]) == 0
    h = _json(capsys)
    assert set(h["scores"]) == {"neg", "pos"} and h["label"] in h["scores"]
    assert sum(h["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    # options may come before the texts, and pair works on any classifier
    assert main(["head", str(out), "--json", "--task", "pair", "good film", "bad film"]) == 0
    assert _json(capsys)["text_pair"] == "bad film"


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
    assert "no task head" in err and err.count("\n") == 1
    assert main(["finetune", "--data", str(sentiment_csv)]) == 2
    assert "--out" in capsys.readouterr().err
