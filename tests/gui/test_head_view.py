"""Head view: the cached drawing shows what a fresh drawing of the same data shows, after scrolling,
new data and hovering (a stale cache, or lines cut at a scrolled strip, would differ)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QScrollArea

from explorer.gui.widgets.head_view import HeadView


def _maps(seed: int, heads: int = 3, n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = np.exp(rng.normal(size=(heads, n, n)) * 2.5)
    return (m / m.sum(-1, keepdims=True)).astype(np.float32)  # [head, query, key]


def _view(qtbot, maps: np.ndarray, scroll: int = 0) -> tuple[QScrollArea, HeadView]:
    hv = HeadView()
    hv.set_data([f"t{i}" for i in range(maps.shape[1])], maps, list(range(maps.shape[0])), title="test")
    area = QScrollArea()
    area.setWidget(hv)
    area.setWidgetResizable(True)
    qtbot.addWidget(area)
    area.resize(520, 300)
    area.show()
    qtbot.waitExposed(area)
    area.verticalScrollBar().setValue(scroll)
    qtbot.wait(20)
    return area, hv


def _pixels(area: QScrollArea) -> np.ndarray:
    img = area.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    rows = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    return rows[:, :img.width(), :3].copy()  # a copy: the view dies with ``img``


def test_scrolling_step_by_step_draws_what_a_fresh_view_draws(qtbot):
    maps = _maps(0)
    area, _hv = _view(qtbot, maps)
    for value in range(0, 301, 17):  # small steps: Qt repaints only the uncovered strip each time
        area.verticalScrollBar().setValue(value)
        qtbot.wait(5)
    stepped = _pixels(area)
    fresh_area, _ = _view(qtbot, maps, scroll=area.verticalScrollBar().value())
    fresh = _pixels(fresh_area)
    assert (stepped != 255).any()  # lines and labels were drawn
    np.testing.assert_array_equal(stepped, fresh)


def test_new_data_and_hover_are_drawn_not_the_cached_picture(qtbot):
    area, hv = _view(qtbot, _maps(1))
    first = _pixels(area)
    new = _maps(2)
    hv.set_data(hv.labels, new, [0, 1, 2], title="test")
    qtbot.wait(20)
    after = _pixels(area)
    fresh_area, _ = _view(qtbot, new)
    np.testing.assert_array_equal(after, _pixels(fresh_area))
    assert not np.array_equal(first, after)
    # Hovering a token on the left keeps only its lines: fewer coloured pixels than all links.
    qtbot.mouseMove(hv, QPointF(20, hv.row_y(5)).toPoint())
    qtbot.waitUntil(lambda: hv.hover == 5)
    qtbot.wait(20)
    hovered = _pixels(area)
    assert (hovered != 255).any(-1).sum() < (after != 255).any(-1).sum()


def test_each_link_is_drawn_between_its_rows_in_its_heads_colour(qtbot):
    """Two heads, one link each: each line's midpoint has its head's hue, the space between them stays white, and
    a view whose links are all under the drawing floor draws its labels only."""
    from explorer.gui.widgets.head_view import HEAD_COLORS

    maps = np.zeros((2, 4, 4), np.float32)  # [head, query, key]
    maps[0, 0, 2] = 1.0  # head 0: token 0 -> token 2
    maps[1, 3, 1] = 0.5  # head 1: token 3 -> token 1
    hv = HeadView()
    qtbot.addWidget(hv)
    hv.resize(600, 140)
    hv.set_data(["a", "b", "c", "d"], maps, [0, 1], title="two links")
    img = hv.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    x_mid = (10 + hv._label_w + 10 + hv._label_w + hv.gap()) // 2  # half way between the two label columns

    def rgb(y: float) -> np.ndarray:
        c = img.pixelColor(x_mid, round(y))
        return np.array([c.red(), c.green(), c.blue()])

    blue, orange = rgb(hv.row_y(1)), rgb(hv.row_y(2))  # the midpoints of 0 -> 2 and of 3 -> 1
    assert HEAD_COLORS[0] == "#1f77b4" and HEAD_COLORS[1] == "#ff7f0e"
    assert blue[2] > blue[0] + 60 and orange[0] > orange[2] + 60
    assert (rgb((hv.row_y(0) + hv.row_y(1)) / 2 - 4) == 255).all()  # no link passes there

    hv.set_data(["a", "b", "c", "d"], maps * 0.001, [0, 1], title="faint")  # all below min_weight
    faint = hv.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    assert faint.pixelColor(x_mid, round(hv.row_y(1))).name() == "#ffffff"


def test_the_same_data_again_is_not_drawn_again(qtbot):
    """set_data with what is shown (an analysis drawn early from its preview) keeps the drawing and the hover;
    any difference (one weight, a label, the threshold mask) draws anew."""
    maps = _maps(1)
    area, hv = _view(qtbot, maps)
    labels = list(hv.labels)
    hv.hover, hv.hover_side = 4, "left"
    version = hv._version
    hv.set_data(labels, maps.copy(), [0, 1, 2], title="test")
    assert hv._version == version and hv.hover == 4
    hv.highlight = {1}  # a search hit on the same data is drawn
    hv.set_data(labels, maps, [0, 1, 2], title="test")
    qtbot.waitUntil(lambda: frozenset({1}) in hv._cache_key, timeout=2000)
    assert hv._version == version
    changed = maps.copy()
    changed[1, 2, 3] += 1e-3
    for args in ((labels, changed, [0, 1, 2]), (["x", *labels[1:]], maps, [0, 1, 2]),
                 (labels, maps, [0, 1, 2], None, maps > 0.05)):
        hv.set_data(*args, title="test")
        assert hv._version == version + 1 and hv.hover == -1
        version = hv._version
