"""Live views redrawn once per screen frame (FrameCoalescer) and charts that redraw new values in place."""

from __future__ import annotations

from explorer.core.io.charts import ChartSpec, Series
from explorer.gui.frames import FrameCoalescer, frame_ms
from explorer.gui.widgets.chart import ChartWidget


def test_each_key_draws_its_latest_request_once_per_frame(qtbot):
    frames = FrameCoalescer()
    calls = []
    frames.request("chart", lambda: calls.append("chart 1"))
    frames.request("progress", lambda: calls.append("progress"))
    frames.request("chart", lambda: calls.append("chart 2"))
    assert calls == [] and frames.pending()
    qtbot.waitUntil(lambda: not frames.pending(), timeout=1000)
    assert calls == ["chart 2", "progress"]
    frames.request("chart", lambda: calls.append("chart 3"))
    frames.request("progress", lambda: calls.append("late progress"))
    frames.drop("chart")
    frames.flush()
    assert calls[2:] == ["late progress"] and not frames.pending()
    frames.request("chart", lambda: calls.append("dropped"))
    frames.drop()
    qtbot.wait(3 * frame_ms())
    assert "dropped" not in calls


def test_a_key_with_its_own_interval_draws_less_often_than_the_frame(qtbot):
    """The lab's progress text: ten times a second at most, while its live chart keeps the frame rate."""
    frames = FrameCoalescer(intervals={"progress": 20 * frame_ms()})
    calls = []
    for i in range(3):
        frames.request("progress", lambda i=i: calls.append(f"progress {i}"))
        frames.request("chart", lambda i=i: calls.append(f"chart {i}"))
        qtbot.wait(2 * frame_ms())
    assert calls == ["chart 0", "chart 1", "chart 2"]  # the progress text has not been drawn yet
    qtbot.waitUntil(lambda: not frames.pending(), timeout=2000)
    assert calls[3:] == ["progress 2"]  # drawn once, the latest


def _history(n: int) -> ChartSpec:
    xs = [float(i) for i in range(1, n + 1)]
    return ChartSpec(title="t", x_label="round", series=[Series("loss", xs, [1 / x for x in xs]),
                                                         Series("accuracy", xs, [x / n for x in xs], dashed=True)])


def test_same_layout_redraws_the_lines_in_place_and_another_layout_rebuilds(qtbot):
    w = ChartWidget()
    qtbot.addWidget(w)
    w.set_spec(_history(2))
    items = list(w._xy_items)
    legend = [label.text for _sample, label in w.legend.items]
    w.set_spec(_history(5))
    assert w._xy_items == items  # the same line items, new points
    x, y = items[0].getData()
    assert list(x) == [1.0, 2.0, 3.0, 4.0, 5.0] and list(y) == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert [label.text for _sample, label in w.legend.items] == legend and w.spec.series[0].x[-1] == 5.0
    other = _history(5)
    other.series[1].dashed = False  # a style change is a new layout: every item is made again
    w.set_spec(other)
    assert w._xy_items[0] is not items[0] and len(w._xy_items) == 2
    assert len(w.plot_item.listDataItems()) == 2


def test_flow_row_places_each_item_once_centred_in_its_line(qtbot):
    """A relayout that changes nothing moves nothing (each move repaints), and a label sits centred beside a
    taller box."""
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QLabel, QPlainTextEdit, QWidget

    from explorer.gui.widgets.flow import FlowLayout
    from tests.gui.conftest import EventLog

    host = QWidget()
    row = FlowLayout(host)
    label, box = QLabel("Seed"), QPlainTextEdit()
    box.setFixedSize(120, 60)
    row.addWidget(label)
    row.addWidget(box)
    qtbot.addWidget(host)
    host.resize(400, 100)
    host.show()
    qtbot.waitExposed(host)
    g = label.geometry()
    assert g.center().y() in (box.geometry().center().y(), box.geometry().center().y() - 1)
    watch = EventLog(QEvent.Type.Move)
    moves = watch.objects
    label.installEventFilter(watch)
    row.invalidate()
    row.activate()
    row.setGeometry(host.rect())
    assert moves == [] and label.geometry() == g
