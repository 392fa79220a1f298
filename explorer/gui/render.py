"""Render a chart spec to a PNG/SVG file without a window (the CLI's ``--export``): the window's own renderer,
:func:`explorer.gui.widgets.chart.render_spec`, at the same export size."""

from __future__ import annotations

import os

from explorer.core.io.charts import ChartSpec


def render_chart_file(spec: ChartSpec, path: str) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from explorer.gui.widgets.chart import render_spec

    app = QApplication.instance() or QApplication([])
    try:
        render_spec(spec, path)
    finally:
        # The twin is deleted later: let that happen now (a widget left alive at interpreter exit crashed the
        # process with a segfault).
        app.processEvents()
