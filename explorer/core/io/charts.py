"""Charts as plain data: a core function returns a :class:`ChartSpec`, the window's ChartWidget draws it,
and the same spec exports its data to CSV/JSON without Qt (so the CLI and the window agree).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explorer.core.io.fileio import SafeCsvWriter, atomic_write_text, finite_data


@dataclass
class Series:
    """One line, set of bars or scatter cloud of an x/y chart."""

    name: str
    x: list[float]
    y: list[float]
    style: str = "line"  # "line" | "bar" | "scatter" | "step"
    color: str | None = None  # "#rrggbb"; None lets the widget pick from its palette
    dashed: bool = False
    hover: list[str] | None = None  # text shown when the pointer is on a point
    err_low: list[float] | None = None
    err_high: list[float] | None = None
    width: float = 2.0
    in_legend: bool = True  # False for the many thin lines a summary line already names (hover still tells)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class ChartSpec:
    """A whole chart: title, axes, and either x/y series or a heatmap matrix."""

    title: str
    kind: str = "xy"  # "xy" | "heatmap"
    x_label: str = ""
    y_label: str = ""
    series: list[Series] = field(default_factory=list)
    matrix: np.ndarray | None = None  # [row, col] for heatmaps
    row_labels: list[str] | None = None
    col_labels: list[str] | None = None
    value_range: tuple[float, float] | None = None
    colormap: str = "viridis"
    x_ticks: list[tuple[float, str]] | None = None  # (position, label); a heatmap's in column units (cell i: i+.5)
    y_ticks: list[tuple[float, str]] | None = None  # a heatmap's row ticks, in row units
    greyed: np.ndarray | None = None  # [row, col] bool: heatmap cells drawn grey (a causal mask's future)
    cell_values: bool = False  # a small heatmap prints each cell's value in it (a confusion matrix's counts)
    y_range: tuple[float, float] | None = None
    legend: bool = True
    meta: dict[str, Any] = field(default_factory=dict)  # the inputs and settings that made it
    log_x: bool = False  # x drawn on a log10 scale (values stay as they are in the data and exports)
    whole_x: bool = False  # x counts something (epochs, rounds, span lengths): ticks only at whole numbers
    note: str = ""  # what a reader must know to read the chart honestly; drawn under it and exported

    def to_dict(self) -> dict:
        out: dict[str, Any] = {
            "title": self.title,
            "kind": self.kind,
            "x_label": self.x_label,
            "y_label": self.y_label,
            "meta": self.meta,
        }
        if self.log_x:
            out["log_x"] = True
        if self.whole_x:
            out["whole_x"] = True
        if self.note:
            out["note"] = self.note
        if self.kind == "heatmap" and self.matrix is not None:
            out.update(
                matrix=np.asarray(self.matrix).tolist(),
                row_labels=self.row_labels,
                col_labels=self.col_labels,
            )
        else:
            out["series"] = [s.to_dict() for s in self.series]
        return out

    def to_csv(self) -> str:
        """Heatmap: a labelled matrix. x/y: one row per point (series, x, y[, err_low, err_high, hover])."""
        buf = io.StringIO()
        w = SafeCsvWriter(buf)  # labels come from the user's text: no cell may start a spreadsheet formula
        if self.kind == "heatmap" and self.matrix is not None:
            m = np.asarray(self.matrix)
            cols = self.col_labels or [str(i) for i in range(m.shape[1])]
            rows = self.row_labels or [str(i) for i in range(m.shape[0])]
            w.writerow([""] + list(cols))
            for label, row in zip(rows, m, strict=False):
                w.writerow([label] + [f"{v:.6g}" for v in row])
        else:
            has_err = any(s.err_low is not None for s in self.series)
            has_hover = any(s.hover for s in self.series)
            header = ["series", self.x_label or "x", self.y_label or "y"]
            header += ["err_low", "err_high"] if has_err else []
            header += ["label"] if has_hover else []
            w.writerow(header)
            for s in self.series:
                for i, (x, y) in enumerate(zip(s.x, s.y, strict=False)):
                    row = [s.name, f"{x:.6g}", f"{y:.6g}"]
                    if has_err:
                        row += [
                            "" if s.err_low is None else f"{s.err_low[i]:.6g}",
                            "" if s.err_high is None else f"{s.err_high[i]:.6g}",
                        ]
                    if has_hover:
                        row.append(s.hover[i] if s.hover else "")
                    w.writerow(row)
        return buf.getvalue()


def write_chart_data(spec: ChartSpec, path: str | os.PathLike) -> None:
    """Write the chart's data as CSV or JSON (by the file's suffix), atomically."""
    if str(path).lower().endswith(".json"):
        data = finite_data(spec.to_dict())  # strict JSON: a value that is not a finite number is null
        atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=1, allow_nan=False, default=str))
    else:
        atomic_write_text(path, spec.to_csv())
