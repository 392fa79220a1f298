"""The benchmark harness runs a real row, keeps its schema, and turns failures into "not measured" rows.

Fast (one offscreen window start in a child process); asserts the schema, never the timings.
"""

from __future__ import annotations

import json

from benchmarks import bench_gui, run
from benchmarks.common import ROW_KEYS, STATUSES, is_measured, machine, make_row, row_problems


def test_first_paint_row_is_measured_and_well_formed():
    row = bench_gui.bench_first_paint(repeats=1)
    assert row_problems(row) == []
    assert tuple(row) == ROW_KEYS
    assert row["status"] in STATUSES
    assert is_measured(row), row["note"]
    assert row["value"] > 0 and row["baseline"] > 0
    assert row["ratio"] == row["value"] / row["baseline"]
    assert "torch imported by first paint in" in row["note"]


def test_schema_check_rejects_broken_rows():
    good = make_row("x", 1.0, baseline=2.0, unit="s", target="< 1 s", passed=True)
    assert row_problems(good) == [] and good["ratio"] == 0.5 and good["status"] == "PASS"
    missing = dict(good)
    del missing["target"]
    assert row_problems(missing)
    assert row_problems({**good, "status": "OK"})
    assert row_problems({**good, "value": "fast"})
    assert row_problems({**good, "value": None})  # PASS without a value
    assert make_row("x", None, unit="s", target="t", passed=True)["status"] == "MISS"


def test_failing_or_malformed_section_becomes_not_measured_rows():
    def boom(opts):
        raise RuntimeError("model file gone")

    rows = run.run_section(run.Section("boom", [("A", "s", "< 1 s"), ("B", "ms", "< 2 ms")], boom), run.Options())
    assert [r["name"] for r in rows] == ["A", "B"]
    for r in rows:
        assert row_problems(r) == [] and r["status"] == "MISS" and not is_measured(r)
        assert "model file gone" in r["note"]

    bad = run.run_section(run.Section("bad", [("C", "s", "")], lambda opts: [{"name": "C", "value": 1}]),
                          run.Options())
    assert row_problems(bad[0]) == [] and bad[0]["status"] == "MISS" and "malformed" in bad[0]["note"]

    late = run.run_section(run.Section("late", [("D", "s", "")], lambda opts: []), run.Options(deadline=0))
    assert late[0]["status"] == "MISS" and "time budget" in late[0]["note"]


def test_missing_helper_is_reported_not_raised():
    answers = run.run_calls([{"target": "benchmarks.no_such_bench:f"}], timeout=60)
    assert len(answers) == 1 and "error" in answers[0] and "no_such_bench" in answers[0]["error"]
    assert run.module_missing("no_such_bench") == "benchmarks/no_such_bench.py is missing"
    assert run.module_missing("bench_load") is None


def test_results_files_hold_rows_and_machine(tmp_path):
    rows = [
        make_row("Fast thing", 0.05, baseline=0.04, unit="s", target="≤ 1.2× bare", passed=False, note="n1"),
        run.not_measured("Absent thing", "benchmarks/x.py is missing", unit="s", target="< 1 s"),
    ]
    info = machine()
    json_path, md_path = run.write_results(rows, info, tmp_path, seconds=1.0)
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["rows"] == rows
    for key in ("cpu", "logical_cores", "python", "torch", "transformers"):
        assert key in data["machine"]
    md = md_path.read_text(encoding="utf-8")
    assert "| Fast thing | 50 ms | 40 ms | 1.25× | ≤ 1.2× bare | MISS |" in md
    assert "| Absent thing | not measured |" in md
    assert "not measured: benchmarks/x.py is missing" in md


def test_paired_medians_swaps_order_and_adds_pairs_for_fast_calls():
    from benchmarks.common import paired_medians

    order: list[str] = []
    a, b = paired_medians(lambda: order.append("app"), lambda: order.append("bare"), repeats=3, warmup=0)
    assert order == ["bare", "app", "app", "bare", "bare", "app"]
    assert a >= 0 and b >= 0
    order.clear()
    paired_medians(lambda: order.append("app"), lambda: order.append("bare"), repeats=3, warmup=0,
                   min_seconds=60.0, max_repeats=9)
    assert order.count("app") == order.count("bare") == 9
