"""The window as fast as the core: panels driven by their buttons (offscreen Qt), against bare transformers
in the same process, run alternately.

- streamed generation in the Prompting panel, from ``Generate`` to the finished text with the first step's
  distribution chart drawn, vs bare ``model.generate`` (greedy, same prompt, same token limit);
- an attention analysis from ``Analyse`` to the drawn head view, vs bare
  ``model(**enc, output_attentions=True, output_hidden_states=True)``;
- a frozen fine-tune of the bundled sentiment set in the Heads panel's fine-tune lab, from ``Train`` to the drawn
  result chart (features, L-BFGS fit with validation accuracy, head saved), vs bare transformers features plus
  scikit-learn's ``LogisticRegression`` (same rows, batches, pooling and objective, validation scored, weights
  saved).

Run alone: ``.venv/bin/python -m benchmarks.bench_window``.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from typing import Any

from benchmarks.common import make_row, not_measured, paired_medians, run_child, text_of, time_left

GENERATION_TARGET = 0.9
ANALYSIS_TARGET = 1.1
FINETUNE_TARGET = 1.1


FINETUNE_ROW = "Window: frozen fine-tune of the sample set, button to chart"


def _wait(app: Any, cond: Any, timeout: float) -> float:
    """Run the event loop until ``cond()``, as the app's own loop does: sleep until the next event (a worker's
    queued signal wakes it at once) rather than polling with sleeps, which added up to 2 ms per hand-off and
    per paint request; seconds waited (raises on time-out)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    # Bounds each wait, so a condition no event announces is still seen; every 100 ms, as a 10 ms tick woke the
    # GUI thread (taking a core from the model's threads) far more often than the app's own event loop does.
    tick = QTimer()
    tick.start(100)
    t0 = time.perf_counter()
    try:
        while not cond():
            loop.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError("the panel did not finish in time")
        app.processEvents()
    finally:
        tick.stop()
    return time.perf_counter() - t0


def _context(models: tuple[str, ...]) -> tuple[Any, Any, dict]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["LM_EXPLORER_DATA_DIR"] = tempfile.mkdtemp(prefix="lmx-bench-window-")
    from PySide6.QtWidgets import QApplication

    from explorer.core.models.loading import load_model
    from explorer.gui.context import AppContext

    app = QApplication.instance() or QApplication(["lm-explorer-bench"])
    ctx = AppContext()
    loaded = {m: load_model(m) for m in models}
    ctx.models.loaded.update(loaded)
    ctx.models.changed.emit()
    return app, ctx, loaded


def child_generation_window(model: str = "smollm2", new_tokens: int = 48, repeats: int = 3) -> dict:
    """Tokens/s of the Prompting panel's streamed generation (button to drawn chart) and of bare generate."""
    import torch

    from explorer.gui.panels.prompting.panel import PromptingPanel

    app, ctx, loaded = _context((model,))
    lm = loaded[model]
    panel = PromptingPanel(ctx)
    panel.resize(1024, 700)
    panel.show()
    panel.model_picker.select(model)
    panel.set_task("qa")
    panel.stop_edit.setText("")
    panel.max_tokens_spin.setValue(new_tokens)
    panel.sample_check.setChecked(False)
    built = panel.rebuild_prompt()
    app.processEvents()

    def bare() -> int:
        enc = lm.tokenizer(built.text, return_tensors="pt", add_special_tokens=built.add_special_tokens)
        enc.pop("token_type_ids", None)
        with lm.lock, torch.no_grad():
            out = lm.model.generate(**enc, max_new_tokens=new_tokens, do_sample=False)
        lm.tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        return int(out.shape[1] - enc["input_ids"].shape[1])

    def window() -> int:
        panel.dist_chart.clear()
        panel.run_generation()
        _wait(app, lambda: panel.gen_job.done and panel.dist_chart.spec is not None, 600)
        panel.dist_chart.graphics.viewport().repaint()
        return len(panel.result.steps)

    bare()
    window()  # warm up both
    app_tps, bare_tps, counts = [], [], []
    for _ in range(repeats):
        for fn, store in ((bare, bare_tps), (window, app_tps)):
            t0 = time.perf_counter()
            n = fn()
            store.append(n / (time.perf_counter() - t0))
            counts.append(n)
    return {"app_tokens_per_second": statistics.median(app_tps), "bare_tokens_per_second": statistics.median(bare_tps),
            "tokens": counts, "prompt_tokens": len(lm.tokenizer(built.text)["input_ids"]), "repeats": repeats,
            "load_average": os.getloadavg()[0]}


def child_attention_window(model: str = "minilm", n_tokens: int = 128, repeats: int = 3) -> dict:
    """Seconds from the Attention panel's ``Analyse`` to its drawn head view, and of the bare pass."""
    import torch
    from PySide6.QtCore import QEvent, QObject

    from explorer.gui.panels.attention import AttentionPanel

    app, ctx, loaded = _context((model,))
    lm = loaded[model]
    panel = AttentionPanel(ctx)
    panel.resize(1024, 700)
    panel.show()
    panel.picker.select(model)
    panel.set_view("head")
    # A new text each run, new from its first token: a decoder's first rows (the ones on screen) do not see later
    # tokens, and the same drawing again is not drawn again.
    texts = [prefix + text_of(lm.tokenizer, n_tokens) for prefix in ("A ", "B ")]
    app.processEvents()
    drawn: list[float] = []  # when the head view was painted

    class PaintClock(QObject):
        def eventFilter(self, _obj: Any, event: Any) -> bool:  # noqa: N802 - Qt naming
            if event.type() == QEvent.Type.Paint:
                drawn.append(time.perf_counter())
            return False

    clock = PaintClock()
    panel.head_view.installEventFilter(clock)

    def bare() -> None:
        enc = lm.tokenizer(texts[0], return_tensors="pt")
        if lm.kind == "decoder":
            enc.pop("token_type_ids", None)
        with lm.lock, torch.no_grad():
            lm.model(**enc, output_attentions=True, output_hidden_states=True)

    runs = [0]
    first_drawn: list[float] = []

    def window() -> None:
        text = texts[runs[0] % 2]
        runs[0] += 1
        drawn.clear()
        t0 = time.perf_counter()
        ctx.text.set_text(text)
        panel.run()
        _wait(app, lambda: panel.analysis is not None and panel.analysis.text == text and panel.job.done, 600)
        panel.head_view.repaint()
        first_drawn.append(drawn[0] - t0)

    # A fast row gets more pairs (about 4 s of them): a median of three moves by more than the 10 % target.
    app_seconds, bare_seconds = paired_medians(window, bare, repeats, min_seconds=4.0)
    return {"app_seconds": app_seconds, "bare_seconds": bare_seconds,
            "first_drawn_seconds": statistics.median(first_drawn[1:]),
            "n_tokens": panel.analysis.num_tokens, "repeats": runs[0] - 1, "load_average": os.getloadavg()[0]}


def child_finetune_window(model: str = "minilm", repeats: int = 3) -> dict:
    """Seconds from the fine-tune lab's ``Train`` (frozen, the bundled sentiment set) to its drawn result chart,
    and of the bare equivalent (see the module docstring)."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    from explorer.gui.panels.heads.panel import HeadsPanel

    app, ctx, loaded = _context((model,))
    lm = loaded[model]
    panel = HeadsPanel(ctx)
    panel.resize(1024, 700)
    panel.show()
    panel.tabs.setCurrentIndex(1)  # the fine-tune lab
    panel.ft_picker.select(model)
    panel.mode_group.button(0).setChecked(True)  # frozen
    _wait(app, lambda: panel.costs is not None and panel.data is not None, 120)
    data = panel.data
    assert panel._mode() == "frozen" and data.task == "classify"
    rows = data.train + data.val  # the app's own seeded split, so both sides see the same rows
    labels = np.array([data.label2id[ex.label] for ex in rows])
    n_train = len(data.train)
    out_root = tempfile.mkdtemp(prefix="lmx-bench-ft-")
    runs = [0]
    accuracy: dict[str, float] = {}

    def bare() -> None:
        tok, encoder = lm.tokenizer, lm.model
        feats = []
        for lo in range(0, len(rows), 32):  # the app's batches: 32 rows, padded per batch
            enc = tok([ex.text for ex in rows[lo:lo + 32]], padding=True, truncation=True, return_tensors="pt")
            with lm.lock, torch.no_grad():
                h = encoder(**enc).last_hidden_state  # [batch, token, hidden]
            mask = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            feats.append(((h * mask).sum(1) / mask.sum(1)).numpy())  # mean pooling, the model's own
        x = np.concatenate(feats).astype(np.float64)
        clf = LogisticRegression(C=1.0, max_iter=500).fit(x[:n_train], labels[:n_train])
        accuracy["bare"] = float(clf.score(x[n_train:], labels[n_train:]))
        runs[0] += 1
        np.savez(os.path.join(out_root, f"bare-{runs[0]}.npz"), coef=clf.coef_, intercept=clf.intercept_)

    windows = [0]

    def window() -> None:
        runs[0] += 1
        windows[0] += 1
        panel.out_edit.setText(os.path.join(out_root, f"app-{runs[0]}"))  # a new folder: no replace question
        panel.ft_result = None
        panel.train()
        _wait(app, lambda: panel.ft_result is not None and panel._ft_job.done, 600)
        panel.train_chart.graphics.viewport().repaint()
        accuracy["app"] = panel.ft_result.val_accuracy

    # At least ~10 s of pairs: one pair is ~1.5 s, and three of them moved this row by 15 % between runs.
    app_seconds, bare_seconds = paired_medians(window, bare, repeats, min_seconds=10.0)
    r = panel.ft_result
    return {"app_seconds": app_seconds, "bare_seconds": bare_seconds,
            "train_rows": r.train_rows, "val_rows": r.val_rows, "rounds": len(r.history), "converged": r.converged,
            "app_val_accuracy": accuracy["app"], "bare_val_accuracy": accuracy["bare"], "pooling": r.pooling,
            "repeats": windows[0] - 1, "load_average": os.getloadavg()[0]}


def _row(name: str, unit: str, target: str, child: str, kwargs: dict, deadline: float | None,
         judge: Any) -> dict:
    """One row from a child run; ``judge(result)`` gives (app, baseline, passed, note). A failed child is a
    "not measured" row, never a crash."""
    try:
        r = run_child(f"benchmarks.bench_window:{child}", kwargs, timeout=time_left(600, deadline))
        a, b, passed, note = judge(r)
        return make_row(name, a, baseline=b, unit=unit, target=target, passed=passed, note=note)
    except Exception as err:
        return not_measured(name, str(err), unit=unit, target=target)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def bench_window(repeats: int = 3, deadline: float | None = None) -> list[dict]:
    """Rows: the Prompting panel's streamed generation, the Attention panel's analysis and the fine-tune lab's
    frozen run, each against bare transformers."""

    def generation(r: dict) -> tuple:
        a, b = r["app_tokens_per_second"], r["bare_tokens_per_second"]
        return a, b, a / b >= GENERATION_TARGET, (
            f"PromptingPanel (1024x700, offscreen), SmolLM2, greedy, qa task prompt of {r['prompt_tokens']} tokens, "
            f"up to 48 new tokens; Generate button to the finished text with the first step's distribution chart "
            f"drawn, vs bare model.generate, alternately, median of {r['repeats']}; load average "
            f"{r['load_average']:.1f}")

    def attention(r: dict) -> tuple:
        a, b = r["app_seconds"], r["bare_seconds"]
        return a, b, a / b <= ANALYSIS_TARGET, (
            f"AttentionPanel (1024x700, offscreen), {r['n_tokens']} tokens; Analyse button to the drawn head view "
            f"(first drawn after {_ms(r['first_drawn_seconds'])}) vs bare model(**enc, output_attentions=True, "
            f"output_hidden_states=True), alternately, median of {r['repeats']}; load average "
            f"{r['load_average']:.1f}")

    def finetune(r: dict) -> tuple:
        a, b = r["app_seconds"], r["bare_seconds"]
        return a, b, a / b <= FINETUNE_TARGET, (
            f"HeadsPanel fine-tune lab (1024x700, offscreen), MiniLM, frozen, the bundled sentiment set "
            f"({r['train_rows']} training / {r['val_rows']} validation rows); Train button to the drawn result "
            f"chart: features ({r['pooling']} pooling, batches of 32), L-BFGS to convergence ({r['rounds']} "
            f"rounds, validation accuracy each round), head and manifest saved. Bare: the same model's features "
            f"for the same rows and batches, scikit-learn LogisticRegression (C = 1, lbfgs) fitted and scored on "
            f"the validation rows, weights saved with numpy. Validation accuracy app {r['app_val_accuracy']:.3f}, "
            f"bare {r['bare_val_accuracy']:.3f}; alternately, median of {r['repeats']}; load average "
            f"{r['load_average']:.1f}")

    rows = [_row("Window: Prompting panel streamed generation vs bare generate", "tokens/s",
                 f"≥ {GENERATION_TARGET}× bare", "child_generation_window", {"repeats": repeats}, deadline,
                 generation)]
    for model, label in (("minilm", "MiniLM"), ("smollm2", "SmolLM2"), ("gemma3", "gemma3")):
        rows.append(_row(f"Window: Attention panel, {label} 128 tokens, button to drawn head view", "s",
                         f"≤ {ANALYSIS_TARGET}× bare", "child_attention_window",
                         {"model": model, "repeats": repeats}, deadline, attention))
    rows.append(_row(FINETUNE_ROW, "s", f"≤ {FINETUNE_TARGET}× bare", "child_finetune_window", {"repeats": repeats},
                     deadline, finetune))
    return rows


if __name__ == "__main__":
    print(json.dumps(bench_window(), indent=1))
