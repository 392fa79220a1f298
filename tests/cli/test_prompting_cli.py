"""``lm-explorer prompt`` and ``lm-explorer sweep`` on the bundled SmolLM2 (small limits)."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main


@pytest.fixture(autouse=True)
def _model_loaded_once(smollm2, monkeypatch):
    """Reuse the session's SmolLM2 instead of loading it again for each command."""
    import explorer.commands.prompting as cmd

    monkeypatch.setattr(cmd, "load", lambda name, trust_remote_code=False: smollm2)


def test_sweep_json_has_the_issue_keys(capsys, tmp_path):
    out_csv = tmp_path / "sweep.csv"
    code = main(["sweep", "--model", "smollm2", "--task", "sentiment", "--shots", "0,1", "--limit", "3",
                 "--draws", "1", "--json", "--export", str(out_csv)])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["shots"] for r in data["results"]] == [0, 1]
    for r in data["results"]:
        assert {"shots", "accuracy", "ci_low", "ci_high", "n"} <= set(r)
        assert r["n"] == 3 and 0 <= r["ci_low"] <= r["accuracy"] <= r["ci_high"] <= 1
    assert data["mode"] == "score" and data["settings"]["limit"] == 3
    lines = out_csv.read_text().splitlines()
    assert lines[0].startswith("series,") and len(lines) == 1 + 2 + 2  # header, two K, chance line


def test_prompt_json_generates_and_judges(capsys):
    code = main(["prompt", "--task", "addition", "--shots", "2", "--max-new-tokens", "5", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["prompt"].count("\nA: ") == 2 and data["prompt"].endswith("\nA:")
    assert data["n_tokens"] > 10 and data["context_length"] == 8192
    assert data["mode"] == "generate" and "\n" not in data["output"]
    assert data["correct"] == (data["output"].strip() == data["expected"])
    assert data["steps"] and len(data["steps"][0]["top"]) == 5


def test_prompt_score_mode_and_free_query(capsys):
    assert main(["prompt", "--task", "sentiment", "--score", "--query", "I loved it, wonderful!", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["output"] in ("positive", "negative")
    assert {o["option"] for o in data["scores"]} == {" positive", " negative"}
    assert data["prompt"].endswith("Review: I loved it, wonderful!\nSentiment:")
    assert main(["prompt", "--query", "The capital of France is", "--max-new-tokens", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["prompt"] == "The capital of France is" and data["n_new_tokens"] <= 3


def test_user_data_file(capsys, tmp_path):
    f = tmp_path / "mood.csv"
    f.write_text("text,label\nI am happy,happy\nI am sad,sad\nwhat a joy,happy\nso gloomy,sad\nbright day,happy\n")
    assert main(["sweep", "--data", str(f), "--shots", "0", "--limit", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["task"] == "mood" and data["results"][0]["n"] == 2


def test_bundled_data_set_by_name_from_another_directory(capsys, tmp_path, monkeypatch):
    """`--data sentiment` is the bundled resources/data/sentiment.csv, whatever the working directory."""
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "--data", "sentiment", "--shots", "0", "--limit", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["task"] == "sentiment" and data["mode"] == "score" and data["results"][0]["n"] == 2
    assert main(["prompt", "--data", "entailment", "--shots", "1", "--score", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["output"] in ("entailment", "neutral", "contradiction") and "Text pair: " in data["prompt"]
    assert main(["sweep", "--data", "no-such-set", "--shots", "0"]) == 2
    assert "no bundled set of that name (bundled: dates, dates-test, entailment" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sweep", "--task", "multiplication"], "Unknown task"),
        (["sweep", "--task", "qa", "--shots", "0,x"], "whole numbers"),
        (["sweep", "--task", "nli", "--limit", "0"], "--limit"),
        (["prompt", "--task", "addition", "--score"], "label set"),
        (["prompt"], "--task, --data or --query"),
        (["sweep", "--task", "sentiment", "--shots", "60"], "not enough"),
    ],
)
def test_errors_are_messages(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_sweep_over_two_models_gives_the_size_chart(capsys, tmp_path, monkeypatch, smollm2, gemma3):
    import explorer.commands.prompting as cmd

    models = {"smollm2": smollm2, "gemma3": gemma3}
    monkeypatch.setattr(cmd, "load", lambda name, trust_remote_code=False: models[name])
    size_png, size_csv = tmp_path / "size.png", tmp_path / "size.csv"
    code = main(["sweep", "--model", "smollm2,gemma3", "--task", "qa", "--shots", "0,1", "--limit", "2",
                 "--draws", "1", "--json", "--export-size", str(size_png)])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "smollm2,gemma3" and [m["model"] for m in data["models"]] == ["smollm2", "gemma3"]
    assert [(r["model"], r["shots"]) for r in data["results"]] == [
        ("smollm2", 0), ("smollm2", 1), ("gemma3", 0), ("gemma3", 1)]
    for r in data["results"]:
        card = models[r["model"]].card
        assert (r["parameters"], r["parameters_non_embedding"]) == (card.num_parameters,
                                                                    card.num_parameters_non_embedding)
    assert size_png.stat().st_size > 1000
    assert main(["sweep", "--model", "smollm2,gemma3", "--task", "qa", "--shots", "0", "--limit", "1",
                 "--draws", "1", "--size-axis", "non_embedding", "--export-size", str(size_csv)]) == 0
    lines = size_csv.read_text().splitlines()
    assert lines[0].startswith("series,parameters without embeddings") and len(lines) == 3
    assert main(["sweep", "--model", "smollm2,smollm2", "--task", "qa"]) == 2
    assert "twice" in capsys.readouterr().err
