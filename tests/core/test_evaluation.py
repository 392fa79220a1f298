"""``evaluate``: the scores checked against scikit-learn and seqeval (independent references), the same
predictions as the head row by row, and batched forwards."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core.io.errors import InputError
from explorer.core.models.loading import load_model
from explorer.core.tuning import heads
from explorer.core.tuning.evaluation import confusion_chart, evaluate
from explorer.core.tuning.tags import entity_spans

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-LOC", "S-ORG", "I-ORG"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TAGS), max_size=14))
def test_entity_spans_match_seqeval(tags):
    from seqeval.metrics.sequence_labeling import get_entities

    assert entity_spans(tags) == [tuple(e) for e in get_entities(tags)]


@pytest.fixture(scope="module")
def sentences(tmp_path_factory):
    p = tmp_path_factory.mktemp("eval") / "s.csv"
    words = ["good movie", "bad movie", "great film", "terrible film", "i love it", "boring and bad", "fun", "hate it"]
    p.write_text("text,label\n" + "".join(f"{w} {i},{'pos' if i % 3 else 'neg'}\n"
                                          for i, w in enumerate(words * 5)) + "a dog,other\n")
    return p


def test_sentence_scores_match_sklearn_and_the_head(tiny_factory, sentences):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    lm = load_model(str(tiny_factory("sequence-classification", ["neg", "pos"])))
    calls: list[str] = []
    r = evaluate(lm, sentences, batch_size=8, progress=lambda f, m: calls.append(m))
    assert r.n == 41 and len(calls) == 6  # one forward per batch of 8, not one per row
    rows = sentences.read_text().splitlines()[1:]
    gold = [row.rsplit(",", 1)[1] for row in rows]
    one_by_one = [heads.classify(lm, row.rsplit(",", 1)[0]).label for row in rows]
    assert r.predictions == one_by_one
    assert r.labels == ["neg", "pos", "other"] and any("other" in n for n in r.notes)
    assert np.array_equal(np.array(r.confusion), confusion_matrix(gold, one_by_one, labels=r.labels))
    p, rec, f, support = precision_recall_fscore_support(gold, one_by_one, labels=r.labels, zero_division=0)
    for i, lab in enumerate(r.labels):
        assert r.per_class[lab]["precision"] == pytest.approx(p[i])
        assert r.per_class[lab]["recall"] == pytest.approx(rec[i])
        assert r.per_class[lab]["f1"] == pytest.approx(f[i])
        assert r.per_class[lab]["support"] == support[i]
    assert r.macro_f1 == pytest.approx(float(np.mean(f)))
    assert r.accuracy == pytest.approx(np.mean(np.array(gold) == np.array(one_by_one)))
    spec = confusion_chart(r)
    assert spec.kind == "heatmap" and spec.matrix.shape == (3, 3) and spec.matrix.sum() == 41
    assert set(json.loads(json.dumps(r.to_dict()))) >= {"accuracy", "per_class", "confusion", "labels", "n"}


def test_token_scores_match_seqeval(tiny_factory, tmp_path):
    from seqeval.metrics import accuracy_score, classification_report

    lm = load_model(str(tiny_factory("token-classification", ["O", "B-PER", "I-PER", "B-LOC"])))
    p = tmp_path / "t.jsonl"
    rows = [("john lives in paris", "B-PER O O B-LOC"), ("mary works at google in new york", "B-PER O O O O B-LOC I-LOC"),
            ("john and mary", "B-PER O B-PER"), ("the cat", "O O")] * 4
    p.write_text("".join(json.dumps({"tokens": t.split(), "tags": g.split()}) + "\n" for t, g in rows))
    r = evaluate(lm, p, batch_size=5)
    gold = [g.split() for _, g in rows]
    assert r.level == "entity" and r.n == 16 and r.units == sum(map(len, gold))
    assert r.accuracy == pytest.approx(accuracy_score(gold, r.predictions))
    report = classification_report(gold, r.predictions, output_dict=True, zero_division=0)
    for kind, v in r.per_class.items():
        assert v["precision"] == pytest.approx(report[kind]["precision"])
        assert v["recall"] == pytest.approx(report[kind]["recall"])
        assert v["f1"] == pytest.approx(report[kind]["f1-score"])
        assert v["support"] == report[kind]["support"]
    assert r.macro_f1 == pytest.approx(report["macro avg"]["f1-score"])
    words = heads.tag_tokens(lm, "john lives in paris")
    first = {}
    for t in words.tokens:
        first.setdefault(t.word, t.label)
    assert [first[w] for w in sorted(first)] == r.predictions[0]


def test_wrong_kind_of_file(tiny_factory, sentences, tmp_path):
    lm = load_model(str(tiny_factory("token-classification", ["O", "B-PER"])))
    with pytest.raises(InputError, match="sequence-classification"):
        evaluate(lm, sentences)
