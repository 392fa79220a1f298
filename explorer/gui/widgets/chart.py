"""The one chart widget every panel uses: draws a :class:`~explorer.core.io.charts.ChartSpec` and exports
itself to PNG (2x), SVG, and its data to CSV/JSON, from a toolbar button and the right-click menu.

Every image export (one chart, Export all, the CLI's ``--export``) goes through :func:`render_spec`: a hidden
twin of the chart is laid out at a fixed export size (not the squeezed on-screen one) and its scene is painted
once, by Qt's painter, into a PNG (at 2x device pixels, so fonts, legend and lines all scale together) or an SVG
(QSvgGenerator). PNG and SVG are the same drawing; pyqtgraph's SVGExporter walked the items itself with a view
transform that was stale after the title row was added, and drew the data on another scale than the axes.
"""

from __future__ import annotations

import html
import math
import os
import re
import textwrap
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QCoreApplication,
    QEvent,
    QIODevice,
    QPointF,
    QRect,
    QRectF,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QFont, QFontMetrics, QImage, QPainter, QPicture
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from explorer.core.io.charts import ChartSpec, write_chart_data
from explorer.core.io.fileio import atomic_path

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="w", foreground="#222")

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
EXPORT_FILTER = "PNG image (*.png);;SVG vector image (*.svg);;CSV data (*.csv);;JSON data (*.json)"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower()[:60] or "chart"


MIN_VIEW_HEIGHT = 160  # px of data area: below this ticks collide and a heatmap is a strip; the panel scrolls
EXPORT_SIZE = (960, 600)  # px: every exported image is laid out at this size, whatever the window's
EXPORT_SCALE = 2  # a PNG has this many device pixels per layout pixel


class _BottomAxis(pg.AxisItem):
    """The x axis; with ``whole`` set it ticks only whole numbers (pyqtgraph's own choice, 0.2 apart, put
    fractions of an epoch under three epochs)."""

    whole = False

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:  # noqa: N802, N803 - pyqtgraph names
        levels = super().tickValues(minVal, maxVal, size)
        if not self.whole or self.logMode:
            return levels
        kept = [(spacing, values) for spacing, values in levels if spacing >= 1 and float(spacing).is_integer()]
        if not kept:
            lo, hi = math.ceil(minVal), math.floor(maxVal)
            kept = [(1.0, [float(v) for v in range(lo, hi + 1)])] if hi >= lo else []
        return kept


class _Graphics(pg.GraphicsLayoutWidget):
    """The plot's view: the mouse wheel scrolls the page the chart sits in; Ctrl + wheel zooms the chart (a plain
    wheel zoomed it, so scrolling down a panel shrank every chart the pointer crossed)."""

    wheel_zooms = False  # a chart alone in its own window zooms with the plain wheel

    def wheelEvent(self, ev) -> None:  # noqa: N802 (Qt's name)
        if self.wheel_zooms or ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev)
        else:
            ev.ignore()


class ChartWidget(QWidget):
    """A titled pyqtgraph plot that knows its data; ``set_spec`` draws, ``export(path)`` writes."""

    cellClicked = Signal(int, int)
    cellHovered = Signal(int, int)
    pointClicked = Signal(str, int)
    exported = Signal(str)
    drawn = Signal()  # a new spec (or new values of the same layout) is on screen

    def __init__(self, parent: QWidget | None = None, title: str = "", export_size: tuple[int, int] | None = None) -> None:
        super().__init__(parent)
        # A twin made by render_spec: never on screen, its title and axis names drawn in the scene.
        self.export_size = export_size
        self.spec: ChartSpec | None = None
        self._image: pg.ImageItem | None = None
        self._overlay: pg.ImageItem | None = None  # the spec's greyed cells over the heatmap
        self._cell_items: list = []  # the values printed in a small heatmap's cells
        self._colorbar: pg.ColorBarItem | None = None
        self._matrix: np.ndarray | None = None
        self._note_item: pg.LabelItem | None = None  # the spec's note, in the scene so that exports carry it
        # The drawn x/y spec's layout (see _xy_layout) and its line items, for redrawing new values in place.
        self._xy_layout: tuple | None = None
        self._xy_items: list = []
        self._legend_entries: list[tuple] = []  # (plot item, series name) of the legend, in order
        self._legend_fit: tuple | None = None  # (columns, label texts) the legend was last made with
        self._last_dir = str(Path.home())

        self.title_label = QLabel(title)
        self.title_label.setStyleSheet("font-weight: 600;")
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setToolTip("Export this chart as PNG, SVG, CSV or JSON")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.export_button.setMenu(self._export_menu(self))
        self.title_label.setWordWrap(True)
        # What is under the pointer, in words: for a heatmap "<row axis> <row> → <column axis> <column>: value".
        self.readout = QLabel()
        self.readout.setStyleSheet("color: #333;")
        self.readout.setWordWrap(True)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout.setVisible(False)
        # The vertical axis's name, when the plot is too short to print it along the axis (never cut off).
        self.axis_note = QLabel()
        self.axis_note.setStyleSheet("color: #333;")
        self.axis_note.setWordWrap(True)
        self.axis_note.setVisible(False)
        header = QHBoxLayout()
        header.setContentsMargins(4, 0, 4, 0)
        header.addWidget(self.title_label, 1)
        header.addWidget(self.export_button)

        self.graphics = _Graphics()
        # Below MIN_VIEW_HEIGHT of data area a plot is unreadable (ticks collide, a heatmap is a strip): the
        # graphics asks for that much plus its axis, legend and note (_keep_view_height), and the panel scrolls.
        self.graphics.setMinimumHeight(MIN_VIEW_HEIGHT + 40)
        self.plot_item: pg.PlotItem = self.graphics.addPlot(row=0, col=0, axisItems={"bottom": _BottomAxis("bottom")})
        # The legend lives under the plot, never on the data (pyqtgraph's own legend floats over it); its text is
        # the axes' size, so it scales with them.
        self.legend = pg.LegendItem(colCount=4, verSpacing=-4, horSpacing=14, labelTextSize=f"{QFont().pointSizeF():g}pt")
        self.legend.setVisible(False)
        self.legend.layout.setContentsMargins(4, 0, 4, 0)
        self.graphics.ci.addItem(self.legend, row=1, col=0)
        self.graphics.ci.layout.setRowStretchFactor(0, 100)
        self.graphics.ci.layout.setRowStretchFactor(1, 0)
        self.legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.plot_item.showGrid(x=False, y=False)
        for axis in ("left", "bottom"):
            # SI-prefix scaling turns shares into "(x0.001)" units that readers misread.
            self.plot_item.getAxis(axis).enableAutoSIPrefix(False)
        self.plot_item.vb.menu.addSeparator()
        for action in self._export_actions(self.plot_item.vb.menu):
            self.plot_item.vb.menu.addAction(action)
        # Tick labels are thinned for the room the plot has; recompute whenever the plot area changes size.
        self.plot_item.vb.sigResized.connect(lambda *_: self._apply_ticks())
        self.plot_item.vb.sigXRangeChanged.connect(lambda *_: self._apply_ticks())
        scene = self.graphics.scene()
        scene.sigMouseMoved.connect(self._on_mouse_moved)
        scene.sigMouseClicked.connect(self._on_mouse_clicked)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self.axis_note)
        layout.addWidget(self.readout)
        layout.addWidget(self.graphics, 1)
        self.setMinimumWidth(220)  # the height follows the plot's minimum and the header
        if export_size is not None:
            self.title_label.hide()
            self.export_button.hide()
            self.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
            self.resize(*export_size)

    # ------------------------------------------------------------ menus

    def _export_actions(self, parent: QWidget) -> list[QAction]:
        actions = []
        for label, suffix in (("PNG image (2x)…", "png"), ("SVG image…", "svg"), ("Data as CSV…", "csv"), ("Data as JSON…", "json")):
            action = QAction(f"Export {label}", parent)
            action.triggered.connect(lambda _=False, s=suffix: self.export_dialog(s))
            actions.append(action)
        return actions

    def _export_menu(self, parent: QWidget) -> QMenu:
        menu = QMenu(parent)
        full = QAction("Open full size…", menu)
        full.setToolTip("The same chart in a larger window, with its export buttons (or double-click the plot)")
        full.triggered.connect(self.open_full_size)
        self.full_size_action = full
        menu.addAction(full)
        menu.addSeparator()
        for action in self._export_actions(menu):
            menu.addAction(action)
        return menu

    def open_full_size(self) -> QWidget | None:
        """Show this chart in a larger window (a dialog with the same plot and its export buttons), following
        the chart's redraws; None while the chart has no data."""
        if self.spec is None or self.export_size is not None or not self.full_size_action.isVisible():
            return None
        from explorer.gui.widgets.chart_dialog import ChartDialog

        dialog = ChartDialog(self)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def export_dialog(self, suffix: str = "png") -> str | None:
        name = slug(self.spec.title if self.spec else self.title_label.text()) + f".{suffix}"
        path, _ = QFileDialog.getSaveFileName(self, "Export chart", os.path.join(self._last_dir, name), EXPORT_FILTER)
        if not path:
            return None
        if not Path(path).suffix:
            path += f".{suffix}"
        self._last_dir = str(Path(path).parent)
        try:
            self.export(path)
        except (OSError, ValueError, RuntimeError) as err:
            QMessageBox.warning(self, "Export failed", f"Could not write {path}:\n{err}\n\nNothing was overwritten.")
            return None
        return path

    # ------------------------------------------------------------ drawing

    def set_title(self, title: str) -> None:
        self.title_label.setText(title)

    def set_export_spec(self, spec: ChartSpec) -> None:
        """Keep ``spec`` as the data behind a custom drawing (for CSV/JSON export) without redrawing."""
        self.spec = spec
        self._xy_layout = None  # what is drawn is no longer the drawing of a spec
        self.title_label.setText(spec.title)

    def clear(self) -> None:
        self.spec = None
        self._reset()
        self._keep_view_height()
        self.drawn.emit()

    def _reset(self, keep_image: bool = False) -> None:
        pi = self.plot_item
        self._xy_layout, self._xy_items = None, []
        if self._overlay is not None:
            self.plot_item.removeItem(self._overlay)
            self._overlay = None
        for item in self._cell_items:
            self.plot_item.removeItem(item)
        self._cell_items = []
        if not keep_image:
            if self._colorbar is not None:
                self.graphics.ci.removeItem(self._colorbar)
                self._colorbar = None
            self._image = None
            pi.clear()
        self.legend.clear()
        self.legend.setVisible(False)
        self._legend_entries, self._legend_fit = [], None
        if self._note_item is not None:
            self.graphics.ci.removeItem(self._note_item)
            self._note_item = None
        self.readout.clear()
        self.readout.setVisible(False)
        for name in ("bottom", "left"):
            pi.getAxis(name).setTicks(None)
        pi.getAxis("bottom").whole = False
        pi.invertY(False)
        pi.setAspectLocked(False)
        pi.enableAutoRange()

    def set_spec(self, spec: ChartSpec) -> None:
        """Draw ``spec``; redrawing a heatmap of the same shape reuses its image (fast at 512x512)."""
        same_heatmap = (
            spec.kind == "heatmap"
            and self._image is not None
            and self._matrix is not None
            and spec.matrix is not None
            and np.shape(spec.matrix) == self._matrix.shape
        )
        layout = self._xy_layout_of(spec)
        if layout is not None and layout == self._xy_layout:
            self._update_xy(spec)
            return
        self.spec = spec
        self.title_label.setText(spec.title)
        self._reset(keep_image=same_heatmap)
        pi = self.plot_item
        if self.export_size is not None:  # an exported image carries its title in the picture
            pi.setTitle(spec.title or None, size="11pt", color="#222")
        pi.setLabel("bottom", spec.x_label)
        self._fit_axis_label()
        if spec.kind == "heatmap":
            self._draw_heatmap(spec, reuse=same_heatmap)
        else:
            self._matrix = None
            self._draw_xy(spec)
        self._keep_view_height()
        self.drawn.emit()

    @staticmethod
    def _xy_layout_of(spec: ChartSpec) -> tuple | None:
        """Everything of an x/y spec of plain lines but their values (None for other charts): two specs with the
        same layout differ only in the lines' points, so a live chart redraws them in place (a full redraw
        rebuilds every item, the legend and the axes: ~10x the work)."""
        if spec.kind != "xy" or spec.x_ticks or spec.log_x or not spec.series:
            return None
        lines = []
        for s in spec.series:
            if s.style != "line" or s.hover or s.err_low is not None or s.err_high is not None or len(s.x) != len(s.y):
                return None
            lines.append((s.name, s.color, s.dashed, s.width, s.in_legend, len(s.x) <= 60))  # <= 60: with symbols
        return (spec.title, spec.x_label, spec.y_label, spec.y_range, spec.legend, spec.note, spec.whole_x,
                tuple(lines))

    def _update_xy(self, spec: ChartSpec) -> None:
        """Give the drawn lines ``spec``'s points (same layout, see _xy_layout_of); the view refits as a full
        redraw would."""
        self.spec = spec
        self.title_label.setText(spec.title)
        for s, item in zip(spec.series, self._xy_items, strict=True):
            item.setData(np.asarray(s.x, dtype=float), np.asarray(s.y, dtype=float))
        self.readout.clear()
        self.readout.setVisible(False)
        self.plot_item.enableAutoRange()
        if spec.y_range:
            self.plot_item.setYRange(*spec.y_range, padding=0.02)
        self.drawn.emit()

    def _draw_heatmap(self, spec: ChartSpec, reuse: bool) -> None:
        pi = self.plot_item
        m = np.asarray(spec.matrix, dtype=np.float32)
        self._matrix = m
        finite = m[np.isfinite(m)]
        lo, hi = spec.value_range or ((float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0))
        if hi <= lo:
            hi = lo + 1e-6
        cmap = pg.colormap.get(spec.colormap) if spec.colormap in pg.colormap.listMaps() else pg.colormap.get("viridis")
        if reuse and self._image is not None:
            self._image.setImage(m, levels=(lo, hi), autoLevels=False)
            if self._colorbar is not None:
                self._colorbar.setLevels((lo, hi))
        else:
            self._image = pg.ImageItem(m, levels=(lo, hi), autoLevels=False)
            self._image.setColorMap(cmap)
            pi.addItem(self._image)
            self._colorbar = pg.ColorBarItem(values=(lo, hi), colorMap=cmap, interactive=False, width=12)
            self._colorbar.setImageItem(self._image)
            self.graphics.ci.addItem(self._colorbar, row=0, col=1)
        pi.invertY(True)
        pi.setAspectLocked(False)
        if spec.greyed is not None and np.shape(spec.greyed) == m.shape:
            rgba = np.zeros(m.shape + (4,), dtype=np.ubyte)
            rgba[np.asarray(spec.greyed, dtype=bool)] = (215, 215, 215, 255)
            overlay = pg.ImageItem(rgba)
            overlay.setZValue(5)
            pi.addItem(overlay)
            self._overlay = overlay
        if spec.cell_values and m.size <= 400:
            self._cell_values(m, lo, hi)
        self._heatmap_ticks()
        pi.setRange(xRange=(0, m.shape[1]), yRange=(0, m.shape[0]), padding=0)

    def _cell_values(self, m: np.ndarray, lo: float, hi: float) -> None:
        """Each cell's value printed at its centre (whole numbers as counts), light on dark cells."""
        for (r, c), v in np.ndenumerate(m):
            if not np.isfinite(v):
                continue
            text = f"{int(v)}" if float(v).is_integer() else f"{v:.2f}"
            dark = (v - lo) / (hi - lo) < 0.6  # viridis is dark below ~60%
            item = pg.TextItem(text, color="#ffffff" if dark else "#111111", anchor=(0.5, 0.5))
            item.setPos(c + 0.5, r + 0.5)
            item.setZValue(10)
            self.plot_item.addItem(item)
            self._cell_items.append(item)

    def _heatmap_ticks(self) -> None:
        spec, m = self.spec, self._matrix
        if spec is None or m is None:
            return
        for axis, ticks, labels, n in (("bottom", spec.x_ticks, spec.col_labels, m.shape[1]),
                                       ("left", spec.y_ticks, spec.row_labels, m.shape[0])):
            if ticks is None and labels:
                ticks = [(i + 0.5, labels[i]) for i in range(n)]
            if ticks:
                self._set_label_ticks(axis, [(float(p), str(t)) for p, t in ticks], n)

    def _set_label_ticks(self, axis: str, ticks: list[tuple[float, str]], n: int) -> None:
        """Label every tick whose label does not run into the last one kept (all of them when they fit): the
        room is the data area's (the view box), so a short chart thins its labels and a wide one shows all."""
        vb = self.plot_item.vb
        room = (vb.width() if axis == "bottom" else vb.height()) if vb.width() > 0 else 0
        available = max(room or (self.graphics.width() if axis == "bottom" else self.graphics.height()), 40)
        metrics = QFontMetrics(self.plot_item.getAxis(axis).style.get("tickFont") or QFont())
        self.plot_item.getAxis(axis).setTicks([self._fit_ticks(ticks, available / max(n, 1), metrics, axis), []])

    @staticmethod
    def _fit_ticks(ticks: list[tuple[float, str]], px_per_unit: float, metrics: QFontMetrics,
                   axis: str = "bottom") -> list[tuple[float, str]]:
        """The ticks whose labels never overlap at ``px_per_unit``, left to right (top to bottom), first kept."""
        kept: list[tuple[float, str]] = []
        end = -math.inf
        for pos, text in sorted(ticks):
            half = (metrics.horizontalAdvance(text) + 8 if axis == "bottom" else metrics.height() + 2) / 2
            centre = pos * px_per_unit
            if centre - half >= end:
                kept.append((pos, text))
                end = centre + half
        return kept

    def _xy_ticks(self, spec: ChartSpec) -> None:
        """The spec's own x ticks (log10 of the position on a log axis), thinned so labels never overlap at the
        view's scale (the view's range, or the ticks' span before the first layout)."""
        ticks = [(float(np.log10(p)) if spec.log_x and p > 0 else float(p), str(t)) for p, t in spec.x_ticks]
        lo, hi = self.plot_item.vb.viewRange()[0]
        span = hi - lo
        if not (span > 0) or self.plot_item.vb.width() <= 0:
            positions = [p for p, _t in ticks]
            span = max(max(positions) - min(positions), 1.0) * 1.1
        room = self.plot_item.vb.width() if self.plot_item.vb.width() > 0 else max(self.graphics.width() - 60, 240)
        kept = self._fit_ticks(ticks, room / span, QFontMetrics(QFont()))
        self.plot_item.getAxis("bottom").setTicks([kept, []])

    def _note_html(self) -> str:
        """The spec's note wrapped to the plot's width (a LabelItem does not wrap by itself)."""
        note = self.spec.note if self.spec is not None else ""
        font = QFont()
        font.setPointSizeF(8)
        room = 0.85 * max(self.graphics.width() - 20, 150)  # a margin: words differ from the average character width
        per_line = max(20, int(room / max(QFontMetrics(font).averageCharWidth(), 4)))
        lines = [w for para in note.split("\n") for w in textwrap.wrap(para, per_line) or [""]]
        return "<br>".join(html.escape(line) for line in lines)

    def _draw_note(self) -> None:
        """The spec's note under the plot and its legend (row 2 of the scene, so PNG/SVG exports carry it)."""
        if self.spec is None or not self.spec.note:
            return
        text = self._note_html()
        if self._note_item is None:
            self._note_item = pg.LabelItem(text, size="8pt", color="#444", justify="left")
            self._note_item.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            self.graphics.ci.addItem(self._note_item, row=2, col=0)
            self.graphics.ci.layout.setRowStretchFactor(2, 0)
        else:
            self._note_item.setText(text, size="8pt", color="#444")


    def _legend_room(self) -> int:
        return max(160, self.graphics.width() - 20)

    def _legend_columns(self, names: list[str]) -> int:
        """As many legend columns (at most 3) as fit the chart's width, so the legend never widens the plot."""
        fm = self.fontMetrics()
        width = self._legend_room()
        cols = min(3, len(names))
        while cols > 1:
            widest = 1.1 * max(fm.horizontalAdvance(n) for n in names) + 72  # sample line, spacing, margins
            if cols * widest <= width:
                break
            cols -= 1
        return max(1, cols)

    def _fit_legend(self) -> None:
        """Columns for the chart's width, and a name too wide for one column wrapped onto lines (never cut).
        The entries are made again when the fit changes: a legend label never shrinks once laid out."""
        if not self._legend_entries:
            return
        names = [name for _item, name in self._legend_entries]
        cols = self._legend_columns(names)
        fm = self.fontMetrics()
        # per column: the sample line (20), spacing (14), the label's own margins (~22) and the legend's (~16);
        # rich text sets a little wider than the widget's metrics say (x1.1)
        room = max(80, self._legend_room() // cols - 72)
        texts = []
        for name in names:
            lines: list[str] = []
            for word in name.split(" "):
                if lines and 1.1 * fm.horizontalAdvance(lines[-1] + " " + word) <= room:
                    lines[-1] += " " + word
                else:
                    lines.append(word)
            texts.append("<br>".join(html.escape(line) for line in lines))
        if (cols, texts) == self._legend_fit:
            return
        self._legend_fit = (cols, texts)
        self.legend.clear()
        self.legend.setColumnCount(cols)
        for (item, _name), text in zip(self._legend_entries, texts, strict=True):
            self.legend.addItem(item, text)

    def _draw_xy(self, spec: ChartSpec) -> None:
        pi = self.plot_item
        self._draw_note()
        # Log x: the widget draws log10(x) and labels the ticks with the data's own values.
        tx = (lambda v: np.log10(np.maximum(np.asarray(v, dtype=float), 1e-300))) if spec.log_x else (
            lambda v: np.asarray(v, dtype=float))
        shown = [tx(s.x) for s in spec.series if len(s.x)]
        all_x = np.concatenate(shown) if shown else np.zeros(1)  # every series' x as drawn
        named = [s for s in spec.series if s.in_legend]
        legend = self.legend if spec.legend and len(named) > 1 else None
        if legend is not None:
            legend.setVisible(True)
        bars = [s for s in spec.series if s.style == "bar"]
        # Bars of several series side by side only where they share an x; series over disjoint x (one per label,
        # as the NER chart draws) each sit on their own tick, full width.
        xs = [x for s in bars for x in s.x]
        grouped = len(xs) != len(set(xs))
        bar_width = 0.8 / max(1, len(bars)) if grouped else 0.8
        bar_index = 0
        for i, s in enumerate(spec.series):
            color = s.color or PALETTE[i % len(PALETTE)]
            x = tx(s.x)
            y = np.asarray(s.y, dtype=float)
            if s.style == "bar":
                offset = (bar_index - (len(bars) - 1) / 2) * bar_width if grouped else 0.0
                bar_index += 1
                item = pg.BarGraphItem(x=x + offset, height=y, width=bar_width, brush=pg.mkBrush(color), pen=pg.mkPen(color))
                pi.addItem(item)
                if legend is not None and s.in_legend:
                    self._legend_entries.append((item, s.name))
            elif s.style == "scatter":
                item = pg.ScatterPlotItem(
                    x=x, y=y, size=8, brush=pg.mkBrush(color), pen=pg.mkPen("w", width=0.5), name=s.name,
                    data=list(range(len(x))), hoverable=True, hoverSize=11,
                    tip=(lambda x, y, data, s=s: s.hover[data] if s.hover else f"{x:.3g}, {y:.3g}"),
                )
                item.sigClicked.connect(lambda _item, points, _ev, name=s.name: self.pointClicked.emit(name, int(points[0].data())))
                pi.addItem(item)
                if legend is not None and s.in_legend:
                    self._legend_entries.append((item, s.name))
            else:
                pen = pg.mkPen(color, width=s.width, style=Qt.PenStyle.DashLine if s.dashed else Qt.PenStyle.SolidLine)
                symbol = "o" if len(x) <= 60 and s.style != "step" else None
                stepped = "center" if s.style == "step" and len(x) == len(y) + 1 else None
                item = pi.plot(x, y, pen=pen, name=s.name, symbol=symbol, symbolSize=6, symbolBrush=color,
                               symbolPen=color, stepMode=stepped)
                self._xy_items.append(item)
                if s.hover:
                    item.scatter.opts["hoverable"] = True
                    item.scatter.setData(x=x, y=y, data=list(range(len(x))), hoverable=True,
                                         tip=(lambda x, y, data, s=s: s.hover[data]), symbol=symbol or "o",
                                         size=6, brush=pg.mkBrush(color), pen=pg.mkPen(color))
                if legend is not None and s.in_legend:
                    self._legend_entries.append((item, s.name))
            if s.err_low is not None and s.err_high is not None:
                lo = np.asarray(s.err_low, dtype=float)
                hi = np.asarray(s.err_high, dtype=float)
                # caps a few pixels wide: 3% of the data's x extent, never wider than a quarter of the closest gap
                gaps = np.diff(np.unique(x))
                extent = float(np.ptp(all_x)) or 1.0
                beam = min(0.03 * extent, 0.25 * float(gaps.min())) if gaps.size else 0.03 * extent
                pi.addItem(pg.ErrorBarItem(x=x, y=y, top=hi - y, bottom=y - lo, beam=beam, pen=pg.mkPen(color)))
        if spec.x_ticks:
            self._xy_ticks(spec)
        pi.getAxis("bottom").whole = spec.whole_x
        if spec.log_x and shown:
            pad = max(0.15, 0.15 * float(all_x.max() - all_x.min()))  # room for the end points and their labels
            pi.setXRange(float(all_x.min()) - pad, float(all_x.max()) + pad, padding=0)
        if spec.y_range:
            pi.setYRange(*spec.y_range, padding=0.02)
        self._fit_legend()
        self._xy_layout = self._xy_layout_of(spec)

    def _apply_ticks(self) -> None:
        spec = self.spec
        if spec is None:
            return
        if spec.kind == "heatmap" and self._matrix is not None:
            self._heatmap_ticks()
        elif spec.x_ticks:
            self._xy_ticks(spec)
        if spec.kind != "heatmap" and spec.note and self._note_item is not None:
            self._note_item.setText(self._note_html(), size="8pt", color="#444")

    def _fit_axis_label(self) -> None:
        """Print the vertical axis's name along the axis when it fits the plot's height, else above the plot."""
        text = self.spec.y_label if self.spec is not None else ""
        axis = self.plot_item.getAxis("left")
        metrics = QFontMetrics(axis.label.font())
        room = self.plot_item.vb.height() if self.plot_item.vb.height() > 0 else self.graphics.height() * 0.7
        fits = not text or metrics.horizontalAdvance(text) + 8 <= room or self.export_size is not None
        self.plot_item.setLabel("left", text if fits else None)
        if not text or fits:
            self.plot_item.showLabel("left", bool(text))
        self.axis_note.setText("" if fits else f"↑ {text}")
        self.axis_note.setVisible(not fits)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        # Tick labels are thinned and the legend's columns fitted to the width they have; recompute when it changes.
        self._fit_legend()
        self._apply_ticks()
        self._fit_axis_label()
        self._keep_view_height()

    def _keep_view_height(self) -> None:
        """Ask for MIN_VIEW_HEIGHT px of data area plus what the axis, title, legend and note under it take, so the
        panel scrolls (it sits in a scroll area) rather than squeezing the plot to a strip or cutting the legend."""
        if self.export_size is not None:
            return
        hint = Qt.SizeHint.PreferredSize
        pi = self.plot_item
        extra = 0.0
        for item in (pi.getAxis("bottom"), pi.getAxis("top"), pi.titleLabel):
            if item.isVisible():
                extra += max(item.height(), item.effectiveSizeHint(hint).height())
        for item in (self.legend, self._note_item):
            if item is not None and item.isVisible():
                extra += item.effectiveSizeHint(hint).height()
        _l, top, _r, bottom = self.graphics.ci.layout.getContentsMargins()
        _l, ptop, _r, pbottom = pi.layout.getContentsMargins()
        extra += top + bottom + ptop + pbottom + 3 * max(self.graphics.ci.layout.verticalSpacing(), 0)
        want = int(math.ceil(MIN_VIEW_HEIGHT + extra)) + 4
        if abs(want - self.graphics.minimumHeight()) > 2:
            self.graphics.setMinimumHeight(want)

    # ------------------------------------------------------------ pointer

    def _cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        if self._image is None or self._matrix is None:
            return None
        if not self.plot_item.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.plot_item.vb.mapSceneToView(scene_pos)
        row, col = int(math.floor(p.y())), int(math.floor(p.x()))
        if 0 <= row < self._matrix.shape[0] and 0 <= col < self._matrix.shape[1]:
            return row, col
        return None

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        cell = self._cell_at(scene_pos)
        if cell is None or self.spec is None:
            return
        row, col = cell
        text = self.cell_text(row, col)
        self.readout.setText(text)
        self.readout.setVisible(True)
        QToolTip.showText(self.graphics.mapToGlobal(self.graphics.mapFromScene(scene_pos)), text, self.graphics)
        self.cellHovered.emit(row, col)

    def cell_text(self, row: int, col: int) -> str:
        """A heatmap cell in words, naming both axes: "query (attending) 3:bank → key (attended to) 1:the: 0.41"."""
        spec = self.spec
        rl = spec.row_labels[row] if spec.row_labels else str(row)
        cl = spec.col_labels[col] if spec.col_labels else str(col)
        y_name = (spec.y_label or "row").split(" (")[0]
        x_name = (spec.x_label or "column").split(" (")[0]
        return f"{y_name} {rl} → {x_name} {cl}: {self._matrix[row, col]:.4f}"

    def cell_scene_pos(self, row: int, col: int) -> QPointF:
        """The scene position of a heatmap cell's centre (what the pointer is over)."""
        return self.plot_item.vb.mapViewToScene(QPointF(col + 0.5, row + 0.5))

    def _on_mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if event.double():  # a double-click opens the chart full-size (its single click has been handled)
            self.open_full_size()
            return
        cell = self._cell_at(event.scenePos())
        if cell is not None:
            self.cellClicked.emit(*cell)

    # ------------------------------------------------------------ export

    def _relayout(self) -> None:
        """Apply layout changes now (a title, a legend, wider tick labels), not at the next event loop turn."""
        QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        self.plot_item.layout.activate()
        self.graphics.ci.layout.activate()

    def export(self, path: str | os.PathLike) -> Path:
        """Write the chart to ``path``: .png (2x scale), .svg, .csv or .json; atomically (temp file + rename).
        Images are drawn by :func:`render_spec` at the export size, the data written from the same spec."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".png", ".svg", ".csv", ".json"):
            raise ValueError(f"Unknown export format '{suffix}': use .png, .svg, .csv or .json.")
        if self.spec is None:
            raise ValueError("This chart has no data yet.")
        if suffix in (".csv", ".json"):
            write_chart_data(self.spec, path)
        else:
            render_spec(self.spec, path)
        self.exported.emit(str(path))
        return path

    def _settle(self) -> None:
        """Lay the export twin out at its size until nothing moves: axis widths follow their tick labels, which
        follow the view's size, so a first paint can change the layout once more."""
        w, h = self.export_size or (self.graphics.width(), self.graphics.height())
        self.show()
        self.resize(w, h)
        self.graphics.resize(w, h)
        scratch = QImage(8, 8, QImage.Format.Format_ARGB32)
        for _ in range(3):
            self.graphics.ci.setGeometry(QRectF(0, 0, w, h))
            self._relayout()
            self._apply_ticks()
            painter = QPainter(scratch)
            self.graphics.scene().render(painter, QRectF(0, 0, 8, 8), QRectF(0, 0, w, h))
            painter.end()

    def paint_to(self, path: Path, fmt: str) -> None:
        """Paint the laid-out scene into ``path`` as "png" or "svg": one drawing, two devices."""
        w, h = self.export_size or (self.graphics.width(), self.graphics.height())
        source = QRectF(0, 0, w, h)
        if fmt == "png":
            device = QImage(w * EXPORT_SCALE, h * EXPORT_SCALE, QImage.Format.Format_ARGB32)
            device.setDevicePixelRatio(EXPORT_SCALE)
            device.fill(QColor("white"))
        else:
            device = QSvgGenerator()
            device.setFileName(str(path))
            device.setSize(QSize(w, h))
            device.setViewBox(QRect(0, 0, w, h))
            # pyqtgraph draws axes as QPictures, which replay scaled by their DPI over the device's: at the
            # generator's default 72 dpi the axes came out at 3/4 of the data's scale.
            device.setResolution(QPicture().logicalDpiX())
            device.setTitle(self.spec.title if self.spec else "chart")
            device.setDescription(self.spec.note if self.spec else "")
        painter = QPainter(device)
        if not painter.isActive():
            raise OSError(f"cannot write {path.name}")
        # A scatter stamps its symbols from one cached pixmap; the SVG engine writes the whole pixmap for each
        # stamp (a strip of every symbol, squeezed), so for SVG each symbol is drawn as a path.
        scatters = [i for i in self.graphics.scene().items() if isinstance(i, pg.ScatterPlotItem)] \
            if fmt == "svg" else []
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
            if fmt == "svg":
                painter.fillRect(source, QColor("white"))
            for item in scatters:
                item.setExportMode(True, {"antialias": True})
            self.graphics.scene().render(painter, source, source)
        finally:
            for item in scatters:
                item.setExportMode(False)
            painter.end()
        if fmt == "png":
            save_image(device, path)
        else:
            flatten_svg(path)


_SVG_NS = "http://www.w3.org/2000/svg"
_NUMBER_PAIR = re.compile(r"(-?[\d.]+(?:[eE][-+]?\d+)?),(-?[\d.]+(?:[eE][-+]?\d+)?)")
_FLATTENED = {f"{{{_SVG_NS}}}path": "d", f"{{{_SVG_NS}}}polyline": "points", f"{{{_SVG_NS}}}polygon": "points"}


def flatten_svg(path: Path) -> None:
    """Put every line of the SVG into page coordinates. QSvgGenerator writes a curve in data units under a
    scaling transform with ``vector-effect="non-scaling-stroke"``; librsvg and ImageMagick ignore that effect and
    drew each 2 px line 900 px thick. Groups of lines only (text and images keep their transforms)."""
    import xml.etree.ElementTree as ET

    ET.register_namespace("", _SVG_NS)
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    tree = ET.parse(path)
    for g in tree.getroot().iter(f"{{{_SVG_NS}}}g"):
        m = re.fullmatch(r"matrix\(([^)]*)\)", g.get("transform", ""))
        if not m or not len(g) or any(child.tag not in _FLATTENED for child in g):
            continue
        a, b, c, d, e, f = (float(v) for v in m.group(1).split(","))

        def mapped(pair: re.Match, a=a, b=b, c=c, d=d, e=e, f=f) -> str:
            x, y = float(pair.group(1)), float(pair.group(2))
            return f"{a * x + c * y + e:.6g},{b * x + d * y + f:.6g}"

        for child in g:
            attr = _FLATTENED[child.tag]
            child.set(attr, _NUMBER_PAIR.sub(mapped, child.get(attr, "")))
        del g.attrib["transform"]
    for g in tree.getroot().iter(f"{{{_SVG_NS}}}g"):
        m = re.fullmatch(r"matrix\(([^)]*)\)", g.get("transform", ""))
        if m:
            for image in g.findall(f"{{{_SVG_NS}}}image"):
                _sharpen(g, image, [float(v) for v in m.group(1).split(",")])
    tree.write(path, encoding="UTF-8", xml_declaration=True)


def _sharpen(group, image, matrix: list[float]) -> None:
    """A heatmap's image at its drawn size, cell by cell: an 8x8 image stretched by the SVG viewer was smoothed
    into a blur whose cells no longer sat on their ticks (librsvg, ImageMagick). Qt scales it without smoothing."""
    import base64

    a, b, c, d, e, f = matrix
    href_key = "{http://www.w3.org/1999/xlink}href"
    href = image.get(href_key, "")
    if b or c or not href.startswith("data:image/png;base64,"):
        return
    w, h = float(image.get("width", 0)), float(image.get("height", 0))
    out_w, out_h = round(abs(a) * w), round(abs(d) * h)
    if not (0 < out_w <= 4000 and 0 < out_h <= 4000) or (out_w, out_h) == (w, h):
        return
    src = QImage.fromData(base64.b64decode(href.split(",", 1)[1]), "PNG")
    if src.isNull():
        return
    big = src.scaled(out_w, out_h, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.FastTransformation)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    big.save(buffer, "PNG")
    image.set(href_key, "data:image/png;base64," + base64.b64encode(bytes(data)).decode("ascii"))
    x, y = float(image.get("x", 0)), float(image.get("y", 0))
    image.set("x", f"{x * abs(a):.6g}")
    image.set("y", f"{y * abs(d):.6g}")
    image.set("width", str(out_w))
    image.set("height", str(out_h))
    group.set("transform", f"matrix({1 if a > 0 else -1},0,0,{1 if d > 0 else -1},{e:.6g},{f:.6g})")


def save_image(image: QImage, path: Path) -> None:
    """Write ``image`` as a PNG to ``path``; a failed write (a full disk) raises OSError."""
    if not image.save(str(path), "PNG"):
        raise OSError(f"could not write the PNG image {path.name} (disk full or no permission?)")


def render_spec(spec: ChartSpec, path: str | os.PathLike, size: tuple[int, int] = EXPORT_SIZE) -> Path:
    """Draw ``spec`` into a PNG or SVG file at ``size`` (the window's exports, Export all and the CLI all come
    here), atomically: a failed write leaves no file and replaces none."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise ValueError(f"Unknown image format '.{fmt}': use .png or .svg.")
    twin = ChartWidget(export_size=size)
    try:
        twin.set_spec(spec)
        twin._settle()
        with atomic_path(path) as tmp:
            twin.paint_to(tmp, fmt)
    finally:
        twin.close()
        twin.deleteLater()
    return path
