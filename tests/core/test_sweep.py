"""K-shot sweep: intervals, the item/demonstration split, and an end-to-end run on SmolLM2 with a small limit."""

from __future__ import annotations

import threading

import pytest

from explorer.core.errors import Cancelled, InputError
from explorer.core.sweep import (
    bootstrap_interval,
    parse_shots,
    run_sweep,
    split_items,
    sweep_chart,
    wilson_interval,
)
from explorer.core.tasks import builtin_task


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
