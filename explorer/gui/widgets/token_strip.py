"""A reusable token strip: tokens as boxes that wrap like text, subword pieces of one word drawn touching and
underlined together, each box coloured by what happened to it (mask / random / kept / deleted / …), with a
legend. Other panels may use it for any per-token colouring (``actions`` are free strings with colours)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QLabel, QSizePolicy, QToolTip, QWidget

ACTION_COLORS: dict[str, str] = {
    "mask": "#e45756",
    "random": "#f58518",
    "keep": "#54a24b",
    "deleted": "#9d9d9d",
    "inserted": "#b279a2",
    "permuted": "#4c78a8",
    "rotated-start": "#1d3f73",
    "replaced": "#f58518",
    "predicted": "#eeca3b",
    "source": "#cfe3f5",
    "target": "#fde2c8",
}
ACTION_LABELS: dict[str, str] = {
    "mask": "→ mask token",
    "random": "→ random token",
    "keep": "kept (still predicted)",
    "deleted": "deleted",
    "inserted": "inserted mask",
    "permuted": "moved",
    "rotated-start": "new start (rotation)",
    "replaced": "replaced by generator",
    "predicted": "predicted",
    "source": "source segment",
    "target": "target segment",
}
_SPECIAL_BG = "#e8e8e8"
_PLAIN_BG = "#ffffff"
_DARK = {"mask", "permuted", "rotated-start", "deleted", "inserted"}


class TokenStrip(QWidget):
    """Tokens in wrapping rows. ``groups[i]`` (word index or None) joins pieces; ``actions[i]`` colours them."""

    tokenClicked = Signal(int)
    tokenHovered = Signal(int)

    PAD_X, PAD_Y, PIECE_GAP, WORD_GAP, ROW_GAP = 4, 3, 1, 7, 8

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._in_relayout = False
        self.tokens: list[str] = []
        self.groups: list[int | None] = []
        self.actions: list[str | None] = []
        self.special: list[bool] = []
        self.tips: list[str] = []
        self.highlight: set[int] = set()
        self._rects: list[QRectF] = []
        self._height = 30
        self._font = QFont(self.font())
        self._font.setPointSizeF(max(9.0, self._font.pointSizeF()))
        self.setMouseTracking(True)
        sp = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        sp.setHeightForWidth(True)
        self.setSizePolicy(sp)

    def set_tokens(
        self,
        tokens: list[str],
        groups: list[int | None] | None = None,
        actions: list[str | None] | None = None,
        special: list[bool] | None = None,
        tips: list[str] | None = None,
    ) -> None:
        n = len(tokens)
        self.tokens = list(tokens)
        self.groups = list(groups) if groups is not None else list(range(n))
        self.actions = list(actions) if actions is not None else [None] * n
        self.special = list(special) if special is not None else [False] * n
        self.tips = list(tips) if tips is not None else [""] * n
        self._relayout(self.width() or 600)
        self.updateGeometry()
        self.update()

    def present_actions(self) -> list[str]:
        seen: list[str] = []
        for a in self.actions:
            if a and a not in seen:
                seen.append(a)
        return seen

    # ------------------------------------------------------------ layout

    def _layout_for(self, width: int) -> tuple[list[QRectF], int]:
        """Token boxes wrapped to ``width`` and the height they need; no side effects (Qt may ask any width)."""
        fm = QFontMetrics(self._font)
        h = fm.height() + 2 * self.PAD_Y
        x, y = 2.0, 2.0
        rects: list[QRectF] = []
        for i, tok in enumerate(self.tokens):
            w = fm.horizontalAdvance(tok or " ") + 2 * self.PAD_X
            same_word = i > 0 and self.groups[i] is not None and self.groups[i] == self.groups[i - 1]
            gap = self.PIECE_GAP if same_word else self.WORD_GAP
            if i > 0:
                x += gap
            if x + w > width - 2 and x > 2.0:
                x, y = 2.0, y + h + self.ROW_GAP
            rects.append(QRectF(x, y, w, h))
            x += w
        return rects, int(y + h + 6)

    def _relayout(self, width: int) -> int:
        self._rects, self._height = self._layout_for(width)
        # Changing the minimum height re-enters layout (and so heightForWidth); do it only when it changes,
        # and never from inside heightForWidth, or Qt recurses until the stack overflows.
        if self.minimumHeight() != self._height and not self._in_relayout:
            self._in_relayout = True
            try:
                self.setMinimumHeight(self._height)
            finally:
                self._in_relayout = False
        return self._height

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._layout_for(width)[1]

    def sizeHint(self) -> QSize:
        return QSize(600, self._height)

    def resizeEvent(self, event) -> None:
        self._relayout(self.width())
        super().resizeEvent(event)

    # ------------------------------------------------------------ painting

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setFont(self._font)
        p.fillRect(self.rect(), QColor("#ffffff"))
        for i, r in enumerate(self._rects):
            act = self.actions[i]
            bg = ACTION_COLORS.get(act, _PLAIN_BG) if act else (_SPECIAL_BG if self.special[i] else _PLAIN_BG)
            p.setPen(QPen(QColor("#2b2b2b") if i in self.highlight else QColor("#b9b9b9"),
                          2 if i in self.highlight else 1))
            p.setBrush(QColor(bg))
            p.drawRoundedRect(r, 3, 3)
            p.setPen(QColor("#ffffff") if act in _DARK else QColor("#1a1a1a"))
            p.drawText(r, Qt.AlignmentFlag.AlignCenter, self.tokens[i])
            if act == "deleted":
                p.setPen(QPen(QColor("#333333"), 1.5))
                p.drawLine(r.left() + 2, r.center().y(), r.right() - 2, r.center().y())
        # one underline per word made of several pieces: the unit whole-word masking treats as one
        p.setPen(QPen(QColor("#4a4a4a"), 2))
        i = 0
        n = len(self._rects)
        while i < n:
            j = i
            while j + 1 < n and self.groups[i] is not None and self.groups[j + 1] == self.groups[i]:
                j += 1
            if j > i:
                for row_start in self._row_runs(i, j):
                    a, b = row_start
                    ya = self._rects[a].bottom() + 2
                    p.drawLine(self._rects[a].left() + 1, ya, self._rects[b].right() - 1, ya)
            i = j + 1
        p.end()

    def _row_runs(self, i: int, j: int) -> list[tuple[int, int]]:
        runs = [(i, i)]
        for k in range(i + 1, j + 1):
            if self._rects[k].top() == self._rects[runs[-1][1]].top():
                runs[-1] = (runs[-1][0], k)
            else:
                runs.append((k, k))
        return runs

    # ------------------------------------------------------------ pointer

    def index_at(self, x: float, y: float) -> int | None:
        for i, r in enumerate(self._rects):
            if r.contains(x, y):
                return i
        return None

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        i = self.index_at(event.position().x(), event.position().y())
        if i is not None:
            self.tokenHovered.emit(i)
            tip = self.tips[i] if i < len(self.tips) and self.tips[i] else f"{i}: {self.tokens[i]}"
            QToolTip.showText(event.globalPosition().toPoint(), tip, self)
        super().mouseMoveEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        i = self.index_at(event.position().x(), event.position().y())
        if i is not None:
            self.tokenClicked.emit(i)
        super().mousePressEvent(event)


class Legend(QWidget):
    """Coloured swatches for the actions shown (only those present, in a fixed order)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from explorer.gui.widgets.flow import FlowLayout

        self._layout = FlowLayout(self, spacing=10)

    def set_actions(self, actions: list[str], prefix: str = "", underline: str | None = "pieces of one word") -> None:
        """Show swatches for ``actions``; ``underline`` says what an underline joins (None: no underlines)."""
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        if prefix:
            self._layout.addWidget(QLabel(prefix))
        order = [a for a in ACTION_COLORS if a in actions] + [a for a in actions if a not in ACTION_COLORS]
        for a in order:
            fg = "#fff" if a in _DARK else "#111"
            label = QLabel(f" {ACTION_LABELS.get(a, a)} ")
            label.setStyleSheet(f"background:{ACTION_COLORS.get(a, '#ddd')}; color:{fg}; border-radius:3px; padding:1px;")
            self._layout.addWidget(label)
        if underline:
            hint = QLabel(f"underline = {underline}")
            hint.setStyleSheet("color:#666;")
            self._layout.addWidget(hint)
        self.updateGeometry()
