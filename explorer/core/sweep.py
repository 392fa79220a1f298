"""The K-shot sweep behind the lecture's GPT-3 figure: accuracy on a labelled task for K demonstrations in
a list, over several random draws of the demonstrations, with a confidence interval per K.

Evaluated items and the demonstration pool are disjoint (one seeded shuffle splits them). Draw d uses one
seeded permutation of the pool for every K — the K demonstrations are its first K — so curves differ by K,
not by luck of the draw; K = 0 has nothing to draw and is run once.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from explorer.core.charts import ChartSpec, Series
from explorer.core.errors import InputError
from explorer.core.generation import GenerationSettings
from explorer.core.progress import Progress, check, no_progress
from explorer.core.prompting import build_prompt, is_correct, normalize_answer
from explorer.core.tasks import MODES, Task

CI_METHODS = ("wilson", "bootstrap")
Z95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion (well-behaved at 0 and 1, unlike the normal approximation)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    # Exactly 0 / 1 at the ends (rounding would otherwise give 0.9999999999999999).
    return (0.0 if successes <= 0 else lo), (1.0 if successes >= n else hi)


def bootstrap_interval(per_item: list[float], seed: int = 0, resamples: int = 2000) -> tuple[float, float]:
    """Percentile bootstrap over items (each item's accuracy averaged over draws), 95%."""
    if not per_item:
        return 0.0, 1.0
    rng = random.Random(seed)
    n = len(per_item)
    means = sorted(sum(per_item[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return means[int(0.025 * (resamples - 1))], means[int(math.ceil(0.975 * (resamples - 1)))]


@dataclass
class ItemResult:
    """One evaluation: item, draw, what the model answered, and whether it was right."""

    item: int
    draw: int
    prediction: str
    expected: str
    correct: bool
    n_prompt_tokens: int | None = None


@dataclass
class SweepPoint:
    """Accuracy for one K: over ``n`` evaluations (``items`` × draws used), with a 95% interval."""

    shots: int
    accuracy: float
    ci_low: float
    ci_high: float
    n: int
    correct: int
    items: int
    draws: int
    draw_accuracies: list[float]
    mean_prompt_tokens: float | None
    details: list[ItemResult] = field(default_factory=list)

    def to_dict(self, details: bool = False) -> dict:
        d = asdict(self)
        if not details:
            d.pop("details")
        return d


@dataclass
class SweepResult:
    """All K for one model on one task, and the settings that made them."""

    model: str
    task: str
    mode: str
    points: list[SweepPoint]
    settings: dict
    chance: float | None = None

    def to_dict(self, details: bool = False) -> dict:
        return {
            "model": self.model,
            "task": self.task,
            "mode": self.mode,
            "chance": self.chance,
            "settings": self.settings,
            "results": [p.to_dict(details) for p in self.points],
        }


def parse_shots(text: str | list[int]) -> list[int]:
    """'0,1,2,4,8' → [0, 1, 2, 4, 8] (sorted, unique, non-negative)."""
    if isinstance(text, list):
        values = text
    else:
        try:
            values = [int(v) for v in str(text).replace(" ", "").split(",") if v != ""]
        except ValueError as err:
            raise InputError(f"Shots must be whole numbers separated by commas, like 0,1,2,4,8 (got '{text}').") from err
    if not values or any(v < 0 for v in values):
        raise InputError("Give at least one number of shots, each 0 or more.")
    return sorted(set(values))


def split_items(n_items: int, limit: int | None, max_shots: int, seed: int) -> tuple[list[int], list[int]]:
    """(evaluated item indices, demonstration pool) from one seeded shuffle; the two never overlap."""
    order = list(range(n_items))
    random.Random(f"split-{seed}").shuffle(order)
    if limit is None or limit <= 0:
        limit = n_items - max_shots
    limit = min(limit, n_items - max_shots)
    if limit < 1:
        raise InputError(
            f"The task has {n_items} items: not enough for {max_shots} demonstrations plus at least one to evaluate."
        )
    return order[:limit], order[limit:]


def run_sweep(
    backend: Any,
    task: Task,
    shots: list[int] | str = "0,1,2,4,8",
    draws: int = 3,
    limit: int | None = 50,
    seed: int = 0,
    mode: str | None = None,
    normalize: str = "mean",
    ci: str = "wilson",
    chat: bool = False,
    on_point: Callable[[SweepPoint], None] | None = None,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> SweepResult:
    """Accuracy of ``backend`` on ``task`` for each K in ``shots``; ``on_point`` gets each K as it finishes."""
    from explorer.core.backends import make_backend

    backend = make_backend(backend)
    ks = parse_shots(shots)
    mode = mode or task.mode
    if mode not in MODES:
        raise InputError(f"Unknown mode '{mode}': use 'score' (label words) or 'generate' (exact match).")
    if mode == "score" and not task.labels:
        raise InputError(f"Task '{task.name}' has no fixed label set to score; use mode 'generate'.")
    if ci not in CI_METHODS:
        raise InputError(f"Unknown confidence interval '{ci}': use {' or '.join(CI_METHODS)}.")
    draws = max(1, int(draws))
    queries, pool = split_items(len(task.items), limit, max(ks), seed)
    perms = [random.Random(f"draw-{seed}-{d}").sample(pool, len(pool)) for d in range(draws)]
    tokenizer = getattr(backend, "tokenizer", None)
    ctx_len = getattr(backend, "context_length", None)
    total = sum((1 if k == 0 else draws) * len(queries) for k in ks)
    done = 0
    points: list[SweepPoint] = []
    gen = GenerationSettings(max_new_tokens=task.max_new_tokens, stop=[] if chat else list(task.stop))
    for k in ks:
        used = 1 if k == 0 else draws
        details: list[ItemResult] = []
        per_item = {q: 0.0 for q in queries}
        token_counts: list[int] = []
        draw_acc = []
        for d in range(used):
            demos = [task.items[i] for i in perms[d][:k]]
            right = 0
            for q in queries:
                check(cancel)
                item = task.items[q]
                built = build_prompt(task.template, demos, item, tokenizer, ctx_len, chat=chat)
                if not built.fits:
                    raise InputError(
                        f"With {k} demonstrations the prompt has {built.n_tokens} tokens, more than the model's "
                        f"context of {built.context_length}. Use fewer shots."
                    )
                if built.n_tokens is not None:
                    token_counts.append(built.n_tokens)
                if mode == "score":
                    options = [built.answer_prefix + label for label in task.labels]
                    res = backend.score(built.text, options, normalize, built.add_special_tokens, cancel=cancel)
                    prediction = task.labels[res.best]
                    correct = normalize_answer(prediction) == normalize_answer(item.output)
                else:
                    res = backend.generate(built.text, gen, built.add_special_tokens, cancel=cancel)
                    prediction = res.text.strip().split("\n", 1)[0]
                    correct = is_correct(res.text, item)
                right += int(correct)
                per_item[q] += int(correct) / used
                details.append(ItemResult(q, d, prediction, item.output, bool(correct), built.n_tokens))
                done += 1
                progress(done / total, f"K = {k}, draw {d + 1}/{used}: {done}/{total}")
            draw_acc.append(right / len(queries))
        n = len(details)
        correct_total = sum(r.correct for r in details)
        accuracy = correct_total / n
        if ci == "wilson":
            lo, hi = wilson_interval(correct_total, n)
        else:
            lo, hi = bootstrap_interval(list(per_item.values()), seed)
        point = SweepPoint(
            k, accuracy, lo, hi, n, correct_total, len(queries), used, draw_acc,
            sum(token_counts) / len(token_counts) if token_counts else None, details,
        )
        points.append(point)
        if on_point is not None:
            on_point(point)
    chance = 1.0 / len(task.labels) if mode == "score" and task.labels else None
    settings = {
        "task": task.name, "shots": ks, "draws": draws, "limit": len(queries), "seed": seed, "mode": mode,
        "normalize": normalize if mode == "score" else None, "ci": ci, "chat": chat,
        "template": task.template.template, "description": task.template.description,
        "backend": backend.describe(),
    }
    return SweepResult(backend.name, task.name, mode, points, settings, chance)


def sweep_chart(results: list[SweepResult], title: str | None = None) -> ChartSpec:
    """Accuracy vs K with 95% intervals, one line per model (the lecture's GPT-3 few-shot figure); chance dashed."""
    if not results:
        raise InputError("Run a sweep first.")
    series = []
    for r in results:
        xs = [float(p.shots) for p in r.points]
        hover = [
            f"{r.model}, K = {p.shots}: {p.correct}/{p.n} = {p.accuracy:.1%} (95% CI {p.ci_low:.1%}–{p.ci_high:.1%}; "
            f"{p.items} items × {p.draws} draws" + (f"; ~{p.mean_prompt_tokens:.0f} prompt tokens)" if p.mean_prompt_tokens else ")")
            for p in r.points
        ]
        series.append(Series(
            r.model, xs, [p.accuracy for p in r.points], hover=hover,
            err_low=[p.ci_low for p in r.points], err_high=[p.ci_high for p in r.points],
        ))
    all_k = sorted({p.shots for r in results for p in r.points})
    chance = next((r.chance for r in results if r.chance), None)
    if chance:
        series.append(Series(f"chance ({chance:.0%})", [float(all_k[0]), float(all_k[-1])], [chance, chance],
                             color="#888888", dashed=True, width=1.0))
    task = results[0].task
    return ChartSpec(
        title=title or f"Accuracy vs number of examples in the prompt ({task})",
        x_label="examples in the prompt (K)",
        y_label="accuracy",
        series=series,
        x_ticks=[(float(k), str(k)) for k in all_k],
        y_range=(0.0, 1.0),
        meta={"runs": [r.to_dict() for r in results]},
    )
