"""Reading and checking fine-tune data: the shipped sets, seeded stratified splits, clear errors."""

from __future__ import annotations

import json

import pytest

from explorer.core.io.errors import InputError
from explorer.core.io.paths import resources_dir
from explorer.core.tuning import datasets

DATA = resources_dir() / "data"


def test_shipped_sentiment_is_balanced_and_sized_for_the_demo():
    d = datasets.load_task_data(DATA / "sentiment.csv")
    assert d.task == "classify" and d.labels == ["negative", "positive"]
    assert 150 <= len(d.examples) <= 300
    counts = d.label_counts()
    assert abs(counts["negative"] - counts["positive"]) < 0.1 * len(d.examples)
    assert len(d.val) == pytest.approx(0.2 * len(d.examples), abs=2)
    assert 0.4 < d.majority_baseline() < 0.6


def test_shipped_entailment_and_ner():
    pair = datasets.load_task_data(DATA / "entailment.csv")
    assert pair.task == "pair" and pair.labels == ["contradiction", "entailment", "neutral"]
    assert all(ex.text_pair for ex in pair.examples)
    ner = datasets.load_task_data(DATA / "ner.jsonl")
    assert ner.task == "tokens" and ner.labels[0] == "O"
    assert {"B-PER", "I-PER", "B-LOC", "B-ORG"} <= set(ner.labels)
    assert all(len(ex.tokens) == len(ex.tags) for ex in ner.examples)


def test_split_is_seeded_and_stratified():
    a = datasets.load_task_data(DATA / "entailment.csv", seed=1)
    b = datasets.load_task_data(DATA / "entailment.csv", seed=1)
    c = datasets.load_task_data(DATA / "entailment.csv", seed=2)
    assert [e.row for e in a.val] == [e.row for e in b.val]
    assert [e.row for e in a.val] != [e.row for e in c.val]
    assert {e.label for e in a.val} == set(a.labels)
    assert not {e.row for e in a.val} & {e.row for e in a.train}


def test_tsv_and_column_aliases(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("sentence1\tsentence2\tgold_label\n" + "".join(f"a{i}\tb{i}\t{'yes' if i % 2 else 'no'}\n" for i in range(10)))
    d = datasets.load_task_data(p)
    assert d.task == "pair" and d.labels == ["no", "yes"]
    assert d.examples[0].text.startswith("a") and d.examples[0].text_pair.startswith("b")


def test_preview(tmp_path):
    pv = datasets.preview(DATA / "ner.jsonl", n=3)
    assert pv["task"] == "tokens" and len(pv["rows"]) == 3 and pv["total_rows"] >= 100
    assert len(pv["rows"][0]["tokens"].split()) == len(pv["rows"][0]["tags"].split())


@pytest.mark.parametrize(
    ("content", "name", "needle"),
    [
        ("words,class_name\nhi,x\n", "a.csv", "found: words, class_name"),
        ("text,label\n" + "good,pos\n" * 8, "b.csv", "at least two labels"),
        ("text,label\ngood,pos\n,neg\n" + "bad,neg\n" * 6, "c.csv", "row 2 has an empty 'text'"),
        ("text,label\ngood,pos\nbad,neg\n", "d.csv", "at least 6"),
        ('{"tokens": ["a", "b"], "tags": ["O"]}\n', "e.jsonl", "2 tokens but 1 tags"),
        ('{"tokens": ["a"], "tags": ["O"]}\n{broken\n', "f.jsonl", "line 2 is not valid JSON"),
        ("", "g.csv", "empty"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path, content, name, needle):
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(InputError, match=needle):
        datasets.load_task_data(p)


def test_pair_task_needs_second_text(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(8)))
    with pytest.raises(InputError, match="text_pair"):
        datasets.load_task_data(p, task="pair")
    d = datasets.load_task_data(p)
    assert d.labels == ["0", "1"]


def test_token_csv_with_space_separated_columns(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text("".join(json.dumps({"words": f"john lives in paris {i}", "ner_tags": "B-PER O O B-LOC O"}) + "\n"
                         for i in range(8)))
    d = datasets.load_task_data(p)
    assert d.task == "tokens" and d.labels == ["O", "B-LOC", "B-PER"]


def test_a_folder_or_fifo_as_data_says_what_it_is(tmp_path):
    """Not 'No such data file' for something that exists: the shared file reader names what it is."""
    import os

    from explorer.core.io.errors import InputError
    from explorer.core.tuning.datasets import read_rows

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="folder"):
        read_rows(tmp_path)
    with pytest.raises(InputError, match="named pipe"):
        read_rows(fifo)  # refused without opening it: opening a FIFO would block
    with pytest.raises(InputError, match="No such data file"):
        read_rows(tmp_path / "missing.csv")
