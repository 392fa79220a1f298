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

from explorer.core.io.charts import ChartSpec, Series
from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.prompting.generation import GenerationSettings
from explorer.core.prompting.prompts import build_prompt, is_correct, normalize_answer
from explorer.core.prompting.tasks import MODES, Task

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
    """All K for one model on one task, the settings that made them, and the model's size (None when unknown,
    e.g. a model behind an HTTP endpoint)."""

    model: str
    task: str
    mode: str
    points: list[SweepPoint]
    settings: dict
    chance: float | None = None
    parameters: int | None = None
    parameters_non_embedding: int | None = None  # Kaplan et al. (2020): embedding tables left out

    def rows(self, details: bool = False) -> list[dict]:
        """One row per K, each naming its model and the model's size (the GPT-3 figure's x axis)."""
        size = {"model": self.model, "parameters": self.parameters,
                "parameters_non_embedding": self.parameters_non_embedding}
        return [{**size, **p.to_dict(details)} for p in self.points]

    def to_dict(self, details: bool = False) -> dict:
        return {
            "model": self.model,
            "task": self.task,
            "mode": self.mode,
            "chance": self.chance,
            "parameters": self.parameters,
            "parameters_non_embedding": self.parameters_non_embedding,
            "settings": self.settings,
            "results": self.rows(details),
        }


def sweeps_to_dict(results: list[SweepResult], details: bool = False) -> dict:
    """Several models' sweeps of one task as one document: ``results`` rows carry ``model`` and ``parameters``."""
    if not results:
        raise InputError("Run a sweep first.")
    first = results[0]
    settings = {k: v for k, v in first.settings.items() if k not in ("backend", "chat")}
    return {
        "model": ",".join(r.model for r in results),
        "task": first.task,
        "mode": first.mode,
        "chance": first.chance,
        "models": [
            {"model": r.model, "parameters": r.parameters, "parameters_non_embedding": r.parameters_non_embedding,
             "backend": r.settings.get("backend"), "chat": r.settings.get("chat")}
            for r in results
        ],
        "settings": settings,
        "results": [row for r in results for row in r.rows(details)],
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
    from explorer.core.prompting.backends import make_backend

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
    card = getattr(getattr(backend, "lm", None), "card", None)
    settings = {
        "task": task.name, "shots": ks, "draws": draws, "limit": len(queries), "seed": seed, "mode": mode,
        "normalize": normalize if mode == "score" else None, "ci": ci, "chat": chat,
        "template": task.template.template, "description": task.template.description,
        "backend": backend.describe(),
    }
    return SweepResult(
        backend.name, task.name, mode, points, settings, chance,
        parameters=card.num_parameters if card is not None else None,
        parameters_non_embedding=card.num_parameters_non_embedding if card is not None else None,
    )


def chat_for(backend: Any, chat: bool) -> bool:
    """Whether ``backend`` gets the chat format: only when asked and its tokenizer has a chat template. A base
    model such as gemma3 has none, so it is always prompted raw, as GPT-3 was."""
    from explorer.core.prompting.prompts import has_chat_template

    if not chat:
        return False
    tokenizer = getattr(backend, "tokenizer", None)
    return tokenizer is None or has_chat_template(tokenizer)


def run_sweeps(
    backends: list[Any],
    task: Task,
    shots: list[int] | str = "0,1,2,4,8",
    chat: bool = False,
    on_point: Callable[[str, SweepPoint], None] | None = None,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
    **options: Any,
) -> list[SweepResult]:
    """The same sweep (same items, same demonstration draws) on several models, one after the other, for the
    accuracy-against-size figure. ``on_point(model name, point)`` gets each K as it finishes; ``options`` are
    :func:`run_sweep`'s (draws, limit, seed, mode, normalize, ci)."""
    from explorer.core.prompting.backends import make_backend

    made = [make_backend(b) for b in backends]
    if not made:
        raise InputError("Choose at least one model to sweep.")
    names = [b.name for b in made]
    if len(set(names)) != len(names):
        raise InputError(f"A model is listed twice: {', '.join(names)}.")
    out = []
    for i, backend in enumerate(made):
        def part(fraction: float, message: str = "", i: int = i, name: str = backend.name) -> None:
            progress((i + fraction) / len(made), f"{name}: {message}" if len(made) > 1 else message)

        point_cb = (lambda p, name=backend.name: on_point(name, p)) if on_point is not None else None
        out.append(run_sweep(backend, task, shots, chat=chat_for(backend, chat), on_point=point_cb, progress=part,
                             cancel=cancel, **options))
    return out


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


SIZE_AXES = {"parameters": "parameters", "non_embedding": "parameters without embeddings (Kaplan et al. 2020)"}
_SHOT_NAMES = {0: "zero-shot", 1: "one-shot"}


def _millions(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.0f} M"


def size_note(results: list[SweepResult]) -> str:
    """What the size axis can and cannot say about these models (shown under the chart and in its exports)."""
    sized = [r for r in results if r.parameters]
    lines = []
    if len(sized) >= 2:
        lines.append("Different models, not a size ladder: each point is its own family (training data, tokenizer "
                     "and tuning differ). Add bigger models of one family for a real ladder.")
    counts = "; ".join(
        f"{r.model} {_millions(r.parameters)} ({_millions(r.parameters_non_embedding)} without embeddings)"
        for r in sized if r.parameters_non_embedding is not None
    )
    big = [r.model for r in sized if r.parameters_non_embedding is not None
           and r.parameters - r.parameters_non_embedding > 0.5 * r.parameters]
    if counts:
        lines.append(f"Parameters: {counts}." + (
            f" Most of {', '.join(big)}'s are its embedding table." if big else ""))
    missing = [r.model for r in results if not r.parameters]
    if missing:
        lines.append(f"Not drawn (size unknown): {', '.join(missing)}.")
    return "\n".join(lines)


def size_chart(results: list[SweepResult], axis: str = "parameters", title: str | None = None) -> ChartSpec:
    """Accuracy against model size (log x), one line per K — the lecture's GPT-3 figure (zero / one / few-shot).

    ``axis``: "parameters" (all, as GPT-3's figure) or "non_embedding" (Kaplan et al.'s count).
    """
    if axis not in SIZE_AXES:
        raise InputError(f"Unknown size axis '{axis}': use {' or '.join(SIZE_AXES)}.")
    if not results:
        raise InputError("Run a sweep first.")
    sized = [r for r in results if r.parameters]
    if not sized:
        raise InputError("No model in this sweep has a known size (a model behind an endpoint has none).")

    def size(r: SweepResult) -> float:
        return float(r.parameters if axis == "parameters" else r.parameters_non_embedding or r.parameters)

    sized.sort(key=size)
    ks = sorted({p.shots for r in sized for p in r.points})
    series = []
    for k in ks:
        xs, ys, lo, hi, hover = [], [], [], [], []
        for r in sized:
            p = next((p for p in r.points if p.shots == k), None)
            if p is None:
                continue
            xs.append(size(r))
            ys.append(p.accuracy)
            lo.append(p.ci_low)
            hi.append(p.ci_high)
            hover.append(
                f"{r.model}, K = {k}: {p.correct}/{p.n} = {p.accuracy:.1%} (95% CI {p.ci_low:.1%}–{p.ci_high:.1%}); "
                f"{_millions(r.parameters)} parameters, {_millions(r.parameters_non_embedding or 0)} without embeddings"
            )
        name = f"K = {k} ({_SHOT_NAMES.get(k, 'few-shot')})"
        series.append(Series(name, xs, ys, hover=hover, err_low=lo, err_high=hi))
    chance = next((r.chance for r in sized if r.chance), None)
    xs_all = [size(r) for r in sized]
    if chance:
        series.append(Series(f"chance ({chance:.0%})", [xs_all[0], xs_all[-1]], [chance, chance],
                             color="#888888", dashed=True, width=1.0))
    return ChartSpec(
        title=title or f"Accuracy vs model size ({sized[0].task})",
        x_label=SIZE_AXES[axis] + " (log scale)",
        y_label="accuracy",
        series=series,
        x_ticks=[(size(r), f"{r.model} {_millions(int(size(r)))}") for r in sized],
        y_range=(0.0, 1.0),
        log_x=True,
        note=size_note(results),
        meta={"size_axis": axis, "runs": [r.to_dict() for r in results]},
    )
