"""Charts of a masking sample: span lengths drawn against SpanBERT's clipped geometric, and which tokens
get masked."""

from __future__ import annotations

import math
from typing import Any

from explorer.core.pretraining.masking import STRATEGY_TITLES, MaskStats


def span_hist_chart(stats: MaskStats) -> Any:
    """Span lengths (in words) drawn vs the clipped geometric, as shares so both sit on one axis."""
    from explorer.core.io.charts import ChartSpec, Series

    total = sum(stats.span_length_hist.values()) or 1
    xs = sorted(set(stats.span_length_hist) | set(stats.theory))
    series = [
        Series(
            name=f"realised ({stats.samples} maskings, mean {stats.span_length_mean:.2f})",
            x=[float(x) for x in xs],
            y=[stats.span_length_hist.get(x, 0) / total for x in xs],
            style="bar",
            color="#4c78a8",
        )
    ]
    if stats.drawn_length_hist:
        drawn_total = sum(stats.drawn_length_hist.values())
        series.append(
            Series(
                name="drawn ℓ (before the budget cut)",
                x=[float(x) for x in xs],
                y=[stats.drawn_length_hist.get(x, 0) / drawn_total for x in xs],
                style="bar",
                color="#9ecae9",
            )
        )
    if stats.theory:
        series.append(
            Series(
                name=f"theory: clipped geometric (mean {stats.theory_mean:.2f})",
                x=[float(x) for x in sorted(stats.theory)],
                y=[stats.theory[x] for x in sorted(stats.theory)],
                style="line",
                color="#e45756",
                dashed=True,
            )
        )
    unit = "span" if stats.strategy == "span" else "unit"
    return ChartSpec(
        note="" if stats.span_length_hist else "Random-token masking picks single tokens: no word spans to count.",
        title=f"{unit.capitalize()} length in words — {STRATEGY_TITLES[stats.strategy]}",
        x_label=f"{unit} length (words)",
        y_label="share of spans" if unit == "span" else "share of chosen units",
        series=series,
        whole_x=True,
        meta={"strategy": stats.strategy, "samples": stats.samples, "seed": stats.seed,
              "mask_ratio_mean": stats.mask_ratio_mean, "budget": stats.budget},
    )


def token_frequency_chart(stats: MaskStats) -> Any:
    """How often each token was masked over all samples (special tokens stay at 0)."""
    from explorer.core.io.charts import ChartSpec, Series

    n = len(stats.token_frequency)
    step = max(1, math.ceil(n / 25))
    return ChartSpec(
        title=f"Per-token mask frequency — {STRATEGY_TITLES[stats.strategy]}",
        x_label="token position",
        y_label="share of samples masked",
        whole_x=True,
        series=[
            Series(
                name=f"{stats.samples} samples (mean ratio {stats.mask_ratio_mean:.3f})",
                x=[float(i) for i in range(n)],
                y=stats.token_frequency,
                style="bar",
                color="#72b7b2",
                hover=[f"{i}: {t}" for i, t in enumerate(stats.tokens)],
            )
        ],
        x_ticks=[(float(i), f"{i}:{stats.tokens[i][:8]}") for i in range(0, n, step)],
        meta={"strategy": stats.strategy, "samples": stats.samples, "seed": stats.seed},
    )
