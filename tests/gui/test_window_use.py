"""The window used as a person would (issue 16): keyboard focus, a window that keeps its size, no label cut
at 1024×700, and results that follow their inputs."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QTabWidget, QWidget

from explorer.gui.main_window import PANELS

SAMPLE = ("The bank raised its interest rates on Monday. We sat on the river bank and watched the boats. "
          "BERT and GPT-3 were trained by Google and OpenAI in California.")


def cut_labels(root: QWidget) -> list[str]:
    """Every visible QLabel / button whose text does not fit its geometry (cut or elided)."""
    bad = []
    for cls in (QLabel, QAbstractButton):
        for w in root.findChildren(cls):
            if not w.isVisible() or not w.text() or w.width() <= 0:
                continue
            if isinstance(w, QLabel) and w.wordWrap():
                need = w.heightForWidth(w.width())
                if need > w.height() + 1:
                    bad.append(f"{w.text()[:40]!r}: {w.height()} px high, needs {need}")
                continue
            hint = w.minimumSizeHint() if isinstance(w, QLabel) else w.sizeHint()
            if hint.width() > w.width() + 1 or hint.height() > w.height() + 1:
                bad.append(f"{w.text()[:40]!r}: {w.width()}x{w.height()} px, needs {hint.width()}x{hint.height()}")
    return bad


def settle(qtbot, ms: int = 50) -> None:
    for _ in range(3):
        QApplication.processEvents()
        qtbot.wait(ms)


@pytest.fixture
def small_window(window, qtbot, minilm, smollm2):
    window.resize(1024, 700)
    window.ctx.models.loaded.update({"minilm": minilm, "smollm2": smollm2})
    window.ctx.models.changed.emit()
    settle(qtbot)
    return window


def test_tab_leaves_the_text_box_and_the_text_is_unchanged(window, qtbot):
    window.text_input.set_text("a text that Tab must not change")
    edit = window.text_input.edit
    edit.setFocus()
    qtbot.waitUntil(edit.hasFocus, timeout=2000)
    qtbot.keyClick(edit, Qt.Key.Key_Tab)
    settle(qtbot, 10)
    assert not edit.hasFocus()
    edit.setFocus()
    for _ in range(5):
        qtbot.keyClick(QApplication.focusWidget() or edit, Qt.Key.Key_Tab)
    assert window.text_input.text() == "a text that Tab must not change"


def test_no_label_is_cut_at_1024x700_in_any_panel_or_view(small_window, qtbot):
    w = small_window
    problems = []
    for key, _cls, _label in PANELS:
        panel = w.show_panel(key)
        settle(qtbot)
        tabs = [t for t in panel.findChildren(QTabWidget) if t.isVisible()]
        views = [(None, 0)] + [(t, i) for t in tabs for i in range(t.count())]
        for tab, i in views:
            if tab is not None:
                tab.setCurrentIndex(i)
                settle(qtbot, 20)
            problems += [f"{key} view {i}: {p}" for p in cut_labels(w)]
        assert w.width() == 1024, f"{key} widened the window to {w.width()} px"
        assert w.height() == 700, f"{key} made the window {w.height()} px high"
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_window_width_unchanged_after_strategy_switch_and_analysis(small_window, qtbot):
    w = small_window
    w.text_input.set_text(SAMPLE * 3)
    masking = w.show_panel("masking")
    masking.picker.select("smollm2")
    settle(qtbot)
    width = w.width()
    for i in range(masking.strategy_combo.count()):
        masking.strategy_combo.setCurrentIndex(i)
        masking.run()
        qtbot.waitUntil(lambda: not w.ctx.runner.active, timeout=60_000)
        settle(qtbot, 20)
        assert w.width() == width, masking.strategy_combo.currentText()
    attention = w.show_panel("attention")
    attention.picker.select("smollm2")
    attention.run()
    qtbot.waitUntil(lambda: not w.ctx.runner.active, timeout=120_000)
    settle(qtbot)
    assert w.width() == width
    assert not cut_labels(w), cut_labels(w)
