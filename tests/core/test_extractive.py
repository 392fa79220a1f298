"""Extractive QA fine-tuning: stride windows, best spans over windows, the three modes on a tiny checkpoint
(saved, loaded back, run, evaluated), and evaluate's scores against the official SQuAD v1.1 logic."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core.io.errors import InputError
from explorer.core.io.paths import resources_dir
from explorer.core.models.loading import load_model
from explorer.core.tuning import extractive, heads, squad
from tests.reference import squad_v11

DATA = resources_dir() / "data"


@pytest.fixture(scope="module")
def tiny_base(tiny_factory):
    return load_model(str(tiny_factory("base")))


@pytest.fixture(scope="module")
def qa_data():
    return squad.load_qa_data(DATA / "qa.jsonl", val_fraction=0.2, seed=0, max_rows=40)


def test_long_contexts_are_cut_into_windows_that_keep_the_answer(minilm):
    examples, _ = squad.read_examples(DATA / "qa.jsonl")
    long = [e for e in examples if len(e.context) > 800][:6]
    assert long
    win = extractive.windows(minilm.tokenizer, long, 128, 32)
    assert len(win.items) > 2 * len(long)  # each long context takes several windows
    seen = set()
    for item, ex_i, offs in zip(win.items, win.example, win.offsets, strict=True):
        assert len(item["input_ids"]) <= 128
        s, e = item["start_positions"], item["end_positions"]
        ex = long[ex_i]
        if s == 0:
            inside = [o for o in offs if o is not None]
            assert not (inside[0][0] <= ex.starts[0] and inside[-1][1] >= ex.starts[0] + len(ex.answers[0]))
            continue
        assert ex.context[offs[s][0]:offs[e][1]] == ex.answers[0]
        seen.add(ex_i)
    assert seen == set(range(len(long)))  # every answer is labelled in at least one window
    # neighbouring windows of one context overlap by the stride
    first = [i for i, k in enumerate(win.example) if k == 0]
    a, b = win.offsets[first[0]], win.offsets[first[1]]
    a_ctx = [o for o in a if o is not None]
    b_ctx = [o for o in b if o is not None]
    assert b_ctx[0][0] < a_ctx[-1][1]


def test_best_span_is_chosen_over_all_windows(minilm):
    ex = squad.QAExample("Where?", "Alpha beta gamma delta epsilon zeta eta theta.", ["delta"], [17])
    win = extractive.windows(minilm.tokenizer, [ex, ex], 64, 16, labels=False)
    n = len(win.items[0]["input_ids"])
    target = next(t for t, o in enumerate(win.offsets[0]) if o is not None and ex.context[o[0]:o[1]] == "delta")
    start = np.zeros((2, n))
    end = np.zeros((2, n))
    start[0, target] = end[0, target] = 5.0  # window of question 0: "delta"
    start[1, 0] = end[1, 0] = 50.0  # [CLS] is never an answer
    start[1, target - 1] = 3.0
    end[1, target] = 3.0  # question 1: "gamma delta"
    got = extractive.best_spans([ex, ex], win, list(start), list(end))
    assert got == ["delta", "gamma delta"]


@pytest.mark.parametrize("mode", ["frozen", "full", "adapter"])
def test_each_mode_trains_saves_loads_and_runs(tiny_base, qa_data, tmp_path, mode):
    updates = []
    r = extractive.finetune_qa(tiny_base, qa_data, mode, epochs=1, batch_size=8, out_dir=tmp_path / mode,
                               partial=updates.append)
    assert r.task == "qa" and r.mode == mode and set(r.scores) == {"exact_match", "f1"}
    assert len(r.history) >= 1 and all(np.isfinite(h.loss) for h in r.history)
    assert r.val_accuracy == pytest.approx(r.scores["f1"])
    assert any(u.epoch_done for u in updates)
    stored = {c.mode: c.stored_parameters for c in r.costs}
    assert stored["frozen"] < stored["adapter"] < stored["full"]
    lm = load_model(str(tmp_path / mode))
    assert "question-answering" in lm.heads
    ex = qa_data.val[0]
    out = heads.answer(lm, ex.question, ex.context)  # the run view: start/end probabilities and best spans
    assert out.start_probs.sum() == pytest.approx(1.0, abs=1e-4) and out.spans
    assert out.spans[0].text == ex.context[out.spans[0].start:out.spans[0].end]
    # the saved model answers the validation questions as the trained one did
    assert squad.score(extractive.predict(lm, qa_data.val), [e.answers for e in qa_data.val])["f1"] == \
        pytest.approx(r.scores["f1"], abs=1e-6)
    if mode == "full":  # evaluate on the held-out test split equals the official v1.1 logic on its predictions
        ev = extractive.evaluate_qa(lm, DATA / "qa-test.jsonl")
        assert ev.n >= 100
        preds = {p["id"]: p["prediction"] for p in ev.predictions}
        dataset = [{"paragraphs": [{"qas": [{"id": p["id"], "answers": [{"text": a} for a in p["answers"]]}
                                            for p in ev.predictions]}]}]
        ref = squad_v11.evaluate(dataset, preds)
        assert ev.exact_match * 100 == pytest.approx(ref["exact_match"], abs=1e-9)
        assert ev.f1 * 100 == pytest.approx(ref["f1"], abs=1e-9)


def test_scratch_and_decoders_are_refused(tiny_base, qa_data, tiny_factory):
    with pytest.raises(InputError, match="frozen, full, adapter"):
        extractive.finetune_qa(tiny_base, qa_data, "scratch")
    from explorer.core.io.errors import ModelError

    with pytest.raises(ModelError, match="encoder"):
        extractive.finetune_qa(load_model(str(tiny_factory("causal-lm"))), qa_data, "full")
