"""Render a chart spec to a PNG/SVG file without a window (the CLI's ``--export``), via the same ChartWidget."""

from __future__ import annotations

import os

from explorer.core.io.charts import ChartSpec


def render_chart_file(spec: ChartSpec, path: str, size: tuple[int, int] = (900, 600)) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from explorer.gui.widgets.chart import ChartWidget

    app = QApplication.instance() or QApplication([])
    chart = ChartWidget()
    try:
        chart.resize(*size)
        chart.show()
        app.processEvents()
        chart.set_spec(spec)
        app.processEvents()
        chart.export(path)
    finally:
        # Also on a failed write: a widget left alive at interpreter exit crashed the process (segfault).
        chart.close()
        chart.deleteLater()
        app.processEvents()
