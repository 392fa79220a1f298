"""One export path: a chart's PNG and SVG are one drawing at a fixed export size, and the SVG puts every data
point where its own axis ticks say, for one chart, for Export all and for the CLI's ``--export``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from explorer.core.io.charts import ChartSpec, Series
from explorer.gui.widgets.chart import EXPORT_SCALE, EXPORT_SIZE, PALETTE, ChartWidget, slug
from tests.svg_axes import read_svg_chart


def _lines() -> ChartSpec:
    return ChartSpec("Similarity", x_label="layer", y_label="cosine", note="baseline: random pairs of words",
                     series=[Series("bank", list(range(7)), [0.9, 0.6, 0.4, 0.5, 0.5, 0.5, 0.6]),
                             Series("baseline", list(range(7)), [0.068, 0.1, 0.2, 0.2, 0.228, 0.228, 0.01],
                                    dashed=True)])


def _assert_on_axes(svg, spec: ChartSpec, colors: list[str]) -> None:
    chart = read_svg_chart(svg)
    tol = 1.0 / chart.y_pixels_per_unit()  # one pixel, in data units
    for k, (s, color) in enumerate(zip(spec.series, colors, strict=True)):
        drawn = chart.series_points(color, len(s.x), colors[:k].count(color))
        for (dx, dy), x, y in zip(drawn, s.x, s.y, strict=True):
            assert dx == pytest.approx(x, abs=0.02) and dy == pytest.approx(y, abs=tol), (s.name, x, y, dy)


def test_svg_and_png_are_drawn_at_the_export_size_on_their_axes(qtbot, tmp_path):
    """A chart squeezed to 600x200 on screen exports at the fixed size: the PNG is 2x of it, the SVG's lines
    sit where the ticks say (pyqtgraph's SVGExporter put the 0.068 baseline below the axis's 0), and the legend
    is printed at the axes' font size."""
    chart = ChartWidget()
    qtbot.addWidget(chart)
    chart.resize(600, 200)
    chart.show()
    spec = _lines()
    chart.set_spec(spec)
    svg = chart.export(tmp_path / "c.svg")
    _assert_on_axes(svg, spec, PALETTE[:2])
    png = QImage(str(chart.export(tmp_path / "c.png")))
    assert (png.width(), png.height()) == (EXPORT_SIZE[0] * EXPORT_SCALE, EXPORT_SIZE[1] * EXPORT_SCALE)
    text = svg.read_text()
    size_of = {t: s for s, t in __import__("re").findall(r'font-size="([\d.]+)"[^>]*\n?\s*>([^<]+)</text>', text)}
    assert size_of["bank"] == size_of["baseline"] == size_of["0.2"]  # legend and tick labels alike
    assert "Similarity" in size_of and "layer" in "".join(size_of)


def test_svg_markers_are_circles_on_the_line_vertices(qtbot, tmp_path):
    """A short line carries a round marker at each point. The SVG draws each as a path centred on its vertex; it
    once wrote the scatter's cached strip of symbols as an image per point, squeezed into hatched squares."""
    import re

    chart = ChartWidget()
    qtbot.addWidget(chart)
    spec = _lines()
    chart.set_spec(spec)
    text = chart.export(tmp_path / "c.svg").read_text()
    assert "<image" not in text
    lines = [[(float(x), float(y)) for x, y in re.findall(r"([\d.]+),([\d.]+)", d)]
             for d in re.findall(r'd="(M[\d.]+,[\d.]+(?: L[\d.]+,[\d.]+){6})"', text)]
    assert len(lines) == 2  # the two series, seven points each
    # a circle path starts at its rightmost point, radius 3 (symbol size 6), then runs in cubic curves
    centres = [(float(x) - 3, float(y)) for x, y in re.findall(r'd="M([\d.]+),([\d.]+) C', text)]
    assert len(centres) == 14 + 2  # and one in each legend sample
    for vx, vy in (v for line in lines for v in line):
        assert any(abs(cx - vx) <= 0.05 and abs(cy - vy) <= 0.05 for cx, cy in centres), (vx, vy)


def test_bank_two_senses_exports_agree_with_the_csv(qtbot, ctx_with_models, tmp_path):
    """The issue's case: the bank two-sense chart in the window, exported alone and by Export all; every line's
    vertices (the baseline's 0.068 at layer 0 included) sit on the axes where the CSV says."""
    from explorer.gui.panels.embeddings import EmbeddingsPanel

    panel = EmbeddingsPanel(ctx_with_models)
    qtbot.addWidget(panel)
    panel.resize(1024, 700)
    panel.show()
    i = panel.preset_combo.findText("bank: river twice vs money twice")
    panel.result = None
    panel.preset_combo.setCurrentIndex(i)
    qtbot.waitUntil(lambda: panel.result is not None, timeout=60_000)
    panel.view_combo.setCurrentIndex(panel.view_combo.findData("raw"))
    spec = panel.sim_chart.spec
    colors = [s.color or PALETTE[k % len(PALETTE)] for k, s in enumerate(spec.series)]
    one = panel.sim_chart.export(tmp_path / "one.svg")
    panel.sim_chart.export(tmp_path / "one.csv")
    rows = list(csv.reader((tmp_path / "one.csv").open()))
    baseline = [float(r[2]) for r in rows[1:] if "baseline" in r[0]]
    assert baseline == pytest.approx(spec.series[-1].y, abs=1e-5) and len(baseline) == 7
    _assert_on_axes(one, spec, colors)
    written = panel.export_all(tmp_path / "all")
    svg_all = next(p for p in written if p.name == slug(spec.title) + ".svg")
    _assert_on_axes(svg_all, spec, colors)


def test_cli_export_svg_sits_on_its_axes(minilm, monkeypatch, tmp_path, capsys):
    """``similarity --preset … --view raw --export bank.svg``: the baseline's layer 0 (0.068 in --json) and
    layer 5 are drawn where the axis says, as in the window."""
    from explorer.cli import main

    monkeypatch.setattr("explorer.commands.attention.load", lambda name, trust_remote_code=False: minilm)
    args = ["similarity", "--preset", "bank: river twice vs money twice", "--model", "minilm", "--view", "raw"]
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    baseline = out["baseline"]
    svg = tmp_path / "bank.svg"
    assert main(args + ["--export", str(svg)]) == 0
    chart = read_svg_chart(svg)
    dashed = [pts for _s, d, pts in chart.paths if d]
    assert dashed, "no dashed baseline drawn"
    tol = 1.0 / chart.y_pixels_per_unit()
    (ax, bx), (ay, by) = chart.x_axis(), chart.y_axis()
    drawn = [((x - bx) / ax, (y - by) / ay) for x, y in max(dashed, key=len)]
    assert [round(x) for x, _y in drawn] == list(range(len(baseline)))
    assert [y for _x, y in drawn] == pytest.approx(baseline, abs=tol)


def test_a_cli_export_prints_no_qt_platform_noise(tmp_path):
    """The CLI's --export renders in an offscreen application of its own: Qt's "This plugin does not support
    propagateSizeHints()" is not printed at the user, other Qt messages still are."""
    import os
    import subprocess
    import sys

    out = tmp_path / "chart.png"
    code = ("import sys; from tests.gui.test_chart_export import _lines; "
            "from explorer.gui.render import render_chart_file; render_chart_file(_lines(), sys.argv[1])")
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    done = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=120,
                          env=env, cwd=str(Path(__file__).resolve().parents[2]))
    assert done.returncode == 0, done.stderr
    assert QImage(str(out)).width() > 0
    assert "propagateSizeHints" not in done.stderr, done.stderr


@pytest.mark.parametrize("log_x", [False, True])
def test_error_bar_caps_are_a_few_pixels_wide(qtbot, log_x):
    """The sweep's and the size chart's confidence intervals: caps about 3% of the x extent, not a fifth of the
    plot (two points on a log axis had caps 160 px wide)."""
    import pyqtgraph as pg

    x = [135e6, 268e6] if log_x else [0, 1, 4]
    y = [1.0, 0.58] if log_x else [1.0, 0.75, 1.0]
    spec = ChartSpec("sweep", x_label="x", y_label="accuracy", log_x=log_x,
                     series=[Series("a", x, y, err_low=[v - 0.2 for v in y], err_high=[min(1, v + 0.1) for v in y])])
    chart = ChartWidget()
    qtbot.addWidget(chart)
    chart.resize(900, 500)
    chart.show()
    chart.set_spec(spec)
    bars = [i for i in chart.plot_item.items if isinstance(i, pg.ErrorBarItem)]
    assert len(bars) == 1
    right = __import__("math").log10(x[-1]) if log_x else x[-1]
    qtbot.waitUntil(lambda: chart.plot_item.vb.viewRange()[0][1] >= right, timeout=5000)  # the view has auto-ranged
    lo, hi = chart.plot_item.vb.viewRange()[0]
    assert 0 < bars[0].opts["beam"] / (hi - lo) < 0.05
