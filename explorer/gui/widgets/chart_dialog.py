"""A chart opened full-size: a window with the same plot, drawn from the same spec by its own ChartWidget (so
it has the title, the Export button and the hover readout), redrawn whenever the chart in the panel is."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QVBoxLayout

from explorer.gui.widgets.chart import ChartWidget


class ChartDialog(QDialog):
    """``source``'s chart at most of the window's size; closes with Escape or Close."""

    def __init__(self, source: ChartWidget) -> None:
        super().__init__(source.window())
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle(source.spec.title if source.spec else "Chart")
        self.source = source
        self.chart = ChartWidget(self, title=source.title_label.text())
        self.chart.graphics.wheel_zooms = True  # nothing to scroll here: the wheel zooms
        self.chart.setObjectName("full-size chart")
        self.chart.full_size_action.setVisible(False)  # it is the full-size one
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Close), self, self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.chart, 1)
        layout.addWidget(buttons)
        source.drawn.connect(self._follow)
        self._follow()
        host = source.window().geometry()
        screen = (source.screen() or QApplication.primaryScreen()).availableGeometry()
        width = min(max(int(host.width() * 0.9), 640), screen.width())
        height = min(max(int(host.height() * 0.9), 480), screen.height())
        self.resize(width, height)
        self.move(host.center().x() - width // 2, max(screen.top(), host.center().y() - height // 2))

    def _follow(self) -> None:
        """Draw the source's current spec (a live chart keeps growing here too)."""
        spec = self.source.spec
        if spec is None:
            self.chart.clear()
            return
        self.setWindowTitle(spec.title or "Chart")
        self.chart.set_spec(spec)

    def done(self, result: int) -> None:
        try:
            self.source.drawn.disconnect(self._follow)
        except (RuntimeError, TypeError):  # the panel's chart is gone already
            pass
        super().done(result)
