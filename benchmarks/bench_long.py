"""Long inputs in the window: SmolLM2 at 1k / 2k / 4k tokens analysed from the Attention panel's button.

Each size runs in a fresh process: offscreen Qt, the app context, the Attention panel (1024x700) and SmolLM2
loaded. Measured: the whole process's peak resident memory (VmHWM, the load included), seconds from
``Analyse`` to the drawn heatmap, and seconds from choosing another layer to its drawn heatmap and head view
(the recompute included). Baselines in the same process: a bare ``model(**enc)`` forward (eager attention,
no attention kept) for time, and for memory the dense estimate: the process after loading plus every
layer's float32 maps (what ``output_attentions=True`` would keep).

Run alone: ``.venv/bin/python -m benchmarks.bench_long [n_tokens]``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Any

from benchmarks.common import (
    SENTENCE,
    make_row,
    not_measured,
    peak_rss_bytes,
    rss_bytes,
    run_child,
    time_left,
)

SIZES = (1024, 2048, 4096)
MEMORY_TARGET_MB = 2500.0
SWITCH_TARGET_S = 1.0


def _wait(app: Any, cond: Any, timeout: float) -> float:
    """Process events until ``cond()``; seconds waited (raises on time-out)."""
    t0 = time.perf_counter()
    while not cond():
        app.processEvents()
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("the panel did not finish drawing in time")
        time.sleep(0.002)
    app.processEvents()
    return time.perf_counter() - t0


def child_long_input(n_tokens: int = 4096, model: str = "smollm2", top_k: int = 32) -> dict:
    """One long analysis driven through the Attention panel; memory and times (see the module docstring)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["LM_EXPLORER_DATA_DIR"] = tempfile.mkdtemp(prefix="lmx-bench-long-")
    import torch
    from PySide6.QtWidgets import QApplication

    from explorer.core.inspect.analysis import analysis_limit
    from explorer.core.models.loading import load_model
    from explorer.gui.context import AppContext
    from explorer.gui.panels.attention import AttentionPanel

    app = QApplication.instance() or QApplication(["lm-explorer-bench"])
    ctx = AppContext()
    loaded = load_model(model)
    ctx.models.loaded[model] = loaded
    ctx.models.changed.emit()
    panel = AttentionPanel(ctx)
    panel.resize(1024, 700)
    panel.show()
    app.processEvents()
    after_load = rss_bytes()
    ids = loaded.tokenizer(SENTENCE * (n_tokens // 8 + 2), add_special_tokens=False)["input_ids"][:n_tokens]
    text = loaded.tokenizer.decode(ids)
    enc = loaded.tokenizer(text, return_tensors="pt")
    enc.pop("token_type_ids", None)
    n = int(enc["input_ids"].shape[1])

    ctx.text.set_text(text)
    panel.picker.select(model)
    panel.set_view("heatmap")
    t0 = time.perf_counter()
    panel.run()
    drawn = lambda layer: (panel.analysis is not None and panel.heatmap.spec is not None  # noqa: E731
                           and panel.heatmap.spec.meta.get("layer") == layer
                           and (panel._prepare_job is None or panel._prepare_job.done))
    _wait(app, lambda: drawn(0), 1800)
    analyse_s = time.perf_counter() - t0
    a = panel.analysis
    switches = []
    for layer in (a.num_layers // 2, a.num_layers - 1):
        t0 = time.perf_counter()
        panel.layer_spin.setValue(layer)
        _wait(app, lambda layer=layer: drawn(layer), 120)
        switches.append(time.perf_counter() - t0)
    panel.set_view("head")
    t0 = time.perf_counter()
    panel.layer_spin.setValue(3)
    _wait(app, lambda: panel.head_view.title.startswith(f"{a.model_name} · layer 3"), 120)
    app.processEvents()
    head_switch = time.perf_counter() - t0
    peak = peak_rss_bytes()
    # The baseline forward last: eager attention's transient n x n maps must not count in the app's peak.
    t0 = time.perf_counter()
    with loaded.lock, torch.inference_mode():
        loaded.model(**enc, use_cache=False)
    bare_s = time.perf_counter() - t0
    L, H = a.num_layers, a.num_heads
    return {"n_tokens": a.num_tokens, "asked_tokens": n, "exact": a.exact, "top_k": top_k,
            "limit": analysis_limit(loaded), "peak_mb": peak / 1e6, "after_load_mb": after_load / 1e6,
            "dense_estimate_mb": (after_load + 4 * L * H * a.num_tokens ** 2) / 1e6,
            "store_mb": a.attentions.nbytes() / 1e6 if not a.exact else None,
            "analyse_seconds": analyse_s, "bare_forward_seconds": bare_s,
            "heatmap_switch_seconds": max(switches), "head_view_switch_seconds": head_switch,
            "load_average": os.getloadavg()[0]}


def bench_long_inputs(sizes: tuple[int, ...] = SIZES, deadline: float | None = None) -> list[dict]:
    """Rows: peak memory and times at each size (each in a fresh process)."""
    rows = []
    for n in sizes:
        mem_name = f"Long input: SmolLM2 {n} tokens, whole-process peak memory"
        time_name = f"Long input: SmolLM2 {n} tokens, another layer's heatmap / head view"
        target = f"< {MEMORY_TARGET_MB:.0f} MB" if n == 4096 else "dense estimate or less"
        try:
            r = run_child("benchmarks.bench_long:child_long_input", {"n_tokens": n},
                          timeout=time_left(1800, deadline))
        except Exception as err:
            rows += [not_measured(mem_name, str(err), unit="MB", target=target),
                     not_measured(time_name, str(err), unit="s", target=f"< {SWITCH_TARGET_S:.0f} s")]
            continue
        mem_ok = r["peak_mb"] < (MEMORY_TARGET_MB if n == 4096 else r["dense_estimate_mb"])
        form = "exact (dense)" if r["exact"] else f"compact top-{r['top_k']}"
        rows.append(make_row(
            mem_name, r["peak_mb"], baseline=r["dense_estimate_mb"], unit="MB", target=target, passed=mem_ok,
            note=(f"Attention panel (1024x700, offscreen) with SmolLM2 loaded, {r['n_tokens']} tokens analysed "
                  f"({form}) and heatmaps drawn; VmHWM of the whole process, the load included "
                  f"({r['after_load_mb']:.0f} MB after loading). Baseline: that plus every layer's float32 maps. "
                  f"Analyse button to drawn heatmap {r['analyse_seconds']:.1f} s vs a bare forward "
                  f"{r['bare_forward_seconds']:.1f} s; load average {r['load_average']:.1f}")))
        switch = max(r["heatmap_switch_seconds"], r["head_view_switch_seconds"])
        rows.append(make_row(
            time_name, switch, unit="s", target=f"< {SWITCH_TARGET_S:.0f} s", passed=switch < SWITCH_TARGET_S,
            note=(f"slowest of: choosing another layer to its drawn heatmap (512 rows, recompute included) "
                  f"{r['heatmap_switch_seconds'] * 1000:.0f} ms, to its drawn head view "
                  f"{r['head_view_switch_seconds'] * 1000:.0f} ms; load average {r['load_average']:.1f}")))
    return rows


if __name__ == "__main__":
    sizes = tuple(int(a) for a in sys.argv[1:]) or SIZES
    print(json.dumps(bench_long_inputs(sizes), indent=1))
