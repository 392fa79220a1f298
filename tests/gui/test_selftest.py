"""``lm-explorer selftest FILE``: the window opens the file, loads MiniLM and draws its attention; a step that
does not happen is a one-line error with exit 2 (the bundle's smoke run relies on both)."""

from __future__ import annotations

import json

from explorer.cli import main


def test_selftest_opens_the_file_and_draws_attention(qapp, data_dir, tmp_path, capsys):
    text = tmp_path / "note.txt"
    text.write_text("The dog chased the cat across the garden.\n", encoding="utf-8")
    shot = tmp_path / "window.png"
    assert main(["selftest", str(text), "--screenshot", str(shot), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "minilm" and out["layers"] == 6
    # [CLS] + 9 word pieces + [SEP] (the head view keeps special tokens by default)
    assert out["tokens"] == 11 and out["heads_drawn"] >= 1
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_selftest_reports_a_model_that_does_not_load(qapp, data_dir, tmp_path, capsys):
    text = tmp_path / "note.txt"
    text.write_text("Some text.\n", encoding="utf-8")
    assert main(["selftest", str(text), "--model", str(tmp_path / "no-such-model")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lm-explorer: selftest failed: loading") and err.count("\n") == 1
