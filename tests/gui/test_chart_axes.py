"""Chart axes: an x axis that counts (epochs, L-BFGS rounds, span lengths) is ticked at whole numbers only."""

from __future__ import annotations

import dataclasses

from explorer.core.tuning.finetune import history_chart
from explorer.core.tuning.finetune_results import EpochReport
from explorer.gui.widgets.chart import ChartWidget


def _bottom_ticks(chart: ChartWidget) -> list[float]:
    axis = chart.plot_item.getAxis("bottom")
    lo, hi = chart.plot_item.vb.viewRange()[0]
    return [v for _spacing, values in axis.tickValues(lo, hi, axis.width() or 600) for v in values]


def test_a_short_run_is_ticked_at_whole_rounds(qtbot):
    """Two L-BFGS rounds: pyqtgraph's own ticks are 0.2 apart; the counted axis shows 0, 1, 2 (and the spec's
    JSON says so)."""
    spec = history_chart([EpochReport(1, 0.6, 0.8, 0.1), EpochReport(2, 0.4, 0.9, 0.1)], 0.5,
                         x_label="L-BFGS round")
    chart = ChartWidget()
    qtbot.addWidget(chart)
    chart.resize(600, 400)
    chart.show()
    chart.set_spec(dataclasses.replace(spec, whole_x=False))
    qtbot.wait(10)
    assert any(not float(v).is_integer() for v in _bottom_ticks(chart))  # what pyqtgraph does by itself
    chart.set_spec(spec)
    qtbot.wait(10)
    ticks = _bottom_ticks(chart)
    assert {0.0, 1.0, 2.0} <= set(ticks) and all(float(v).is_integer() for v in ticks)
    assert spec.to_dict()["whole_x"] is True
