"""Charts keep a readable plot area at 1024x700: every chart's data area is at least MIN_VIEW_HEIGHT high (the
panel scrolls instead), its legend entries lie inside the widget, and the GPT-3 figure (accuracy against model
size) is readable on screen and in its PNG."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QScrollArea, QStackedWidget, QTabWidget, QWidget

from explorer.core.io.charts import ChartSpec, Series
from explorer.core.prompting.sweep import SweepPoint, SweepResult
from explorer.gui.main_window import PANELS
from explorer.gui.widgets.chart import MIN_VIEW_HEIGHT, ChartWidget


def _reveal(widget: QWidget) -> None:
    """Make the tab / stacked page holding ``widget`` the current one, up to the window."""
    child, parent = widget, widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QStackedWidget) and parent.indexOf(child) >= 0:
            parent.setCurrentWidget(child)
            if isinstance(parent.parentWidget(), QTabWidget):
                parent.parentWidget().setCurrentWidget(child)
        child, parent = parent, parent.parentWidget()


def _settle(qtbot) -> None:
    for _ in range(3):
        QApplication.processEvents()
        qtbot.wait(20)


def _assert_readable(chart: ChartWidget, name: str) -> None:
    vb = chart.plot_item.vb
    assert vb.height() >= MIN_VIEW_HEIGHT - 1, f"{name}: data area {vb.height():.0f} px high"
    # the chart is given the height it asks for, and no parent cuts it off (a row of controls wrapped onto a
    # second line in a tab page took that line from the chart: its legend's last row was clipped by the tab)
    assert chart.graphics.height() >= chart.graphics.minimumHeight() - 1, f"{name}: squeezed below its minimum"
    child = chart
    while (parent := child.parentWidget()) is not None and not isinstance(parent.parentWidget(), QScrollArea):
        inside = parent.rect().adjusted(-1, -1, 1, 1).contains(child.geometry())
        assert inside, f"{name}: {type(child).__name__} {child.geometry()} cut by {type(parent).__name__} {parent.rect()}"
        child = parent
    view = QRectF(chart.graphics.rect()).adjusted(-1, -1, 1, 1)
    for sample, label in chart.legend.items:
        for item in (sample, label):
            rect = chart.graphics.mapFromScene(item.sceneBoundingRect()).boundingRect()
            assert view.contains(QRectF(rect)), f"{name}: legend entry {label.text} at {rect} outside {view}"
    # y tick labels never overlap: the drawn major ticks are at least a text line apart
    axis = chart.plot_item.getAxis("left")
    lo, hi = vb.viewRange()[1]
    levels = axis.tickValues(lo, hi, vb.height())
    if chart.spec.kind != "heatmap" and levels:
        values = sorted(levels[0][1])
        px = np.diff(values) * vb.height() / (hi - lo) if len(values) > 1 else [99]
        assert min(px) >= chart.fontMetrics().height(), f"{name}: y ticks {values} overlap"


def _legend_spec(title: str) -> ChartSpec:
    names = ["same sense: mean of 2 pairs", "different sense: mean of 4 pairs", "baseline (random pairs)",
             "river 1·2", "money 3·4"]
    return ChartSpec(title, x_label="layer", y_label="cosine similarity", note="A note a reader needs: " * 6,
                     series=[Series(n, list(range(7)), list(np.linspace(0.1, 0.9, 7) * (k + 1) / 5))
                             for k, n in enumerate(names)])


def test_every_chart_keeps_its_plot_and_legend_at_1024x700(window, qtbot):
    window.resize(1024, 700)
    window.move(0, 0)
    checked = []
    for key, _cls, _label in PANELS:
        panel = window.show_panel(key)
        for chart in panel.findChildren(ChartWidget):
            _reveal(chart)
            chart.set_spec(_legend_spec(f"{key}: {chart.title_label.text()}"))
            _settle(qtbot)
            _assert_readable(chart, f"{key} · {chart.title_label.text()}")
            checked.append(chart)
    assert len(checked) >= 15


def _sweep(model: str, params: int, non_emb: int, acc: list[float]) -> SweepResult:
    points = [SweepPoint(k, a, max(0.0, a - 0.2), min(1.0, a + 0.2), 20, round(20 * a), 20, 1, [a], 30.0)
              for k, a in zip((0, 1, 4), acc, strict=True)]
    return SweepResult(model, "qa", "generate", points, {}, chance=None, parameters=params,
                       parameters_non_embedding=non_emb)


def test_gpt3_figure_readable_at_1024x700_and_its_png_is_a_picture(window, qtbot, tmp_path):
    window.resize(1024, 700)
    panel = window.show_panel("prompting")
    view = panel.sweep  # the K-shot sweep view
    view.sweeps = {"smollm2": _sweep("smollm2", 134_515_008, 106_200_000, [0.15, 0.45, 0.8]),
                   "gemma3": _sweep("gemma3", 268_098_176, 100_000_000, [0.1, 0.3, 0.7])}
    view._redraw_sweep()
    _reveal(view.size_chart)
    view.sweep_charts.setCurrentWidget(view.size_chart)
    _settle(qtbot)
    chart = view.size_chart
    assert chart.spec.log_x and len(chart.legend.items) == 3
    _assert_readable(chart, "accuracy vs model size")
    assert chart.plot_item.getAxis("left").labelText == "accuracy"  # printed along the axis, whole
    png = QImage(str(chart.export(tmp_path / "size.png")))
    rows = [y for y in range(png.height()) if any(png.pixelColor(x, y).lightness() < 128
                                                   for x in range(0, png.width(), 7))]
    assert png.height() >= 1000 and rows and (rows[-1] - rows[0]) > 0.8 * png.height()  # not a strip


def test_heatmap_labels_nearly_every_token_and_none_overlap(qtbot):
    """21 tokens in a 900 px chart: labels are kept by their own widths (all short words; the thinning by the
    widest label kept every second one), and no two kept labels overlap."""
    n = 21
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "it", "was", "happy"] * 3
    spec = ChartSpec("t", kind="heatmap", matrix=np.eye(n), row_labels=words[:n], col_labels=words[:n])
    chart = ChartWidget()
    qtbot.addWidget(chart)
    chart.resize(900, 600)
    chart.show()
    chart.set_spec(spec)
    _settle(qtbot)
    bottom = chart.plot_item.getAxis("bottom")._tickLevels[0]
    assert len(bottom) >= 19
    fm = chart.fontMetrics()
    scale = chart.plot_item.vb.width() / n
    edges = [(p * scale - fm.horizontalAdvance(t) / 2, p * scale + fm.horizontalAdvance(t) / 2) for p, t in bottom]
    assert all(b[0] >= a[1] for a, b in zip(edges, edges[1:], strict=False))


def test_bars_of_disjoint_series_sit_on_their_own_tick(qtbot):
    """The NER "label per token" chart: one bar series per label over disjoint tokens; each bar is centred on its
    token (they were shifted sideways as if grouped). Series sharing an x still stand side by side."""
    import pyqtgraph as pg

    chart = ChartWidget()
    qtbot.addWidget(chart)
    chart.set_spec(ChartSpec("ner", series=[Series("PER", [0.0, 2.0], [0.9, 0.8], style="bar"),
                                            Series("O", [1.0, 3.0], [0.7, 0.95], style="bar")],
                             x_ticks=[(0.0, "John"), (1.0, "lives"), (2.0, "Smith"), (3.0, "here")]))
    bars = [i for i in chart.plot_item.items if isinstance(i, pg.BarGraphItem)]
    assert [list(b.opts["x"]) for b in bars] == [[0.0, 2.0], [1.0, 3.0]]
    chart.set_spec(ChartSpec("grouped", series=[Series("a", [0.0, 1.0], [1, 2], style="bar"),
                                                Series("b", [0.0, 1.0], [2, 1], style="bar")]))
    bars = [i for i in chart.plot_item.items if isinstance(i, pg.BarGraphItem)]
    assert bars[0].opts["x"][0] < 0 < bars[1].opts["x"][0]


def test_confusion_matrix_names_both_axes_and_prints_its_counts(qtbot):
    from explorer.core.tuning.evaluation import EvalResult, confusion_chart

    labels = ["negative", "neutral", "positive"]
    result = EvalResult.__new__(EvalResult)
    result.confusion, result.labels, result.n, result.accuracy = [[5, 1, 0], [2, 3, 1], [0, 1, 7]], labels, 20, 0.75
    result.to_dict = lambda: {}
    spec = confusion_chart(result)
    chart = ChartWidget()
    qtbot.addWidget(chart)
    chart.resize(700, 500)
    chart.show()
    chart.set_spec(spec)
    _settle(qtbot)
    for axis in ("bottom", "left"):
        assert [t for _p, t in chart.plot_item.getAxis(axis)._tickLevels[0]] == labels, axis
    printed = sorted(item.textItem.toPlainText() for item in chart._cell_items)
    assert printed == sorted(str(v) for row in result.confusion for v in row)


def test_the_wheel_scrolls_the_page_and_ctrl_wheel_zooms_the_chart(qtbot):
    """Scrolling down a panel must not shrink the charts the pointer crosses: a plain wheel over a chart scrolls
    the page; Ctrl + wheel zooms the chart."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QVBoxLayout

    page = QWidget()
    column = QVBoxLayout(page)
    chart = ChartWidget(title="curve")
    chart.set_spec(ChartSpec("curve", series=[Series("a", [0.0, 1.0, 2.0], [0.2, 0.5, 0.4])]))
    column.addWidget(chart)
    spacer = QWidget()
    spacer.setMinimumHeight(2000)
    column.addWidget(spacer)
    area = QScrollArea()
    area.setWidget(page)
    area.setWidgetResizable(True)
    area.resize(600, 500)
    qtbot.addWidget(area)
    area.show()
    qtbot.waitExposed(area)
    view = chart.graphics.viewport()
    centre = QPointF(view.width() / 2, view.height() / 2)

    def wheel(modifiers) -> bool:
        """Whether the chart took the wheel (Qt hands a real wheel event the chart leaves to the scroll area)."""
        event = QWheelEvent(centre, QPointF(view.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, -120),
                            Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(view, event)
        QApplication.processEvents()
        return event.isAccepted()

    qtbot.waitUntil(lambda: chart.plot_item.vb.viewRange()[0] != [0, 1])  # the data's range is drawn
    before = chart.plot_item.vb.viewRange()
    assert not wheel(Qt.KeyboardModifier.NoModifier)
    assert chart.plot_item.vb.viewRange() == before
    # what the scroll area does with a wheel event that reaches it: the page moves
    QApplication.sendEvent(area.viewport(), QWheelEvent(
        QPointF(10, 10), QPointF(area.viewport().mapToGlobal(QPoint(10, 10))), QPoint(0, 0), QPoint(0, -120),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False))
    assert area.verticalScrollBar().value() > 0
    assert wheel(Qt.KeyboardModifier.ControlModifier)
    assert chart.plot_item.vb.viewRange() != before
