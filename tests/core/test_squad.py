"""SQuAD data and scores: explorer.core.tuning.squad against the official v1.1 logic (tests/reference/squad_v11.py)."""

from __future__ import annotations

import json
import random

import pytest

from explorer.core.io.errors import InputError
from explorer.core.io.paths import resources_dir
from explorer.core.tuning import squad
from tests.reference import squad_v11

DATA = resources_dir() / "data"


def _variants(context: str, answer: str, start: int, rng: random.Random) -> list[str]:
    """Predictions a span head can give: the answer, with an article / punctuation / other case, a part, a wider
    span, another span of the context, nothing."""
    end = start + len(answer)
    words = answer.split()
    other = rng.randrange(0, max(1, len(context) - 20))
    return [
        answer,
        f"the {answer}",
        f"{answer.upper()}.",
        " ".join(words[: max(1, len(words) // 2)]),
        context[max(0, start - 12):end],
        context[start:min(len(context), end + 15)],
        context[other:other + 18],
        "",
    ]


def test_bundled_sets_are_extractive_with_a_held_out_test_split():
    train, _ = squad.read_examples(DATA / "qa.jsonl")
    test, _ = squad.read_examples(DATA / "qa-test.jsonl")
    assert len(test) >= 100 and len(train) >= 150
    for ex in train + test:
        assert ex.question.endswith("?")
        for a, s in zip(ex.answers, ex.starts, strict=True):
            assert ex.context[s:s + len(a)] == a
    assert not {e.context for e in train} & {e.context for e in test}  # no test paragraph is trained on
    longest = max(test + train, key=lambda e: len(e.context))
    assert len(longest.context) > 800  # some paragraphs need more than one window


def test_scores_equal_the_official_v11_logic_on_the_test_split():
    examples, _ = squad.read_examples(DATA / "qa-test.jsonl")
    rng = random.Random(0)
    preds, golds, dataset, by_id = [], [], [], {}
    for ex in examples:
        for k, p in enumerate(_variants(ex.context, ex.answers[0], ex.starts[0], rng)):
            qid = f"{ex.id}-{k}"
            golds.append(ex.answers + ["the " + ex.answers[0].lower()])  # two gold answers per question
            preds.append(p)
            by_id[qid] = p
            dataset.append({"id": qid, "answers": [{"text": g} for g in golds[-1]]})
            assert squad.exact_match(p, ex.answers[0]) == float(squad_v11.exact_match_score(p, ex.answers[0]))
            assert squad.f1(p, ex.answers[0]) == pytest.approx(squad_v11.f1_score(p, ex.answers[0]), abs=1e-12)
    assert len(preds) >= 800
    ours = squad.score(preds, golds)
    ref = squad_v11.evaluate([{"paragraphs": [{"qas": dataset}]}], by_id)
    assert 0.1 < ours["exact_match"] < 0.9 and 0.1 < ours["f1"] < 0.9  # the variants are neither all right nor all wrong
    assert ours["exact_match"] * 100 == pytest.approx(ref["exact_match"], abs=1e-9)
    assert ours["f1"] * 100 == pytest.approx(ref["f1"], abs=1e-9)


@pytest.mark.parametrize("pred, gold", [("The Eiffel Tower!", "eiffel tower"), ("an apple", "Apple"),
                                        ("a b c", "c b a"), ("", "x"), ("the", "a"), ("1,000", "1000")])
def test_normalisation_cases(pred, gold):
    assert squad.normalize_answer(pred) == squad_v11.normalize_answer(pred)
    assert squad.exact_match(pred, gold) == float(squad_v11.exact_match_score(pred, gold))
    assert squad.f1(pred, gold) == pytest.approx(squad_v11.f1_score(pred, gold))


def test_answers_given_as_text_offsets_or_squad_json(tmp_path):
    ctx = "Ada Lovelace was born in London in 1815."
    p = tmp_path / "q.jsonl"
    rows = [{"question": "Where was Ada born?", "context": ctx, "answer": "London"},
            {"question": "When?", "context": ctx, "answers": [{"text": "1815", "answer_start": 35}]},
            {"question": "Who?", "context": ctx, "answers": {"text": ["Ada Lovelace"], "answer_start": [0]}}]
    p.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    got, _ = squad.read_examples(p)
    assert [e.starts[0] for e in got] == [25, 35, 0]
    whole = tmp_path / "squad.json"
    whole.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": ctx, "qas": [
        {"id": "1", "question": "Where?", "answers": [{"text": "London", "answer_start": 25}]}]}]}]}))
    assert squad.read_examples(whole)[0][0].answers == ["London"]
    assert squad.looks_like_qa(p) and squad.looks_like_qa(whole)


@pytest.mark.parametrize("row, match", [
    ({"question": "Q?", "context": "abc", "answer": "zzz"}, "not in the context"),
    ({"question": "Q?", "context": "abc", "answers": [{"text": "abc", "answer_start": 1}]}, "reads 'bc'"),
    ({"question": "Q?", "context": "abc"}, "no answer"),
    ({"context": "abc", "answer": "a"}, "no 'question'"),
])
def test_bad_rows_are_named(tmp_path, row, match):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=match):
        squad.read_examples(p)


def test_split_keeps_a_context_on_one_side():
    data = squad.load_qa_data(DATA / "qa.jsonl", val_fraction=0.2, seed=3)
    assert data.train and data.val
    assert not {e.group for e in data.train} & {e.group for e in data.val}
    again = squad.load_qa_data(DATA / "qa.jsonl", val_fraction=0.2, seed=3)
    assert [e.id for e in again.val] == [e.id for e in data.val]
