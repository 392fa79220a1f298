"""Render a chart spec to a PNG/SVG file without a window (the CLI's ``--export``): the window's own renderer,
:func:`explorer.gui.widgets.chart.render_spec`, at the same export size."""

from __future__ import annotations

import os
import sys

from explorer.core.io.charts import ChartSpec

# Qt's offscreen platform says this on every top-level widget; it means nothing to a user exporting a chart.
_NOISE = ("does not support propagateSizeHints",)


def _qt_message(_mode, _context, message: str) -> None:
    if not any(n in message for n in _NOISE):
        sys.stderr.write(message + "\n")


def render_chart_file(spec: ChartSpec, path: str) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from explorer.gui.widgets.chart import render_spec

    app = QApplication.instance()
    if app is None:  # the CLI: its own application, its own messages
        qInstallMessageHandler(_qt_message)
        app = QApplication([])
    try:
        render_spec(spec, path)
    finally:
        # The twin is deleted later: let that happen now (a widget left alive at interpreter exit crashed the
        # process with a segfault).
        app.processEvents()
