"""Seq2seq in the lecture's two designs: data, scores (chrF against an independent implementation), both designs
trained on tiny checkpoints, saved, loaded back and evaluated."""

from __future__ import annotations

import json
import random

import pytest

from explorer.core.io.errors import InputError, ModelError
from explorer.core.io.paths import resources_dir
from explorer.core.models.loading import load_model
from explorer.core.tuning import seq2seq
from tests.reference import chrf as chrf_ref

DATA = resources_dir() / "data"


def _noisy(target: str, rng: random.Random) -> str:
    """A prediction a half-trained decoder gives: right, one digit off, cut short, reordered, empty."""
    kind = rng.randrange(5)
    if kind == 0:
        return target
    if kind == 1:
        i = rng.randrange(len(target))
        return target[:i] + str(rng.randrange(10)) + target[i + 1:]
    if kind == 2:
        return target[: rng.randrange(1, len(target))]
    if kind == 3:
        return "-".join(reversed(target.split("-")))
    return ""


def test_bundled_pairs_are_dates_in_words_and_iso_with_a_held_out_split():
    train = seq2seq.read_pairs(DATA / "dates.jsonl")
    test = seq2seq.read_pairs(DATA / "dates-test.jsonl")
    assert len(train) >= 500 and len(test) >= 100
    assert not {p.target for p in train} & {p.target for p in test}  # no test date is trained on
    import datetime

    for p in train[:50] + test[:50]:
        d = datetime.date.fromisoformat(p.target)
        month = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                 "November", "December"][d.month - 1]
        assert month in p.source and not any(ch.isdigit() for ch in p.source)


def test_scores_equal_the_independent_chrf_and_exact_match():
    pairs = seq2seq.read_pairs(DATA / "dates-test.jsonl")
    rng = random.Random(0)
    refs = [p.target for p in pairs]
    preds = [_noisy(r, rng) for r in refs]
    got = seq2seq.score(preds, refs)
    assert got["n"] >= 100
    assert got["exact_match"] == pytest.approx(sum(p == r for p, r in zip(preds, refs, strict=True)) / len(refs))
    want = chrf_ref.corpus_chrf(preds, refs)
    assert 0.2 < want < 0.95
    assert got["chrf"] == pytest.approx(want, abs=1e-9)
    for k in range(0, 100, 7):  # single sentences too
        assert seq2seq.chrf([preds[k]], [refs[k]]) == pytest.approx(chrf_ref.corpus_chrf([preds[k]], [refs[k]]),
                                                                    abs=1e-9)


def test_wordpiece_output_is_rebuilt_without_the_spaces_decode_adds(minilm):
    tokens = minilm.tokenizer.tokenize("1992-03-14")
    assert seq2seq._wordpiece_text(tokens) == "1992-03-14"
    assert seq2seq._wordpiece_text(minilm.tokenizer.tokenize("new york, 2001")) == "new york, 2001"


def test_bad_files_are_named(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text(json.dumps({"input": "a"}) + "\n")
    with pytest.raises(InputError, match="row 1"):
        seq2seq.read_pairs(p)
    assert seq2seq.looks_like_pairs(DATA / "dates.jsonl") and not seq2seq.looks_like_pairs(DATA / "qa.jsonl")


@pytest.fixture(scope="module")
def pairs():
    data = seq2seq.load_pairs(DATA / "dates.jsonl", seed=0)
    data.train, data.val = data.train[:48], data.val[:12]
    return data


@pytest.fixture(scope="module")
def tiny_decoder(tiny_factory):
    return load_model(str(tiny_factory("causal-lm")))  # its tokenizer names no end token: the model's ([SEP]) serves


@pytest.mark.parametrize("design", ["v1", "v2"])
def test_each_design_trains_saves_loads_and_evaluates(tiny_factory, tiny_decoder, pairs, tmp_path, design):
    lm = load_model(str(tiny_factory("base"))) if design == "v1" else tiny_decoder
    updates = []
    r = seq2seq.finetune_seq2seq(lm, pairs, design, steps=6, batch_size=8, eval_every=3, out_dir=tmp_path / design,
                                 partial=updates.append)
    assert [p.step for p in r.curve] == [0, 3, 6]
    assert all(0.0 <= p.exact_match <= 1.0 and 0.0 <= p.chrf <= 1.0 for p in r.curve)
    assert r.curve[1].loss is not None and r.curve[0].loss is None
    assert len(updates) == 6 and updates[-1].step == 6
    assert 0 < r.trainable_parameters <= r.total_parameters
    if design == "v2":
        assert r.trainable_parameters < 0.2 * r.total_parameters  # LoRA: a small share learns
    ft = seq2seq.Finetuned(tmp_path / design)
    again = ft.generate([p.source for p in pairs.val])
    ev = seq2seq.evaluate_seq2seq(ft, DATA / "dates-test.jsonl")
    assert ev.n >= 100 and len(ev.predictions) == ev.n
    assert ev.chrf == pytest.approx(chrf_ref.corpus_chrf([p["prediction"] for p in ev.predictions],
                                                         [p["reference"] for p in ev.predictions]), abs=1e-9)
    assert seq2seq.score(again, [p.target for p in pairs.val])["chrf"] == pytest.approx(r.chrf, abs=1e-9)
    chart = seq2seq.designs_chart([r])
    assert {s.name for s in chart.series} == {f"{design} exact match", f"{design} chrF"}


def test_designs_need_the_right_kind_of_model(tiny_factory, tiny_decoder, pairs):
    with pytest.raises(ModelError, match="encoder"):
        seq2seq.finetune_seq2seq(tiny_decoder, pairs, "v1", steps=1)
    with pytest.raises(ModelError, match="decoder"):
        seq2seq.finetune_seq2seq(load_model(str(tiny_factory("base"))), pairs, "v2", steps=1)
