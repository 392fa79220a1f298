"""Models → Compare with five models at 1024x700: every column header shows its whole model name, the size chart
names every model, and parameters and bytes are never on one axis."""

from __future__ import annotations

import dataclasses

from PySide6.QtWidgets import QApplication


def test_compare_five_models_names_every_group_in_one_unit_per_axis(window, qtbot, minilm, smollm2):
    names = ["minilm", "smollm2", "t-frozen-2(classify)-minilm", "t-full-sst2-smollm2-3", "my_model.v2"]
    cards = [minilm.card, smollm2.card, minilm.card, smollm2.card, minilm.card]

    class Fake:
        def __init__(self, card, name):
            self.card = dataclasses.replace(card, name=name)

    window.resize(1024, 700)
    window.ctx.models.loaded.clear()
    window.ctx.models.loaded.update({n: Fake(c, n) for n, c in zip(names, cards, strict=True)})
    panel = window.show_panel("models")
    panel.tabs.setCurrentIndex(1)
    panel._update_compare()
    for _ in range(3):
        QApplication.processEvents()
        qtbot.wait(20)
    table = panel.compare_table
    headers = [table.horizontalHeaderItem(i).text() for i in range(1, table.columnCount())]
    assert [h.replace("\n", "") for h in headers] == names
    header = table.horizontalHeader()
    fm = header.fontMetrics()
    for i, text in enumerate(headers, 1):
        assert max(fm.horizontalAdvance(line) for line in text.split("\n")) <= header.sectionSize(i), text
        assert header.height() >= fm.height() * len(text.split("\n"))
    params, size = panel.compare_chart, panel.bytes_chart
    assert params.spec.y_label == "millions of parameters" and size.spec.y_label == "MB"
    ticks = params.plot_item.getAxis("bottom")._tickLevels[0]
    assert len(ticks) == 5, ticks  # every model named under its bars
    assert len(params.legend.items) == 2 and len(size.legend.items) == 2
