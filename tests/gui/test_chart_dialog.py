"""A chart opens full-size on double-click (and from its Export menu, for the keyboard): a larger window with the
same plot and its export buttons, redrawn when the panel's chart is."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QApplication, QWidget

from explorer.core.io.charts import ChartSpec, Series
from explorer.gui.widgets.chart import ChartWidget
from explorer.gui.widgets.chart_dialog import ChartDialog


def _spec(title: str, top: float) -> ChartSpec:
    return ChartSpec(title, x_label="layer", y_label="cosine",
                     series=[Series("same", [0, 1, 2, 3], [0.2, 0.5, 0.7, top]),
                             Series("baseline", [0, 1, 2, 3], [0.1, 0.1, 0.2, 0.2], dashed=True)])


def _dialogs() -> list[ChartDialog]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, ChartDialog) and w.isVisible()]


def test_double_click_opens_the_chart_full_size_and_it_follows(qtbot, tmp_path):
    host = QWidget()
    host.resize(1024, 700)
    chart = ChartWidget(host, title="small")
    chart.setGeometry(10, 10, 360, 240)
    qtbot.addWidget(host)
    host.show()
    qtbot.waitExposed(host)
    assert chart.open_full_size() is None  # no data yet: nothing to open
    chart.set_spec(_spec("cosine per layer", 0.9))
    viewport = chart.graphics.viewport()
    at = QPoint(viewport.width() // 2, viewport.height() // 2)
    # what a window system sends for a double-click: press, release, double-click (the second press), release
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=at)
    left = Qt.MouseButton.LeftButton
    QApplication.sendEvent(viewport, QMouseEvent(QEvent.Type.MouseButtonDblClick, QPointF(at),
                                                 viewport.mapToGlobal(QPointF(at)), left, left,
                                                 Qt.KeyboardModifier.NoModifier))
    qtbot.mouseRelease(viewport, left, pos=at)
    qtbot.waitUntil(lambda: len(_dialogs()) == 1, timeout=5000)
    dialog = _dialogs()[0]
    big = dialog.chart
    assert big.spec is chart.spec and big.title_label.text() == "cosine per layer"
    assert big.plot_item.vb.width() > 1.8 * chart.plot_item.vb.width()
    assert big.plot_item.vb.height() > 1.8 * chart.plot_item.vb.height()
    assert big.export_button.isVisible() and not big.full_size_action.isVisible()
    assert big.open_full_size() is None  # no window within the window
    png = QImage(str(big.export(tmp_path / "big.png")))
    assert png.width() >= 1900  # the one export path: laid out at the export size, at 2x
    chart.set_spec(_spec("cosine per layer, step 2", 0.95))  # a live chart keeps drawing in the big window
    assert big.spec.title == "cosine per layer, step 2" and list(big.spec.series[0].y)[-1] == 0.95
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not _dialogs(), timeout=5000)
    chart.set_spec(_spec("after closing", 0.5))  # the closed window no longer listens


def test_export_menu_opens_full_size_for_the_keyboard(qtbot):
    chart = ChartWidget(title="t")
    qtbot.addWidget(chart)
    chart.resize(400, 300)
    chart.show()
    chart.set_spec(_spec("from the menu", 0.8))
    actions = [a for a in chart.export_button.menu().actions() if a.text() == "Open full size…"]
    assert len(actions) == 1
    actions[0].trigger()
    qtbot.waitUntil(lambda: len(_dialogs()) == 1, timeout=5000)
    dialog = _dialogs()[0]
    assert dialog.chart.spec.title == "from the menu"
    dialog.close()
    qtbot.waitUntil(lambda: not _dialogs(), timeout=5000)
