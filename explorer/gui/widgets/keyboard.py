"""Keyboard use of a panel: Tab always moves on to the next control, and never stops where nothing shows focus."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QPlainTextEdit, QScrollArea, QTextEdit, QWidget


def tab_leaves(root: QWidget) -> None:
    """Make Tab leave every table, list and text box under ``root``, and take plain scroll areas out of the chain.

    Qt's defaults trap a keyboard user: Tab walks a table's cells round and round, and types a tab character into a
    text box. Arrow keys still move between cells, and Tab while editing a cell still commits it and edits the next.
    A scroll area draws no focus mark, so stopping on it looks like a lost key press; it scrolls to whichever of
    its controls takes the focus instead.
    """
    for view in root.findChildren(QAbstractItemView):
        view.setTabKeyNavigation(False)
    for edit in (*root.findChildren(QPlainTextEdit), *root.findChildren(QTextEdit)):
        edit.setTabChangesFocus(True)
    for area in root.findChildren(QScrollArea):
        area.setFocusPolicy(Qt.FocusPolicy.NoFocus)
