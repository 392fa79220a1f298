"""K-shot sweep: intervals, the item/demonstration split, and an end-to-end run on SmolLM2 with a small limit."""

from __future__ import annotations

import threading

import pytest

from explorer.core.io.errors import Cancelled, InputError
from explorer.core.prompting.sweep import (
    bootstrap_interval,
    parse_shots,
    run_sweep,
    split_items,
    sweep_chart,
    wilson_interval,
)
from explorer.core.prompting.tasks import builtin_task


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)


def test_bootstrap_interval_brackets_the_mean():
    values = [1.0] * 30 + [0.0] * 70
    lo, hi = bootstrap_interval(values, seed=0)
    assert lo < 0.3 < hi and 0.15 < lo and hi < 0.45
    assert bootstrap_interval(values, seed=0) == (lo, hi)


def test_parse_shots_and_split():
    assert parse_shots("8, 0,2,2") == [0, 2, 8]
    with pytest.raises(InputError):
        parse_shots("one,two")
    queries, pool = split_items(40, 10, 8, seed=3)
    assert len(queries) == 10 and len(pool) == 30 and not set(queries) & set(pool)
    assert split_items(40, 10, 8, seed=3) == (queries, pool)
    with pytest.raises(InputError, match="not enough"):
        split_items(5, 3, 8, seed=0)


def test_sweep_end_to_end_scoring(smollm2):
    task = builtin_task("sentiment")
    seen = []
    result = run_sweep(smollm2, task, "0,2", draws=2, limit=4, seed=0, on_point=seen.append)
    assert [p.shots for p in result.points] == [0, 2] and seen == result.points
    k0, k2 = result.points
    assert (k0.n, k0.draws) == (4, 1)  # nothing to draw at K = 0: run once
    assert (k2.n, k2.draws, len(k2.draw_accuracies)) == (8, 2, 2)
    for p in result.points:
        assert p.ci_low <= p.accuracy <= p.ci_high
        assert p.accuracy == pytest.approx(sum(d.correct for d in p.details) / p.n)
        assert all(d.prediction in task.labels for d in p.details)
    assert k2.mean_prompt_tokens > k0.mean_prompt_tokens
    assert result.chance == 0.5
    d = result.to_dict()
    assert set(d["results"][0]) >= {"shots", "accuracy", "ci_low", "ci_high", "n"}
    spec = sweep_chart([result])
    assert spec.series[0].y == [k0.accuracy, k2.accuracy] and spec.series[-1].dashed
    assert "K = 2" in spec.series[0].hover[1]


def test_sweep_end_to_end_generation_is_deterministic(smollm2):
    task = builtin_task("addition")
    a = run_sweep(smollm2, task, [1], draws=1, limit=3, seed=0)
    b = run_sweep(smollm2, task, [1], draws=1, limit=3, seed=0)
    assert [d.prediction for d in a.points[0].details] == [d.prediction for d in b.points[0].details]
    for d in a.points[0].details:
        assert d.correct == (d.prediction.strip() == d.expected)
    assert a.mode == "generate" and a.chance is None


def test_sweep_cancel_and_bad_options(smollm2):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        run_sweep(smollm2, builtin_task("sentiment"), [0], limit=2, cancel=cancel)
    with pytest.raises(InputError, match="label set"):
        run_sweep(smollm2, builtin_task("addition"), [0], limit=2, mode="score")


def _fake_result(model, params, non_emb, accs, chance=None):
    from explorer.core.prompting.sweep import SweepPoint, SweepResult, wilson_interval

    points = []
    for k, a in accs.items():
        lo, hi = wilson_interval(a * 20, 20)
        points.append(SweepPoint(k, a, lo, hi, 20, int(a * 20), 20, 1, [a], None))
    return SweepResult(model, "qa", "generate", points, {"task": "qa", "limit": 20, "backend": {"model": model}},
                       chance, params, non_emb)


def test_size_chart_one_line_per_k_on_a_log_axis():
    from explorer.core.prompting.sweep import size_chart, sweeps_to_dict

    small = _fake_result("small", 134_515_008, 106_203_456, {0: 0.15, 1: 0.45, 4: 0.8})
    big = _fake_result("big", 268_098_176, 100_326_016, {0: 0.1, 1: 0.3, 4: 0.7})
    spec = size_chart([big, small])
    assert spec.log_x and [s.name for s in spec.series] == ["K = 0 (zero-shot)", "K = 1 (one-shot)",
                                                             "K = 4 (few-shot)"]
    assert spec.series[0].x == [134_515_008.0, 268_098_176.0]  # sorted by size
    assert spec.series[2].y == [0.8, 0.7] and "big" in spec.series[2].hover[1]
    assert "not a size ladder" in spec.note and "106 M" in spec.note and "embedding table" in spec.note
    assert spec.to_dict()["note"] == spec.note
    kaplan = size_chart([big, small], axis="non_embedding")
    assert kaplan.series[0].x == [100_326_016.0, 106_203_456.0] and "Kaplan" in kaplan.x_label
    csv_rows = spec.to_csv().splitlines()
    assert len(csv_rows) == 1 + 6 and csv_rows[1].startswith("K = 0 (zero-shot),1.34515e+08,0.15")
    doc = sweeps_to_dict([small, big])
    assert doc["model"] == "small,big" and [m["parameters"] for m in doc["models"]] == [134_515_008, 268_098_176]
    assert len(doc["results"]) == 6 and {r["model"] for r in doc["results"]} == {"small", "big"}
    row = doc["results"][3]
    assert (row["model"], row["parameters"], row["parameters_non_embedding"], row["shots"]) == (
        "big", 268_098_176, 100_326_016, 0)
    with pytest.raises(InputError):
        size_chart([_fake_result("endpoint", None, None, {0: 0.5})])


def test_sweeps_on_two_models_share_items_and_carry_sizes(smollm2, gemma3):
    from explorer.core.prompting.backends import LocalBackend
    from explorer.core.prompting.sweep import chat_for, run_sweeps, size_chart

    task = builtin_task("qa")
    seen = []
    results = run_sweeps([smollm2, gemma3], task, "0,1", limit=3, draws=1, seed=0,
                         on_point=lambda name, p: seen.append((name, p.shots)))
    assert seen == [("smollm2", 0), ("smollm2", 1), ("gemma3", 0), ("gemma3", 1)]
    a, b = results
    assert (a.parameters, b.parameters) == (smollm2.card.num_parameters, gemma3.card.num_parameters)
    assert b.parameters_non_embedding == gemma3.card.num_parameters_non_embedding
    assert [d.item for d in a.points[1].details] == [d.item for d in b.points[1].details]  # same items
    # gemma3 is a base model without a chat template: raw prompts even when chat is asked for.
    assert not chat_for(LocalBackend(gemma3), True) and chat_for(LocalBackend(smollm2), True)
    assert b.settings["chat"] is False
    assert len(size_chart(results).series) == 2
    with pytest.raises(InputError, match="twice"):
        run_sweeps([smollm2, smollm2], task, "0", limit=1)
