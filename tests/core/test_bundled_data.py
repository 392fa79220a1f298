"""Bundled data sets by short name (``--data sentiment``): one resolver for every command that takes data, so the
README's examples work from a wheel or the bundle, where a checkout's resources/data path does not exist."""

from __future__ import annotations

import pytest

from explorer.core.io.bundled_data import bundled_path, bundled_sets, resolve_data
from explorer.core.io.errors import InputError
from explorer.core.io.paths import resources_dir

SHIPPED = ["dates", "dates-test", "entailment", "ner", "qa", "qa-test", "sentiment"]


def test_every_shipped_file_has_a_name():
    on_disk = sorted(p.stem for p in (resources_dir() / "data").iterdir() if p.is_file())
    assert bundled_sets() == on_disk == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_a_name_resolves_from_any_directory(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing of that name here
    path = resolve_data(name)
    assert path.parent == resources_dir() / "data" and path.stem == name and path.is_file()
    assert resolve_data(path.name) == path  # the bare file name too (sentiment.csv)
    assert bundled_path(name) == path


def test_a_file_of_that_name_in_the_working_directory_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sentiment").write_text("text,label\n", encoding="utf-8")
    assert resolve_data("sentiment").resolve() == tmp_path / "sentiment"
    mine = tmp_path / "mine.csv"
    mine.write_text("text,label\n", encoding="utf-8")
    assert resolve_data(str(mine)) == mine


@pytest.mark.parametrize("spec", ["no-such-set", "resources/data/sentiment.csv", "../data/qa", ""])
def test_an_unknown_name_or_missing_path_names_the_bundled_sets(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as err:
        resolve_data(spec)
    assert f"No data file '{spec}'" in str(err.value) and "sentiment" in str(err.value)
    assert bundled_path(spec) is None


def test_a_folder_is_not_a_data_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "qa").mkdir()  # e.g. a fine-tune saved with --out qa: the name still means the bundled set
    assert resolve_data("qa") == resources_dir() / "data" / "qa.jsonl"
    for spec in ("..", str(tmp_path)):
        with pytest.raises(InputError, match="is a folder; give a data file"):
            resolve_data(spec)
