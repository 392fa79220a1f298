"""Read an exported chart SVG back into data coordinates by its own axes: the tick marks and their printed
values, not the app's view transform. A point drawn on another scale than its axes reads back wrong."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NS = "{http://www.w3.org/2000/svg}"
_NUMBER = re.compile(r"^[−-]?\d+(\.\d+)?$")


def _matrix(g: ET.Element) -> tuple[float, ...]:
    m = re.search(r"matrix\(([^)]*)\)", g.get("transform", ""))
    return tuple(float(v) for v in m.group(1).split(",")) if m else (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def _apply(m: tuple[float, ...], x: float, y: float) -> tuple[float, float]:
    return m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5]


@dataclass
class SvgChart:
    texts: list[tuple[str, float, float]] = field(default_factory=list)  # (text, scene x, scene baseline y)
    h_ticks: list[tuple[float, float]] = field(default_factory=list)  # left axis marks: (scene x, scene y)
    v_ticks: list[tuple[float, float]] = field(default_factory=list)  # bottom axis marks: (scene x, scene y)
    paths: list[tuple[str, bool, list[tuple[float, float]]]] = field(default_factory=list)  # (stroke, dashed, pts)

    def _fit(self, pairs: list[tuple[float, float]]) -> tuple[float, float]:
        v = np.array([p[0] for p in pairs])
        s = np.array([p[1] for p in pairs])
        a, b = np.polyfit(v, s, 1)
        assert np.abs(a * v + b - s).max() < 0.5, f"the axis's own ticks are not evenly spaced: {pairs}"
        return float(a), float(b)

    def y_axis(self) -> tuple[float, float]:
        """(pixels per unit, pixel of 0) of the left axis, from its major tick marks and their labels."""
        pairs = []
        for tx, ty in self.h_ticks:
            near = [(abs(y - ty), t) for t, x, y in self.texts if x < tx and 0 <= y - ty <= 15 and _NUMBER.match(t)]
            if near:
                pairs.append((float(min(near)[1].replace("−", "-")), ty))
        assert len(pairs) >= 2, "fewer than two labelled ticks on the left axis"
        return self._fit(pairs)

    def x_axis(self) -> tuple[float, float]:
        """(pixels per unit, pixel of 0) of the bottom axis."""
        pairs = []
        for tx, ty in self.v_ticks:
            near = [(tx - x, t) for t, x, y in self.texts if 0 < tx - x <= 30 and 0 < y - ty <= 30 and _NUMBER.match(t)]
            if near:
                pairs.append((float(min(near)[1].replace("−", "-")), tx))
        assert len(pairs) >= 2, "fewer than two labelled ticks on the bottom axis"
        return self._fit(pairs)

    def series_points(self, stroke: str, n: int, nth: int = 0) -> list[tuple[float, float]]:
        """The vertices of the ``nth`` line of ``n`` points drawn in ``stroke`` ("#ff7f0e"), in drawing order, in
        the axes' data units."""
        lines = [pts for s, _d, pts in self.paths if s.lower() == stroke.lower() and len(pts) == n]
        assert len(lines) > nth, f"no line {nth} of {n} points drawn in {stroke}"
        (ax, bx), (ay, by) = self.x_axis(), self.y_axis()
        return [((x - bx) / ax, (y - by) / ay) for x, y in lines[nth]]

    def y_pixels_per_unit(self) -> float:
        return abs(self.y_axis()[0])


def read_svg_chart(path: str | Path) -> SvgChart:
    """Parse a chart exported by QSvgGenerator (flat groups, each with its own matrix)."""
    out = SvgChart()
    for g in ET.parse(path).getroot().iter(NS + "g"):
        m = _matrix(g)
        for child in g:
            if child.tag == NS + "text" and child.text:
                out.texts.append((child.text.strip(), *_apply(m, float(child.get("x")), float(child.get("y")))))
            elif child.tag == NS + "polyline":
                raw = [tuple(float(v) for v in p.split(",")) for p in child.get("points").split()]
                if len(raw) != 2:
                    continue
                (x1, y1), (x2, y2) = (_apply(m, *p) for p in raw)
                if abs(y1 - y2) < 1e-6 and abs(abs(x2 - x1) - 5) < 0.01:
                    out.h_ticks.append((max(x1, x2), y1))
                elif abs(x1 - x2) < 1e-6 and abs(abs(y2 - y1) - 5) < 0.01:
                    out.v_ticks.append((x1, min(y1, y2)))
            elif child.tag == NS + "path":
                d = child.get("d", "")
                if not re.fullmatch(r"M[-\d.e,]+( L[-\d.e,]+)+", d.strip()):
                    continue
                pts = [_apply(m, *(float(v) for v in p[1:].split(","))) for p in d.split()]
                out.paths.append((g.get("stroke", ""), g.get("stroke-dasharray") is not None, pts))
    return out
