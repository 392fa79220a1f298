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
