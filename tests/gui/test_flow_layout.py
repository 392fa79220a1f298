"""The flow layout's wrapped lines count in its minimum height, wherever it sits: tab widgets, stacks and splitters
do not pass height-for-width on, so a row of controls wrapped onto a second line took that line's height from the
widget under it (the Embeddings chart's last legend row was clipped by its tab page at 1024x700)."""

from __future__ import annotations

from PySide6.QtWidgets import QPushButton, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from explorer.gui.widgets.flow import FlowLayout


def test_wrapped_rows_are_part_of_the_minimum_inside_a_tab_page(qtbot):
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    panel = QWidget()
    tabs = QTabWidget()
    page = QWidget()
    row = FlowLayout()
    buttons = [QPushButton(f"control number {i}") for i in range(8)]
    for b in buttons:
        row.addWidget(b)
    below = QWidget()
    below.setMinimumHeight(300)
    v = QVBoxLayout(page)
    v.addLayout(row)
    v.addWidget(below, 1)
    tabs.addTab(page, "page")
    QVBoxLayout(panel).addWidget(tabs)
    scroll.setWidget(panel)
    qtbot.addWidget(scroll)
    scroll.resize(420, 250)  # too short for the page: the panel scrolls
    scroll.show()
    qtbot.waitExposed(scroll)

    def settled() -> bool:  # the layout asks its parents again after its own pass (a queued call): wait for it
        bottom = max(b.geometry().bottom() for b in buttons)
        return below.height() >= 300 and row.minimumSize().height() >= bottom - row.geometry().top()

    qtbot.waitUntil(settled, timeout=5000)
    lines = {b.geometry().top() for b in buttons}
    assert len(lines) >= 3  # the row wrapped
    assert below.height() >= 300, f"squeezed to {below.height()} px"
    assert page.rect().contains(below.geometry()), f"{below.geometry()} cut by the tab page {page.rect()}"
    assert row.minimumSize().height() >= max(b.geometry().bottom() for b in buttons) - row.geometry().top()
    scroll.resize(1600, 250)  # wide: one line again, and the minimum follows
    qtbot.waitUntil(lambda: len({b.geometry().top() for b in buttons}) == 1, timeout=5000)
    assert len({b.geometry().top() for b in buttons}) == 1
    assert row.minimumSize().height() <= buttons[0].height() + 2
