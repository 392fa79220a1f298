"""Issue 15's data-loss paths: the user's files survive every one of them (model list, session, converted cache),
and a model that computes NaN says so instead of printing it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.core.io import session
from explorer.core.io.errors import ModelError
from explorer.core.models import catalog

# ------------------------------------------------------------------ the model list


def _model_folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    return folder


def _listed(data_dir: Path) -> list[str]:
    return [item["location"] for item in json.loads((data_dir / "models.json").read_text())]


def test_missing_folder_stays_listed_across_an_add(data_dir, tmp_path):
    """An unplugged drive: its folder is not offered while missing, but an Add does not forget it."""
    drive = _model_folder(tmp_path / "usb", "my-bert")
    catalog.add_user_folder(drive)
    shutil.move(str(tmp_path / "usb"), str(tmp_path / "unplugged"))
    assert [e.name for e in catalog.user_entries()] == []
    catalog.add_user_folder(_model_folder(tmp_path, "other"))
    assert str(drive) in _listed(data_dir)
    shutil.move(str(tmp_path / "unplugged"), str(tmp_path / "usb"))  # plugged in again
    assert {e.name for e in catalog.user_entries()} == {"my-bert", "other"}


def test_unknown_items_in_the_model_list_are_kept(data_dir, tmp_path):
    data_dir.mkdir(parents=True, exist_ok=True)
    future = {"name": "x", "source": "folder", "location": "/x", "added_by": "a newer version"}
    (data_dir / "models.json").write_text(json.dumps([future, "junk"]))
    catalog.add_user_folder(_model_folder(tmp_path, "m"))
    items = json.loads((data_dir / "models.json").read_text())
    assert items[:2] == [future, "junk"] and items[2]["name"] == "m"


@pytest.mark.parametrize("content", [b"{not json", b'{"a": 1}', b"\xff\xfe garbage"])
def test_corrupt_model_list_is_backed_up_before_an_add(data_dir, tmp_path, content):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "models.json").write_bytes(content)
    catalog.add_user_folder(_model_folder(tmp_path, "m"))
    backups = list(data_dir.glob("models.broken-*.json"))
    assert len(backups) == 1 and backups[0].read_bytes() == content
    assert _listed(data_dir) == [str(tmp_path / "m")]


# ------------------------------------------------------------------ the session


def _write_session(data_dir: Path, content: str | bytes) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "session.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


def test_two_broken_sessions_keep_two_backups(data_dir):
    _write_session(data_dir, '{"text": "first broken')
    assert session.read_session()[0] == {}
    _write_session(data_dir, '{"text": "second broken')
    state, note = session.read_session()
    assert state == {} and "kept as" in note
    kept = sorted(p.read_text() for p in data_dir.glob("session.broken-*.json"))
    assert kept == ['{"text": "first broken', '{"text": "second broken']


@pytest.mark.parametrize("content", ['["a", "list"]', "null", '"text"', '{"text": NaN}', "[" * 5000 + "]" * 5000])
def test_unusable_session_is_moved_aside_and_defaults_used(data_dir, content):
    _write_session(data_dir, content)
    state, note = session.read_session()
    assert state == {}
    assert "could not be used" in note
    backups = list(data_dir.glob("session.broken-*.json"))
    assert [b.read_text() for b in backups] == [content]
    assert not (data_dir / "session.json").exists()


@pytest.mark.parametrize("bad", [{"text": 5}, {"panels": []}, {"models": 5}, {"files": [1]}, {"panel": ["x"]}])
def test_a_bad_field_is_reset_alone(data_dir, bad):
    good = {"version": 1, "text": "kept", "models": ["minilm"], "panels": {"masking": {"x": 1}}}
    _write_session(data_dir, json.dumps({**good, **bad}))
    state, note = session.read_session()
    field = next(iter(bad))
    assert field not in state and f"'{field}'" in note
    assert {k: v for k, v in good.items() if k != field} == {k: v for k, v in state.items() if k != field}
    assert not list(data_dir.glob("session.broken-*.json"))  # nothing moved: the rest of the file is in use


def test_a_panel_state_of_the_wrong_shape_is_dropped_alone(data_dir):
    _write_session(data_dir, json.dumps({"text": "t", "panels": {"masking": 3, "attention": {"layer": 2}}}))
    state, note = session.read_session()
    assert state["panels"] == {"attention": {"layer": 2}} and "masking" in note and state["text"] == "t"


def test_a_newer_session_keeps_its_version_and_unknown_fields(data_dir):
    newer = {"version": 99, "text": "t", "future": {"a": [1, 2]}, "panels": {"masking": {"x": 1, "new": True}}}
    _write_session(data_dir, json.dumps(newer))
    state, note = session.read_session()
    assert note == "" and state["future"] == {"a": [1, 2]}
    session.save_session({"text": "edited", "panels": {"masking": {"x": 2, "new": True}}})
    saved = json.loads((data_dir / "session.json").read_text())
    assert saved["version"] == 99 and saved["future"] == {"a": [1, 2]} and saved["text"] == "edited"


def test_an_oversized_session_is_not_read(data_dir, monkeypatch):
    monkeypatch.setattr(session, "MAX_SESSION_BYTES", 1000)
    _write_session(data_dir, json.dumps({"text": "x" * 2000}))
    state, note = session.read_session()
    assert state == {} and "limit" in note


def test_good_session_round_trips(data_dir):
    session.save_session({"text": "bank 银行", "files": ["/a.txt"], "models": ["minilm"], "panels": {"masking": {"x": 1}}})
    state, note = session.read_session()
    assert note == "" and state["text"] == "bank 银行" and state["panels"] == {"masking": {"x": 1}}


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_session_like = st.fixed_dictionaries(
    {}, optional={k: _json for k in ("version", "text", "files", "models", "panel", "panels", "geometry")}
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(_json, _session_like))
def test_any_session_json_is_used_or_kept_never_crashes(data_dir, data):
    """Whatever JSON the file holds: it is accepted as valid, or moved aside byte for byte with defaults used."""
    for old in data_dir.glob("session*.json"):
        old.unlink()
    raw = json.dumps(data)
    _write_session(data_dir, raw)
    state, note = session.read_session()
    moved = [b.read_text() for b in data_dir.glob("session.broken-*.json")]
    if moved:  # not an object at all: kept byte for byte, defaults used
        assert state == {} and moved == [raw] and note
    else:  # an object: every field used is valid, every valid field is used
        assert isinstance(data, dict)
        for key, (ok, _what) in session.SCHEMA.items():
            if key in state:
                assert ok(state[key]) and (key == "panels" or state[key] == data[key])
            elif key in data and key != "panels":
                assert not ok(data[key]) and (f"'{key}'" in note or note.endswith("; …."))
        assert all(state[k] == v for k, v in data.items() if k not in session.SCHEMA)


# ------------------------------------------------------------------ the converted GGUF cache


def _fake_cache(folder: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    save_file({"w": torch.arange(1000, dtype=torch.float32)}, str(folder / "model.safetensors"))
    return folder


def test_cache_checksums_catch_truncation_and_changed_bytes(tmp_path):
    from explorer.core.models.gguf import cache_problem, write_cache_manifest

    folder = _fake_cache(tmp_path / "c")
    write_cache_manifest(folder)
    assert cache_problem(folder) == ""
    weights = folder / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[:-100])
    assert "bytes" in cache_problem(folder)
    weights.write_bytes(good[:-8] + os.urandom(8))  # same size, other bytes: only the hash sees it
    assert "sha256" in cache_problem(folder)
    weights.write_bytes(good)
    assert cache_problem(folder) == ""  # restored bytes verify again (new time, same hash)


def test_cache_without_checksums_is_adopted_only_when_complete(tmp_path):
    from explorer.core.models.gguf import MANIFEST, cache_problem

    folder = _fake_cache(tmp_path / "old")
    assert cache_problem(folder) == "" and (folder / MANIFEST).is_file()
    cut = _fake_cache(tmp_path / "cut")
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4])
    assert "incomplete" in cache_problem(cut)
    noisy = _fake_cache(tmp_path / "noisy")  # random bytes over the weights of an old cache
    weights = noisy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 4000] + b"\xff" * 4000)
    assert "NaN" in cache_problem(noisy) and not (noisy / MANIFEST).exists()


def test_abandoned_conversions_are_removed(tmp_path):
    import subprocess
    import sys

    from explorer.core.models.gguf import remove_abandoned_conversions

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    root = tmp_path / "converted"
    (root / f"Model-abc.tmp{dead_pid}").mkdir(parents=True)
    (root / f"Model-abc.tmp{dead_pid}" / "model.safetensors").write_bytes(b"x" * 1000)
    (root / f"Model-abc.tmp{os.getppid()}").mkdir()  # a live process's conversion: left alone
    (root / "Model-abc").mkdir()
    removed = remove_abandoned_conversions(root)
    assert [p.name for p in removed] == [f"Model-abc.tmp{dead_pid}"]
    assert sorted(p.name for p in root.iterdir()) == sorted(["Model-abc", f"Model-abc.tmp{os.getppid()}"])


def test_damaged_smollm2_cache_is_rebuilt_not_blamed(smollm2, tmp_path, monkeypatch):
    """Random bytes over the cached weights (the issue's NaN case): the next load rebuilds the cache from the
    GGUF and generates exactly what the intact model does; the package folder is never blamed."""
    from explorer.core.io import paths
    from explorer.core.models.gguf import _gguf_cache_folder, cache_problem
    from explorer.core.models.loading import load_model
    from explorer.core.prompting.generation import GenerationSettings, generate

    real = _gguf_cache_folder(smollm2.entry)
    monkeypatch.setenv("LM_EXPLORER_HOME", str(tmp_path / "home"))
    copy = _gguf_cache_folder(smollm2.entry)
    assert copy.parent == paths.cache_dir() / "converted" and copy != real
    shutil.copytree(real, copy)
    weights = copy / "model.safetensors"
    size = weights.stat().st_size
    with weights.open("r+b") as fh:  # same size, header intact, tensors overwritten
        fh.seek(size // 2)
        fh.write(os.urandom(1 << 20))
    assert "sha256" in cache_problem(copy)
    (copy.parent / (copy.name + ".tmp999999999")).mkdir()  # a conversion killed during its save

    messages, fractions = [], []
    lm = load_model("smollm2", progress=lambda f, m="": (messages.append(m), fractions.append(f)))
    assert any("damaged" in m and "rebuilding" in m for m in messages)
    # the load's own phases follow the conversion's: 0.7 'Saving…' was followed by 0.3 'Loading the tokenizer'
    known = [f for f in fractions if f >= 0]
    assert known == sorted(known) and known[-1] == 1.0, list(zip(fractions, messages, strict=True))
    assert messages.index("Saving the converted model to the cache…") < messages.index("Loading the tokenizer…")
    assert cache_problem(copy) == "" and weights.stat().st_size == size
    assert not (copy.parent / (copy.name + ".tmp999999999")).exists()
    settings_ = GenerationSettings(max_new_tokens=6)
    assert generate(lm, "The capital of France is", settings_).text == generate(smollm2, "The capital of France is", settings_).text


# ------------------------------------------------------------------ NaN outputs


def test_nan_weights_give_a_clear_error_not_nan_numbers(tiny_factory, tmp_path):
    import torch

    from explorer.core.inspect.analysis import analyse
    from explorer.core.models.loading import load_model

    folder = tmp_path / "nan-model"
    shutil.copytree(tiny_factory("mlm"), folder)
    lm = load_model(str(folder))
    with torch.no_grad():
        for p in lm.model.parameters():
            p.fill_(float("nan"))
    with pytest.raises(ModelError, match="NaN or infinite"):
        analyse(lm, "the river bank")


def test_cli_json_never_prints_nan(capsys):
    import numpy as np

    from explorer.commands._common import print_json

    print_json({"p": float("nan"), "q": [float("inf"), 1.5], "a": np.array([np.nan, 2.0]), "s": np.float32("-inf")})
    out = capsys.readouterr().out
    assert json.loads(out) == {"p": None, "q": [None, 1.5], "a": [None, 2.0], "s": None}
    assert "NaN" not in out and "Infinity" not in out


def test_converted_cache_is_keyed_by_content_so_reinstalls_share_it(tmp_path, monkeypatch):
    """The same GGUF installed twice (another venv, a reinstall: other path, other mtime) maps to ONE converted
    folder, instead of a new 0.5 GB conversion per install; other content maps elsewhere; each file is hashed
    once per (path, size, mtime)."""
    from explorer.core.io import fileio
    from explorer.core.models import gguf as models
    from explorer.core.models.catalog import ModelEntry

    monkeypatch.setenv("LM_EXPLORER_HOME", str(tmp_path / "home"))
    hashed = []
    real_hash = fileio.file_sha256
    monkeypatch.setattr(fileio, "file_sha256", lambda p, *a, **k: hashed.append(p) or real_hash(p, *a, **k))
    body = b"GGUF" + os.urandom(4096)
    folders = []
    for install in ("venv-a", "venv-b"):
        (tmp_path / install).mkdir()
        (tmp_path / install / "model.gguf").write_bytes(body)
        entry = ModelEntry(name="m", source="bundled", location=str(tmp_path / install), gguf_file="model.gguf")
        folders.append(models._gguf_cache_folder(entry))
        folders.append(models._gguf_cache_folder(entry))  # the second look is not hashed again
    assert len(set(folders)) == 1 and folders[0].name.startswith("model-")
    assert len(hashed) == 2  # once per install, not once per look
    monkeypatch.setattr(fileio, "_KNOWN_SHA256", {})  # a new process: the index on disk answers
    assert models._gguf_cache_folder(entry) == folders[0] and len(hashed) == 2
    (tmp_path / "venv-b" / "model.gguf").write_bytes(body[:-1] + b"x")  # the same path, new content
    other = ModelEntry(name="m", source="bundled", location=str(tmp_path / "venv-b"), gguf_file="model.gguf")
    assert models._gguf_cache_folder(other) != folders[0]
    (tmp_path / "home" / "cache" / "converted" / models._IDENTITIES).write_text("not json")  # a damaged index
    monkeypatch.setattr(fileio, "_KNOWN_SHA256", {})
    assert models._gguf_cache_folder(other) != folders[0]
