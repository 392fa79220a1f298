"""``lm-explorer shrink``: the same figures as the core functions, as JSON and a chart export; errors are one line."""

from __future__ import annotations

import csv
import json

from explorer.cli import main


def test_shrink_quantize_json_and_chart(minilm, tmp_path, capsys):
    texts = tmp_path / "s.txt"
    texts.write_text("The film was a delight.\nThe food was cold and the service slow.\n", encoding="utf-8")
    out = tmp_path / "q.csv"
    assert main(["shrink", "quantize", "--model", "minilm", "--file", str(texts), "--json", "--export", str(out)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["inputs"] == 2 and r["int8"]["bytes_on_disk"] < r["float32"]["bytes_on_disk"]
    rows = list(csv.reader(out.open(encoding="utf-8")))
    # The chart's int8 bars are the JSON's ratios (memory, disk, time).
    values = [float(v) for row in rows for v in row[1:] if v.replace(".", "", 1).replace("e-", "", 1).isdigit()]
    ratio = r["int8"]["bytes_on_disk"] / r["float32"]["bytes_on_disk"]
    assert any(abs(v - ratio) < 1e-6 for v in values)


def test_shrink_distill_lineage_json(capsys):
    assert main(["shrink", "distill", "--model", "minilm", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["comparison"] is None
    assert r["lineage"]["summary"].startswith("a distilled model")
    assert r["lineage"]["steps"][0]["name"] == "nreimers/MiniLM-L6-H384-uncased"


def test_shrink_prune_bad_data_is_one_line(capsys):
    assert main(["shrink", "prune", "--data", "no-such-set"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lm-explorer: No data file 'no-such-set'") and "\n" not in err


def test_shrink_needs_what(capsys):
    assert main(["shrink"]) == 2
    assert "shrink" in capsys.readouterr().err


def test_shrink_sweep_refuses_an_encoder(capsys):
    assert main(["shrink", "sweep", "--model", "minilm", "--limit", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "decoder" in err and "\n" not in err


def test_shrink_sweep_json_details(smollm2, capsys):
    assert main(["shrink", "sweep", "--model", "smollm2", "--shots", "0", "--limit", "2", "--json", "--details"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in doc["results"]] == ["smollm2", "smollm2 (int8)"]
    for row in doc["results"]:
        assert row["correct"] == sum(d["correct"] for d in row["details"]) and row["n"] == len(row["details"]) == 2
