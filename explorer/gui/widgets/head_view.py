"""bertviz-style head view: tokens on the left (attending) and right (attended to), one line per link
whose opacity is its weight; hover a token to isolate its lines; several heads at once in colours.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import shiboken6
from PySide6.QtCore import QLineF, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from explorer.core.io.fileio import atomic_path

HEAD_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#843c39", "#7b4173", "#3182bd"]
SEGMENT_COLORS = ["#e8f0fb", "#fdeedd"]  # background of sentence A / sentence B tokens


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a is b or (a.shape == b.shape and np.array_equal(a, b))


class HeadView(QWidget):
    """Draws ``maps`` ([head, query, key] weights of the shown tokens) between two token columns."""

    tokenHovered = Signal(int)  # index into the shown tokens, -1 when none

    ROW = 18
    MAX_LINES = 2500
    GAP = 220  # horizontal space for the lines

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.labels: list[str] = []
        self.segments: list[int] = []
        self.maps = np.zeros((0, 0, 0), dtype=np.float32)  # [head, query, key]
        self.heads: list[int] = []  # the model head number of each map (for colours and legend)
        self.keep: np.ndarray | None = None  # [head, query, key] bool: threshold filter
        self.hover: int = -1
        self.hover_side: str = ""
        self.min_weight = 0.01
        self.title = ""
        self.highlight: set[int] = set()
        self._font = QFont()
        self._font.setPointSize(9)
        self._label_w = 90
        self._version = 0  # bumped by set_data: part of the cache key
        self._cache: QPixmap | None = None  # the visible part, drawn once and blitted on repeat paints
        self._cache_key: tuple = ()
        self._cache_rect = QRect()
        self.setMinimumWidth(360)

    # ------------------------------------------------------------ data

    def set_data(self, labels: list[str], maps: np.ndarray, heads: list[int], segments: list[int] | None = None,
                 keep: np.ndarray | None = None, title: str = "") -> None:
        """Show ``maps`` [head, query, key] for tokens ``labels``; ``keep`` masks links (exBERT threshold).
        The same data again keeps the drawing and the hover (an analysis drawn early from its preview is not drawn
        twice); a new ``highlight`` or ``min_weight`` set before is still drawn (the drawing's cache key has them)."""
        maps = np.asarray(maps, dtype=np.float32)
        segments = list(segments) if segments is not None else [0] * len(labels)
        if (title == self.title and list(heads) == self.heads and list(labels) == self.labels
                and segments == self.segments and _same(maps, self.maps) and _same(keep, self.keep)):
            self.update()
            return
        self.labels = list(labels)
        self.maps = maps
        self.heads = list(heads)
        self.segments = segments
        self.keep = keep
        self.title = title
        self.hover = -1
        self._version += 1
        fm = QFontMetrics(self._font)
        widest = max((fm.horizontalAdvance(s) for s in self.labels[:2000]), default=40)
        self._label_w = min(max(widest + 12, 40), 160)
        self.setMinimumHeight(self.sizeHint().height())
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(2 * self._label_w + self.GAP + 20, 40 + self.ROW * max(1, len(self.labels)))

    def gap(self) -> int:
        """Room for the lines: wider when the widget is wide, so steep lines stay apart."""
        return int(min(520, max(self.GAP, self.width() - 2 * self._label_w - 40)))

    def row_y(self, i: int) -> float:
        return 34 + i * self.ROW + self.ROW / 2

    # ------------------------------------------------------------ pointer

    def _token_at(self, pos: QPointF) -> tuple[int, str]:
        i = int((pos.y() - 34) // self.ROW)
        if not 0 <= i < len(self.labels):
            return -1, ""
        x0 = 10
        if x0 <= pos.x() <= x0 + self._label_w:
            return i, "left"
        x1 = x0 + self._label_w + self.gap()
        if x1 <= pos.x() <= x1 + self._label_w:
            return i, "right"
        return -1, ""

    def mouseMoveEvent(self, event) -> None:
        i, side = self._token_at(event.position())
        if (i, side) != (self.hover, self.hover_side):
            self.hover, self.hover_side = i, side
            self.tokenHovered.emit(i)
            self.update()

    def leaveEvent(self, event) -> None:
        self.hover, self.hover_side = -1, ""
        self.tokenHovered.emit(-1)
        self.update()

    # ------------------------------------------------------------ painting

    def paintEvent(self, event) -> None:
        """Blit the visible part from a cached pixmap, drawn again only when the data, hover, search hits,
        size or scroll position change (a repaint of an unchanged view, e.g. an expose, costs a blit)."""
        visible = self.visibleRegion().boundingRect()
        if visible.isEmpty() or not visible.contains(event.rect()):
            visible = event.rect()
        dpr = self.devicePixelRatioF()
        key = (self._version, self.hover, self.hover_side, frozenset(self.highlight), self.min_weight,
               self.width(), self.height(), dpr)
        if self._cache is None or key != self._cache_key or not self._cache_rect.contains(event.rect()):
            pix = QPixmap(visible.size() * dpr)
            pix.setDevicePixelRatio(dpr)
            q = QPainter(pix)
            q.translate(-visible.topLeft())
            # An explicit clip is also ~10x faster for Qt's raster engine on long lines (measured: 2,500 lines
            # of 500+ px in 13 ms with it, 130 ms without), with the same pixels.
            q.setClipRect(visible)
            self.paint(q, QRectF(visible))
            q.end()
            self._cache, self._cache_key, self._cache_rect = pix, key, QRect(visible)
        p = QPainter(self)
        r = event.rect()
        src = r.translated(-self._cache_rect.topLeft())
        p.drawPixmap(QRectF(r), self._cache, QRectF(src.x() * dpr, src.y() * dpr, src.width() * dpr, src.height() * dpr))
        p.end()

    def paint(self, p: QPainter, clip: QRectF | None = None) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.fillRect(self.rect(), QColor("white"))
        p.setFont(self._font)
        n = len(self.labels)
        x_left = 10
        x_l_end = x_left + self._label_w
        x_right = x_l_end + self.gap()
        p.setPen(QColor("#222"))
        bold = QFont(self._font)
        bold.setBold(True)
        p.setFont(bold)
        p.drawText(QRectF(x_left, 2, max(self.width(), 400) - 20, 16), Qt.AlignmentFlag.AlignLeft, self.title)
        p.setFont(self._font)
        p.setPen(QColor("#666"))
        p.drawText(QRectF(x_left, 17, self._label_w + 60, 14), Qt.AlignmentFlag.AlignLeft, "attending")
        p.drawText(QRectF(x_right, 17, self._label_w + 60, 14), Qt.AlignmentFlag.AlignLeft, "attended to")
        if n == 0 or self.maps.size == 0:
            return
        top = 0 if clip is None else max(0, int((clip.top() - 34) // self.ROW) - 1)
        bottom = n if clip is None else min(n, int((clip.bottom() - 34) // self.ROW) + 2)
        # Lines: every head in its colour, opacity = weight. Hovering isolates one token's lines.
        n_heads = self.maps.shape[0]
        scale = 1.0 if n_heads == 1 else 1.6
        mask = self.maps >= self.min_weight  # [head, query, key]
        if self.keep is not None:
            mask &= self.keep
        if self.hover >= 0:
            if self.hover_side == "left":
                mask[:, np.arange(n) != self.hover, :] = False
            else:
                mask[:, :, np.arange(n) != self.hover] = False
        else:
            # Only links with an end in the visible rows (a long view paints what is on screen).
            rows = np.zeros(n, bool)
            rows[top:bottom] = True
            mask &= rows[None, :, None] | rows[None, None, :]
        hs, qs, ks = np.nonzero(mask)  # head-major, as each head is drawn over the one before
        w = self.maps[hs, qs, ks]
        if len(w) > self.MAX_LINES:  # keep the strongest links overall; the rest are invisible anyway
            cut = np.partition(w, len(w) - self.MAX_LINES)[len(w) - self.MAX_LINES]
            strong = w >= cut
            hs, qs, ks, w = hs[strong], qs[strong], ks[strong], w[strong]
        total = len(w)
        # Antialiased lines cost ~2x more in Qt's raster engine (with the clip set): only for a few lines.
        p.setRenderHint(QPainter.RenderHint.Antialiasing, total <= 600)
        width = 2.0 if self.hover >= 0 else (1.5 if total <= 600 else 1.0)
        levels = np.clip(np.ceil(np.minimum(1.0, w * scale) * 16), 1, 16).astype(int)  # 16 opacity steps
        # One drawLines per head and opacity step, from one array laid out as QLineF's (x1, y1, x2, y2) doubles:
        # Qt reads the lines in place (building a QLineF object per line cost as much as drawing it).
        order = np.lexsort((levels, hs))  # stable: head by head, faint to strong, each in row order
        hs, qs, ks, levels = hs[order], qs[order], ks[order], levels[order]
        lines = np.empty((total, 4), dtype=np.float64)  # [line, (x1, y1, x2, y2)]
        lines[:, 0] = x_l_end + 2
        lines[:, 1] = 34 + self.ROW / 2 + self.ROW * qs  # row_y, vectorised
        lines[:, 2] = x_right - 2
        lines[:, 3] = 34 + self.ROW / 2 + self.ROW * ks
        starts = np.flatnonzero(np.r_[True, (hs[1:] != hs[:-1]) | (levels[1:] != levels[:-1])])[:total]
        for lo, hi in zip(starts, [*starts[1:], total], strict=False):
            h = int(hs[lo])
            c = QColor(HEAD_COLORS[self.heads[h] % len(HEAD_COLORS)] if n_heads > 1 else "#1f5fbf")
            c.setAlphaF(int(levels[lo]) / 16)
            p.setPen(QPen(c, width))
            p.drawLines(shiboken6.wrapInstance(lines[lo:].ctypes.data, QLineF), int(hi - lo))
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        # Token labels on both sides, coloured by segment; the hovered token and search hits highlighted.
        fm = QFontMetrics(self._font)
        for i in range(top, bottom):
            y = 34 + i * self.ROW
            seg = self.segments[i] if i < len(self.segments) else 0
            bg = QColor(SEGMENT_COLORS[seg % 2])
            for side, x in (("left", x_left), ("right", x_right)):
                r = QRectF(x, y + 1, self._label_w, self.ROW - 2)
                fill = bg
                if i == self.hover and side == self.hover_side:
                    fill = QColor("#ffd54f")
                elif i in self.highlight:
                    fill = QColor("#c8e6c9")
                p.fillRect(r, fill)
                p.setPen(QColor("#111"))
                align = Qt.AlignmentFlag.AlignRight if side == "left" else Qt.AlignmentFlag.AlignLeft
                text = fm.elidedText(self.labels[i], Qt.TextElideMode.ElideRight, int(self._label_w - 6))
                p.drawText(r.adjusted(3, 0, -3, 0), align | Qt.AlignmentFlag.AlignVCenter, text)

    # ------------------------------------------------------------ export

    def export(self, path: str | os.PathLike) -> Path:
        """Write the view as .png (2x) or .svg, atomically."""
        from PySide6.QtGui import QImage

        path = Path(path)
        suffix = path.suffix.lower()
        size = self.sizeHint().expandedTo(QSize(self.width(), 0))
        if suffix not in (".png", ".svg"):
            raise ValueError(f"The head view exports .png or .svg, not '{suffix}'.")
        with atomic_path(path) as tmp:
            if suffix == ".png":
                img = QImage(size * 2, QImage.Format.Format_ARGB32)
                img.fill(QColor("white"))
                p = QPainter(img)
                p.scale(2, 2)
                p.setClipRect(QRect(0, 0, size.width(), size.height()))  # the raster engine's fast path
                self.paint(p)
                p.end()
                if not img.save(str(tmp), "PNG"):
                    raise OSError(f"could not write {path}")
            else:
                from PySide6.QtSvg import QSvgGenerator

                gen = QSvgGenerator()
                gen.setFileName(str(tmp))
                gen.setSize(size)
                gen.setViewBox(QRectF(0, 0, size.width(), size.height()))
                gen.setTitle(self.title)
                p = QPainter(gen)
                self.paint(p)
                p.end()
        return path
