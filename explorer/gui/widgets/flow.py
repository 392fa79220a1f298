"""Layout helpers that keep every label readable at 1024×700: a row of controls that wraps onto the next
line instead of widening the window, and a label that wraps instead of being cut."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QMargins, QObject, QRect, QSize, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractButton,
    QLabel,
    QLayout,
    QLayoutItem,
    QPushButton,
    QSizePolicy,
    QSpacerItem,
    QStyle,
    QWidget,
)


class FlowLayout(QLayout):
    """Items left to right, wrapping to a new line when the width runs out (Qt's flow layout example).

    Its minimum width is that of its widest item, so a long row of controls never sets the window's width.
    A plain text ``QLabel`` stays on the line of the control after it ("Seed" never ends a line without its box).
    """

    def __init__(self, parent: QWidget | None = None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        # Sizes are worked out in Python: kept until Qt invalidates the layout (an item's size or visibility
        # changed), as Qt's own layouts keep theirs; a progress message asked for them a dozen times.
        self._min: QSize | None = None
        self._hfw: tuple[int, int] | None = None  # (width, height)
        # The height its lines take at the width it was last given: part of its minimum, because tab widgets,
        # stacks and splitters do not pass height-for-width on (a row wrapped onto a second line took that
        # line's height from the chart under it, whose legend was cut off).
        self._need = 0
        self.setContentsMargins(QMargins(0, 0, 0, 0))

    def invalidate(self) -> None:
        self._min, self._hfw = None, None
        super().invalidate()

    # QHBoxLayout's API, so a row can switch layouts with one word; a flow has nowhere to stretch to.
    def addStretch(self, _stretch: int = 0) -> None:  # noqa: N802 - Qt naming
        return None

    def addWidget(self, widget: QWidget, _stretch: int = 0, *_alignment: object) -> None:  # noqa: N802
        super().addWidget(widget)

    def addLayout(self, layout: QLayout, _stretch: int = 0) -> None:  # noqa: N802
        self.addChildLayout(layout)
        self.addItem(layout)

    def addSpacing(self, size: int) -> None:  # noqa: N802
        self.addItem(QSpacerItem(size, 0, QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Minimum))

    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802
        self._items.append(item)
        self._min, self._hfw = None, None

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:  # noqa: N802
        self._min, self._hfw = None, None
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        if self._hfw is None or self._hfw[0] != width:
            self._hfw = (width, self._place(QRect(0, 0, width, 0), apply=False))
        return self._hfw[1]

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802
        super().setGeometry(rect)
        need = self._place(rect, apply=True)
        if need != self._need:
            self._need = need
            # the parents ask for the minimum again once this layout pass is over (not from inside it)
            QTimer.singleShot(0, self, self._ask_again)  # dropped if the layout is gone by then

    def _ask_again(self) -> None:
        self._min = None
        super().invalidate()

    def sizeHint(self) -> QSize:  # noqa: N802
        return self.minimumSize()

    def minimumSize(self) -> QSize:  # noqa: N802
        if self._min is None:
            self._min = self._minimum_size()
        return QSize(self._min.width(), max(self._min.height(), self._need))

    def _minimum_size(self) -> QSize:
        size = QSize()
        for group in self._groups():
            w = sum(i.minimumSize().width() for i in group) + self._gap() * (len(group) - 1)
            h = max(i.minimumSize().height() for i in group)
            size = size.expandedTo(QSize(w, h))
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _gap(self) -> int:
        if self._spacing >= 0:
            return self._spacing
        parent = self.parentWidget()
        return parent.style().pixelMetric(QStyle.PixelMetric.PM_LayoutHorizontalSpacing) if parent else 6

    def _visible(self) -> list[QLayoutItem]:
        return [i for i in self._items if i.spacerItem() is not None or not i.isEmpty()]

    def _groups(self) -> list[list[QLayoutItem]]:
        """Items that must stay on one line: a plain label and the item after it."""
        groups: list[list[QLayoutItem]] = []
        glue = False
        for item in self._visible():
            w = item.widget()
            if glue and groups and not isinstance(w, QLabel):
                groups[-1].append(item)
            else:
                groups.append([item])
            glue = isinstance(w, QLabel) and not w.wordWrap()
        return groups

    def _place(self, rect: QRect, apply: bool) -> int:
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        x, y, line_h = area.x(), area.y(), 0
        gap = self._gap()
        placed: list[tuple[QLayoutItem, int, int, int, int]] = []  # item, x, y (its line's top), width, height
        line_heights: dict[int, int] = {}
        for group in self._groups():
            sizes = [i.sizeHint().expandedTo(i.minimumSize()) for i in group]
            group_w = sum(s.width() for s in sizes) + gap * (len(group) - 1)
            if x > area.x() and x + group_w > area.right() + 1:
                x, y, line_h = area.x(), y + line_h + gap, 0
            for item, size in zip(group, sizes, strict=True):
                w = min(size.width(), max(area.width() - (x - area.x()), item.minimumSize().width()))
                h = item.heightForWidth(w) if item.hasHeightForWidth() else size.height()
                placed.append((item, x, y, w, h))
                x += w + gap
                line_h = max(line_h, h)
                line_heights[y] = line_h
        if apply:
            # Each item centred vertically in its line (labels line up with the boxes beside them), set once: an
            # item moved twice per layout repaints twice.
            for item, ix, iy, w, h in placed:
                item.setGeometry(QRect(ix, iy + (line_heights[iy] - h) // 2, w, h))
        return y + line_h - rect.y() + m.bottom()


def wrapping_label(text: str = "", style: str = "") -> QLabel:
    """A label that wraps its text (never widens the window, never cuts a word off)."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setMinimumWidth(min(label.minimumSizeHint().width(), 120))
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    if style:
        label.setStyleSheet(style)
    return label


def _layout_of(widget: QWidget) -> QLayout | None:
    """The layout that holds ``widget`` (searching its parent's layout tree)."""
    parent = widget.parentWidget()
    if parent is None or parent.layout() is None:
        return None
    todo = [parent.layout()]
    while todo:
        lay = todo.pop()
        for i in range(lay.count()):
            item = lay.itemAt(i)
            if item.widget() is widget:
                return lay
            if item.layout() is not None:
                todo.append(item.layout())
    return None


class _WrapHeight(QObject):
    """Keeps a wrapping label's minimum height at what its text needs at its current width.

    Splitters, tab widgets and stacks do not pass height-for-width on, so without this a wrapped label
    that needs three lines can be squeezed to one and drawn over its neighbours."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() in (QEvent.Type.Resize, QEvent.Type.Show) and isinstance(obj, QLabel) and obj.wordWrap():
            need = obj.heightForWidth(obj.width()) if obj.width() > 0 else -1
            if need > 0 and need != obj.minimumHeight():
                obj.setMinimumHeight(need)
        return False


_WRAP_HEIGHT: _WrapHeight | None = None


def fit_height(label: QLabel) -> None:
    """Make a wrapping ``label`` claim the height of all its lines wherever it sits."""
    global _WRAP_HEIGHT
    if _WRAP_HEIGHT is None:
        _WRAP_HEIGHT = _WrapHeight()
    label.removeEventFilter(_WRAP_HEIGHT)
    label.installEventFilter(_WRAP_HEIGHT)


def make_readable(root: QWidget) -> None:
    """Let every free-standing text label under ``root`` wrap, so no label sets a minimum width or is cut.

    Captions that sit in a :class:`FlowLayout` (kept on one line with their box) or in a form's label column
    stay one line; they are short by design.
    """
    from PySide6.QtWidgets import QFormLayout

    for label in root.findChildren(QLabel):
        if label.wordWrap():
            fit_height(label)
            continue
        if label.pixmap() is not None and not label.pixmap().isNull():
            continue
        lay = _layout_of(label)
        if isinstance(lay, FlowLayout):
            continue
        if isinstance(lay, QFormLayout):
            idx = lay.indexOf(label)
            if idx >= 0 and lay.getItemPosition(idx)[1] == QFormLayout.ItemRole.LabelRole:
                continue
        label.setWordWrap(True)
        # A wrapping QLabel still asks for about half its text's width; a few words' width is enough.
        label.setMinimumWidth(min(label.minimumSizeHint().width(), 120))
        fit_height(label)
    for lay in root.findChildren(QLayout):
        lay.invalidate()


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
            if isinstance(w, QPushButton):  # the style's 80 px minimum is not text: measure the text itself
                hint = QSize(w.fontMetrics().horizontalAdvance(w.text()) + 8, hint.height())
            if hint.width() > w.width() + 1 or hint.height() > w.height() + 1:
                bad.append(f"{w.text()[:40]!r}: {w.width()}x{w.height()} px, needs {hint.width()}x{hint.height()}")
    return bad


class LayoutFence(QWidget):
    """Holds one widget and passes its relayouts up only when its size constraints change.

    Qt relayouts every ancestor after any relayout inside (``QLayout::activate`` ends in ``updateGeometry``
    "ideally only if sizeHint() or sizePolicy() has changed"), and a QSplitter answers by repainting everything
    it holds: a progress message that re-wraps one label repainted a whole panel, charts included. The fence has
    no layout of its own; it sizes its widget to itself and asks its parent for a new layout only when the
    widget's size hints, limits, policy or height for the current width differ from the last ones.
    """

    def __init__(self, child: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._child = child
        child.setParent(self)
        self._constraints: tuple = ()
        self.setSizePolicy(child.sizePolicy())

    def _current(self) -> tuple:
        """The constraints as the parent layout sees them (a minimum height that the text needs anyway is none)."""
        c = self._child
        return (self.sizeHint(), self.minimumSizeHint(), c.maximumSize(), c.sizePolicy(),
                self.heightForWidth(self.width()) if c.hasHeightForWidth() else -1)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:
            now = self._current()
            if now != self._constraints:
                self._constraints = now
                self.setSizePolicy(self._child.sizePolicy())
                self.updateGeometry()
            self._child.setGeometry(self.rect())
            return True
        return super().event(event)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        self._child.setGeometry(self.rect())
        now = self._current()
        if now[-1] != (self._constraints[-1] if self._constraints else None):
            self.updateGeometry()  # a new width needs a new height: the minimum below follows it
        self._constraints = now
        super().resizeEvent(event)

    def sizeHint(self) -> QSize:  # noqa: N802
        return self._child.sizeHint().expandedTo(self._child.minimumSize())

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        """The child's minimum, and at least the height its content needs at the current width: a splitter or a
        scroll area does not ask for height for width, and squeezed the child's rows over each other."""
        m = self._child.minimumSizeHint().expandedTo(self._child.minimumSize())
        if self._child.hasHeightForWidth() and self.width() > 0:
            m.setHeight(max(m.height(), self.heightForWidth(self.width())))
        return m

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return self._child.hasHeightForWidth()

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return max(self._child.heightForWidth(width), self._child.minimumHeight())
