"""Run every benchmark, print one table and write ``benchmarks/results/latest.json`` and ``latest.md``.

``make bench`` runs ``python -m benchmarks.run``. Each measurement runs in a fresh Python process with a
time limit, so one failing or hanging benchmark becomes a "not measured: <reason>" row, never a crash.
Options: ``--quick`` (fewest repeats, for a smoke run), ``--only WORD`` (sections whose key contains
WORD), ``--budget SECONDS`` (whole run; later sections are skipped when it is used up), ``--out DIR``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import bench_gui, bench_load, bench_long, bench_window
from benchmarks.common import (
    RESULTS_DIR,
    ROW_KEYS,
    STATUSES,
    is_measured,
    machine,
    machine_line,
    make_row,
    not_measured,
    row_problems,
    run_child,
    time_left,
)
from explorer.core.io.fileio import atomic_write_text

ANALYSIS_TARGET = 1.1
GENERATION_TARGET = 0.9


@dataclass
class Options:
    repeats: int = 3
    quick: bool = False
    deadline: float = float("inf")

    def timeout(self, wanted: float) -> float:
        """A child's time limit: ``wanted`` seconds, but never past the run's deadline."""
        return time_left(wanted, self.deadline)


@dataclass
class Section:
    """A group of rows measured together; ``names`` (with unit and target) label them if it cannot run."""

    key: str
    names: list[tuple[str, str, str]]  # (row name, unit, target)
    run: Callable[[Options], list[dict]]


# ---------------------------------------------------------------- running other helpers' functions


def child_calls(calls: list[dict]) -> list[dict]:
    """In a child process: call each ``{"target": "module:function", "kwargs": {...}}`` in turn and return
    ``{"result": ...}`` or ``{"error": "..."}`` for each; kwargs the function does not take are dropped."""
    out = []
    for call in calls:
        try:
            module_name, func_name = call["target"].split(":")
            fn = getattr(importlib.import_module(module_name), func_name)
            params = inspect.signature(fn).parameters
            takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
            kwargs = {k: v for k, v in call.get("kwargs", {}).items() if takes_any or k in params}
            out.append({"result": fn(**kwargs)})
        except Exception as err:  # one failing call must not lose the others' results
            out.append({"error": f"{type(err).__name__}: {err}"})
    return out


def module_missing(module: str) -> str | None:
    """Why ``benchmarks.<module>`` cannot be used, or None when its file is there."""
    if importlib.util.find_spec(f"benchmarks.{module}") is None:
        return f"benchmarks/{module}.py is missing"
    return None


def run_calls(calls: list[dict], timeout: float) -> list[dict]:
    """``child_calls`` in one fresh process; a crash or time-out becomes an error for every call."""
    try:
        return run_child("benchmarks.run:child_calls", {"calls": calls}, timeout=timeout)
    except Exception as err:
        return [{"error": str(err)} for _ in calls]


def _get(d: dict, *keys: str, default: Any = None) -> Any:
    for k in keys:
        if isinstance(d, dict) and d.get(k) is not None:
            return d[k]
    return default


def as_rows(result: Any) -> list[dict] | None:
    """Rows when a helper already returned row-shaped dicts (one, a list, or ``{"rows": [...]}``)."""
    items = result.get("rows") if isinstance(result, dict) and "rows" in result else result
    items = items if isinstance(items, list) else [items]
    if not items or not all(isinstance(r, dict) and "name" in r and "value" in r for r in items):
        return None
    rows = []
    for r in items:
        row = {k: r.get(k) for k in ROW_KEYS}
        row["unit"] = str(row["unit"] or "")
        row["target"] = str(row["target"] or "")
        row["note"] = str(row["note"] or "")
        if row["status"] not in STATUSES:
            passed = r.get("passed", r.get("ok"))
            row["status"] = "PASS" if passed and row["value"] is not None else "MISS"
        rows.append(row)
    return rows


def _unrecognised(name: str, result: Any, unit: str, target: str) -> dict:
    keys = sorted(result) if isinstance(result, dict) else type(result).__name__
    return not_measured(name, f"the benchmark returned a result the harness does not read ({keys})",
                        unit=unit, target=target)


# ---------------------------------------------------------------- sections


def _analysis(opts: Options) -> list[dict]:
    sizes = (32, 128, 512)
    rows = []
    missing = module_missing("bench_analysis")
    for model, label in (("minilm", "MiniLM"), ("smollm2", "SmolLM2"), ("gemma3", "gemma3")):
        names = [f"Analysis overhead: {label}, {n} tokens" for n in sizes]
        target = f"≤ {ANALYSIS_TARGET}× bare"
        if missing:
            rows += [not_measured(n, missing, unit="s", target=target) for n in names]
            continue
        calls = [{"target": "benchmarks.bench_analysis:bench_analysis_overhead",
                  "kwargs": {"model_name": model, "n_tokens": n,
                             "repeats": 1 if opts.quick else (opts.repeats if n >= 512 else opts.repeats + 2)}}
                 for n in sizes]
        for name, answer in zip(names, run_calls(calls, opts.timeout(360)), strict=True):
            rows.append(_analysis_row(name, answer, target))
    return rows


def _analysis_row(name: str, answer: dict, target: str) -> dict:
    if "error" in answer:
        return not_measured(name, answer["error"], unit="s", target=target)
    r = answer["result"]
    ready = as_rows(r)
    if ready:
        return ready[0]
    app, bare = _get(r, "app_seconds"), _get(r, "bare_seconds")
    if app is None or not bare:
        return _unrecognised(name, r, "s", target)
    limit = _get(r, "target_ratio", default=ANALYSIS_TARGET)
    note = (f"explorer.core.inspect.analysis.analyse vs bare model(**enc, output_attentions=True, "
            f"output_hidden_states=True), tokenizing included in both, run alternately; "
            f"{_get(r, 'n_tokens', default='?')} tokens, median of {_get(r, 'repeats', default='?')}")
    return make_row(name, app, baseline=bare, unit="s", target=target, passed=app / bare <= limit, note=note)


def _call_helper(name: str, unit: str, target: str, call: str, kwargs: dict,
                 timeout: float) -> tuple[Any, list[dict] | None]:
    """Run another helper's benchmark function in a fresh process: (its result, None), or (None, the rows
    to report) when it is missing, failed, or already returned finished rows."""
    missing = module_missing(call.split(":")[0].rsplit(".", 1)[1])
    if missing:
        return None, [not_measured(name, missing, unit=unit, target=target)]
    answer = run_calls([{"target": call, "kwargs": kwargs}], timeout)[0]
    if "error" in answer:
        return None, [not_measured(name, answer["error"], unit=unit, target=target)]
    ready = as_rows(answer["result"])
    return (None, ready) if ready else (answer["result"], None)


def _generation(opts: Options) -> list[dict]:
    name, unit, target = "Generation: streamed tokens/s vs bare generate", "tokens/s", f"≥ {GENERATION_TARGET}× bare"
    kwargs = {"repeats": 1 if opts.quick else opts.repeats}
    r, rows = _call_helper(name, unit, target, "benchmarks.bench_generation:bench_generation", kwargs, opts.timeout(300))
    if rows is not None:
        return rows
    app = _get(r, "app_tokens_per_second", "app_tps", "streamed_tokens_per_second", "app")
    bare = _get(r, "bare_tokens_per_second", "bare_tps", "generate_tokens_per_second", "bare")
    if not isinstance(app, (int, float)) or not isinstance(bare, (int, float)) or not bare:
        return [_unrecognised(name, r, unit, target)]
    limit = _get(r, "target_ratio", default=GENERATION_TARGET)
    note = (f"explorer.core.prompting.generation.generate streaming each token to a callback vs bare model.generate, greedy, "
            f"{_get(r, 'model', default='?')}, {_get(r, 'prompt_tokens', default='?')}-token prompt, "
            f"{_get(r, 'new_tokens', 'max_new_tokens', default='?')} new tokens, tokenizing and decoding in both, "
            f"run alternately; median of {_get(r, 'repeats', default='?')}")
    return [make_row(name, app, baseline=bare, unit=unit, target=target, passed=app / bare >= limit, note=note)]


def _masking(opts: Options) -> list[dict]:
    name, unit, target = "Masking: 10,000 SpanBERT samples of 512 tokens", "s", "< 1 s"
    kwargs = {"repeats": 1} if opts.quick else {}
    r, rows = _call_helper(name, unit, target, "benchmarks.bench_masking:bench_span_sampler", kwargs, opts.timeout(180))
    if rows is not None:
        return rows
    secs = _get(r, "seconds", "median_seconds", "app_seconds", "sample_seconds", "total_seconds")
    if not isinstance(secs, (int, float)):
        return [_unrecognised(name, r, unit, target)]
    limit = _get(r, "target_seconds", default=1.0)
    baseline = _get(r, "baseline_seconds", "bare_seconds", "naive_seconds", "loop_seconds")
    note = (f"explorer.core.pretraining.masking.sample_stats(…, 'span', samples={_get(r, 'samples', 'n_samples', default='?')}) "
            f"on {_get(r, 'tokens', 'n_tokens', default='?')} MiniLM tokens, after a warm-up")
    if isinstance(_get(r, "mask_ratio_mean"), (int, float)):
        note += f"; mean masked fraction {r['mask_ratio_mean']:.3f}"
    if isinstance(_get(r, "span_length_mean"), (int, float)):
        note += f", mean span {r['span_length_mean']:.2f} words"
    return [make_row(name, secs, baseline=baseline, unit=unit, target=target, passed=secs < limit, note=note)]


def _heatmap(opts: Options) -> list[dict]:
    name, unit, target = "Heatmap redraw, 512×512 attention", "s", "< 100 ms"
    kwargs = {"repeats": 3} if opts.quick else {}
    r, rows = _call_helper(name, unit, target, "benchmarks.bench_analysis:bench_heatmap_redraw", kwargs, opts.timeout(180))
    if rows is not None:
        return rows
    secs = _get(r, "redraw_seconds", "seconds", "median_seconds")
    if not isinstance(secs, (int, float)):
        return [_unrecognised(name, r, unit, target)]
    limit = _get(r, "target_seconds", default=0.1)
    first, worst = _get(r, "first_draw_seconds"), _get(r, "max_redraw_seconds")
    note = "ChartWidget.set_spec + repaint offscreen, median"
    if first is not None:
        note += f"; first draw {first * 1000:.0f} ms"
    if worst is not None:
        note += f", slowest redraw {worst * 1000:.0f} ms"
    return [make_row(name, secs, unit=unit, target=target, passed=secs < limit, note=note)]


def _load(opts: Options) -> list[dict]:
    # Every repeat is a fresh process importing torch: two each keeps the section near a minute.
    repeats = 1 if opts.quick else min(2, opts.repeats)
    return [bench_load.bench_smollm2_load(repeats, deadline=opts.deadline),
            bench_load.bench_minilm_load(repeats, deadline=opts.deadline)]


def _gemma3_load(opts: Options) -> list[dict]:
    return [bench_load.bench_gemma3_load(1 if opts.quick else min(2, opts.repeats), deadline=opts.deadline)]


def _gemma3_stall(opts: Options) -> list[dict]:
    return bench_gui.bench_load_stall(("gemma3",), deadline=opts.deadline)


def _gemma3_memory(opts: Options) -> list[dict]:
    return [bench_gui.bench_memory_three(deadline=opts.deadline)]


def _paint(opts: Options) -> list[dict]:
    return [bench_gui.bench_first_paint(1 if opts.quick else opts.repeats, deadline=opts.deadline)]


def _stall(opts: Options) -> list[dict]:
    return bench_gui.bench_stall(runs=1 if opts.quick else 2, deadline=opts.deadline)


def _memory(opts: Options) -> list[dict]:
    return [bench_gui.bench_memory(deadline=opts.deadline)]


def _long(opts: Options) -> list[dict]:
    return bench_long.bench_long_inputs(bench_long.SIZES, deadline=opts.deadline)


def _window(opts: Options) -> list[dict]:
    return bench_window.bench_window(repeats=1 if opts.quick else opts.repeats, deadline=opts.deadline)


def _long_names() -> list[tuple[str, str, str]]:
    out = []
    for n in bench_long.SIZES:
        out.append((f"Long input: SmolLM2 {n} tokens, whole-process peak memory", "MB",
                    "< 2500 MB" if n == 4096 else "dense estimate or less"))
        out.append((f"Long input: SmolLM2 {n} tokens, another layer's heatmap / head view", "s", "< 1 s"))
    return out


def _window_names() -> list[tuple[str, str, str]]:
    return [("Window: Prompting panel streamed generation vs bare generate", "tokens/s",
             f"≥ {GENERATION_TARGET}× bare")] + [
        (f"Window: Attention panel, {label} 128 tokens, button to drawn head view", "s", f"≤ {ANALYSIS_TARGET}× bare")
        for label in ("MiniLM", "SmolLM2", "gemma3")] + [
        (bench_window.FINETUNE_ROW, "s", f"≤ {bench_window.FINETUNE_TARGET}× bare")]


def _analysis_names() -> list[tuple[str, str, str]]:
    return [(f"Analysis overhead: {label}, {n} tokens", "s", f"≤ {ANALYSIS_TARGET}× bare")
            for label in ("MiniLM", "SmolLM2", "gemma3") for n in (32, 128, 512)]


SECTIONS = [
    Section("masking", [("Masking: 10,000 SpanBERT samples of 512 tokens", "s", "< 1 s")], _masking),
    Section("heatmap", [("Heatmap redraw, 512×512 attention", "s", "< 100 ms")], _heatmap),
    Section("paint", [("Window first paint (offscreen) vs empty QMainWindow", "s",
                       "paints before torch is imported")], _paint),
    Section("memory", [("Peak memory, MiniLM + SmolLM2 loaded", "MB", "< 1500 MB")], _memory),
    Section("stall", [("GUI stall while SmolLM2 analyses 512 tokens", "ms", "< 100 ms")]
            + [(n, "ms", "< 100 ms") for n in bench_gui.load_stall_names(("minilm", "smollm2"))], _stall),
    Section("analysis", _analysis_names(), _analysis),
    Section("generation", [("Generation: streamed tokens/s vs bare generate", "tokens/s",
                            f"≥ {GENERATION_TARGET}× bare")], _generation),
    Section("load", [("Model load: SmolLM2 cached vs first (GGUF)", "s", "≥ 5× faster"),
                     ("Model load: MiniLM vs bare from_pretrained", "s", "≤ 1.5× bare")], _load),
    Section("window", _window_names(), _window),
    Section("long", _long_names(), _long),
    # Keys start with "gemma3" so that ``--only gemma3`` measures just these rows.
    Section("gemma3-load", [("Model load: gemma3 cached vs first (GGUF)", "s", "≥ 5× faster")], _gemma3_load),
    Section("gemma3-stall", [(n, "ms", "< 100 ms") for n in bench_gui.load_stall_names(("gemma3",))],
            _gemma3_stall),
    Section("gemma3-memory", [("Peak memory, MiniLM + SmolLM2 + gemma3 loaded", "MB", "< 3000 MB")],
            _gemma3_memory),
]


def run_section(section: Section, opts: Options) -> list[dict]:
    """The section's rows; if it raises, runs past the deadline or returns malformed rows, say so per row."""
    if time.monotonic() >= opts.deadline:
        return [not_measured(n, "skipped: the run's time budget was used up", unit=u, target=t)
                for n, u, t in section.names]
    try:
        rows = section.run(opts)
    except Exception as err:  # a harness bug in one section must not lose the others
        return [not_measured(n, f"{type(err).__name__}: {err}", unit=u, target=t) for n, u, t in section.names]
    out = []
    for row in rows:
        problems = row_problems(row)
        if problems:
            name = row.get("name") if isinstance(row, dict) and row.get("name") else section.key
            row = not_measured(str(name), "malformed row: " + "; ".join(problems))
        out.append(row)
    return out


# ---------------------------------------------------------------- output


def fmt_value(value: float | None, unit: str) -> str:
    """A number with its unit, readable (seconds under one shown as ms)."""
    if value is None:
        return "—"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "tokens/s":
        return f"{value:.1f} tok/s"
    return f"{value:.3g} {unit}".strip()


def fmt_ratio(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}×"


def markdown(rows: list[dict], info: dict, seconds: float | None = None) -> str:
    """The table the README shows: one line per row, notes below it, and the machine."""
    lines = ["| Benchmark | Result | Baseline | Ratio | Target | Status |", "|---|---:|---:|---:|---|---|"]
    for r in rows:
        result = fmt_value(r["value"], r["unit"]) if is_measured(r) else "not measured"
        lines.append(f"| {r['name']} | {result} | {fmt_value(r['baseline'], r['unit'])} | {fmt_ratio(r['ratio'])} "
                     f"| {r['target']} | {r['status']} |")
    lines += ["", "Notes:", ""]
    lines += [f"- **{r['name']}**: {r['note']}" for r in rows if r["note"]]
    took = f" The whole run took {seconds / 60:.1f} minutes." if seconds is not None else ""
    lines += ["", f"Measured {info.get('date', '')} on {machine_line(info)}.{took}"]
    busy = busy_warning(info)
    if busy:
        lines += ["", busy]
    return "\n".join(lines) + "\n"


def busy_warning(info: dict) -> str:
    """A warning when other work loaded the machine during the run (absolute timings are then noisy)."""
    cores = info.get("logical_cores") or 1
    loads = [x for x in (info.get("load_average", [None])[0], info.get("load_average_end")) if x is not None]
    if not loads or max(loads) <= cores:
        return ""
    return (f"The machine was busy during this run (load average up to {max(loads):.1f} on {cores} cores): "
            "absolute times are inflated; ratios, measured alternately against their baseline, are less affected.")


def console_table(rows: list[dict]) -> str:
    """Plain-text table for the terminal (notes of unmeasured rows inline)."""
    cells = [("Benchmark", "Result", "Baseline", "Ratio", "Target", "Status")]
    for r in rows:
        result = fmt_value(r["value"], r["unit"]) if is_measured(r) else r["note"]
        cells.append((r["name"], result, fmt_value(r["baseline"], r["unit"]), fmt_ratio(r["ratio"]), r["target"],
                      r["status"]))
    widths = [min(60, max(len(c[i]) for c in cells)) for i in range(6)]
    out = []
    for i, c in enumerate(cells):
        out.append("  ".join(str(x)[:60].ljust(w) for x, w in zip(c, widths, strict=True)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def write_results(rows: list[dict], info: dict, out_dir: Path, seconds: float | None = None,
                  stem: str = "latest") -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` (atomically) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"rows": rows, "machine": info, "seconds": seconds}
    paths = (out_dir / f"{stem}.json", out_dir / f"{stem}.md")
    texts = (json.dumps(data, indent=1, ensure_ascii=False) + "\n", markdown(rows, info, seconds))
    for path, text in zip(paths, texts, strict=True):
        atomic_write_text(path, text)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat each (a smoke run, noisy numbers)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats for medians (default 3)")
    parser.add_argument("--only", action="append", default=[], metavar="WORD",
                        help="run only sections whose key contains WORD: " + ", ".join(s.key for s in SECTIONS))
    parser.add_argument("--budget", type=float, default=1200.0, help="seconds for the whole run (default 1200)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where latest.json and latest.md go")
    args = parser.parse_args(argv)

    start = time.monotonic()
    opts = Options(repeats=max(1, args.repeats), quick=args.quick, deadline=start + args.budget)
    info = machine()
    info["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"LM Explorer benchmarks on {machine_line(info)}", flush=True)
    sections = [s for s in SECTIONS if not args.only or any(w in s.key for w in args.only)]
    if not sections:
        parser.error(f"no section matches {args.only}; sections: {', '.join(s.key for s in SECTIONS)}")
    rows: list[dict] = []
    for section in sections:
        t0 = time.monotonic()
        print(f"[{time.monotonic() - start:5.0f} s] {section.key}…", flush=True)
        new = run_section(section, opts)
        rows += new
        for r in new:
            shown = fmt_value(r["value"], r["unit"]) if is_measured(r) else r["note"]
            print(f"    {r['status']:4}  {r['name']}: {shown}", flush=True)
        print(f"    ({time.monotonic() - t0:.0f} s)", flush=True)
    seconds = time.monotonic() - start
    try:
        info["load_average_end"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    # A partial run (--only / --quick) must not replace the full table the README quotes.
    stem = "partial" if (args.only or args.quick) else "latest"
    json_path, md_path = write_results(rows, info, args.out, seconds, stem=stem)
    print()
    print(console_table(rows))
    missed = [r for r in rows if r["status"] == "MISS"]
    if busy_warning(info):
        print("\n" + busy_warning(info))
    print(f"\n{len(rows) - len(missed)} PASS, {len(missed)} MISS in {seconds / 60:.1f} min; "
          f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
