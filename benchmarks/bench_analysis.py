"""Analysis pass vs bare transformers, and a 512x512 heatmap redraw.

Run: ``.venv/bin/python benchmarks/bench_analysis.py [minilm|smollm2] [n_tokens]``; prints JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import paired_medians, text_of  # noqa: E402


def bench_analysis_overhead(model_name: str = "minilm", n_tokens: int = 512, repeats: int = 7) -> dict:
    """Median seconds of ``analyse`` and of a bare ``model(**enc, output_attentions=True,
    output_hidden_states=True)`` (tokenizing included in both), measured alternately in this call; ``repeats`` is
    the fewest pairs."""
    import torch

    from explorer.core.inspect.analysis import analyse
    from explorer.core.models.loading import load_model

    torch.set_num_threads(max(1, torch.get_num_threads()))
    loaded = load_model(model_name)
    text = text_of(loaded.tokenizer, n_tokens)

    def bare() -> None:
        enc = loaded.tokenizer(text, return_tensors="pt")
        if loaded.kind == "decoder":
            enc.pop("token_type_ids", None)
        with torch.no_grad():
            loaded.model(**enc, output_attentions=True, output_hidden_states=True)

    calls = []

    def app() -> None:
        analyse(loaded, text)
        calls.append(1)

    # Fast rows get more pairs (about 4 s of them): a median of three moves by more than the 10 % target.
    a, b = paired_medians(app, bare, repeats=repeats, min_seconds=4.0)
    pairs = len(calls) - 1  # less the warm-up
    n = analyse(loaded, text).num_tokens
    return {"model": model_name, "n_tokens": n, "repeats": pairs, "app_seconds": a, "bare_seconds": b,
            "ratio": a / b, "target_ratio": 1.1}


def bench_heatmap_redraw(size: int = 512, repeats: int = 10) -> dict:
    """Median seconds to redraw a ``size``x``size`` ChartWidget heatmap offscreen (set_spec + paint)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from explorer.core.io.charts import ChartSpec
    from explorer.gui.widgets.chart import ChartWidget

    app = QApplication.instance() or QApplication([])
    chart = ChartWidget()
    chart.resize(1000, 900)
    chart.show()
    app.processEvents()
    rng = np.random.default_rng(0)
    labels = [f"tok{i}" for i in range(size)]

    def spec() -> ChartSpec:
        m = rng.random((size, size), dtype=np.float32)
        m /= m.sum(-1, keepdims=True)
        return ChartSpec(title="bench", kind="heatmap", matrix=m, row_labels=labels, col_labels=labels)

    specs = [spec() for _ in range(repeats + 1)]
    t0 = time.perf_counter()
    chart.set_spec(specs[0])
    chart.graphics.viewport().repaint()
    first = time.perf_counter() - t0
    times = []
    for s in specs[1:]:
        t0 = time.perf_counter()
        chart.set_spec(s)
        chart.graphics.viewport().repaint()
        app.processEvents()
        times.append(time.perf_counter() - t0)
    chart.close()
    return {"size": size, "first_draw_seconds": first, "redraw_seconds": statistics.median(times),
            "max_redraw_seconds": max(times), "target_seconds": 0.1}


if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "minilm"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    print(json.dumps(bench_analysis_overhead(name, n), indent=1))
    print(json.dumps(bench_heatmap_redraw(), indent=1))
