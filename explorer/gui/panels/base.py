"""The panel base class: a title, a small saved state, and "export all charts" to a folder."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QPushButton, QWidget

from explorer import __version__
from explorer.core.io.fileio import ExportFolder, atomic_write_text, finite_data
from explorer.core.io.session import check_settings
from explorer.gui.widgets.chart import ChartWidget, slug


def state_to_dict(state: Any) -> dict:
    return asdict(state) if is_dataclass(state) else dict(state or {})


def state_from_dict(cls: type, data: dict | None) -> Any:
    """Build a state dataclass from saved data, ignoring unknown or mistyped keys (old sessions)."""
    obj = cls()
    for f in fields(cls):
        if data and f.name in data:
            value = data[f.name]
            default = getattr(obj, f.name)
            if default is None or isinstance(value, type(default)) or (isinstance(default, float) and isinstance(value, int)):
                setattr(obj, f.name, value)
    return obj


def is_saved_rows(value: list, widths: tuple[int, ...], numbers: tuple[int, ...] = ()) -> bool:
    """Whether saved table rows are lists of ``widths`` cells, each a text (or, in the columns ``numbers``, a text
    or a whole number)."""
    return all(isinstance(row, list) and len(row) in widths
               and all(isinstance(c, str) or (i in numbers and isinstance(c, int) and not isinstance(c, bool))
                       for i, c in enumerate(row)) for row in value)


def is_saved_example(value: dict) -> bool:
    """Whether a saved example is an object of texts or numbers, with ``answers`` a list of texts."""
    return all(isinstance(v, list) and all(isinstance(a, str) for a in v) if k == "answers"
               else isinstance(v, (str, int, float)) and not isinstance(v, bool) for k, v in value.items())


class ViewPart:
    """A name of a panel that belongs to one of its views (a widget, a value or a method): reading, calling or
    replacing it on the panel reaches the view's own, so the window and scripts keep one address for it."""

    def __init__(self, view: str, attr: str = "") -> None:
        self.view = view
        self.attr = attr  # the view's name for it, when not the panel's

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = self.attr or name

    def __get__(self, panel: Any, owner: type | None = None) -> Any:
        return self if panel is None else getattr(getattr(panel, self.view), self.attr)

    def __set__(self, panel: Any, value: Any) -> None:
        setattr(getattr(panel, self.view), self.attr, value)


def view_parts(**views: tuple[str, ...]) -> Callable[[type], type]:
    """Class decorator: ``@view_parts(lab=("train", "ft_note"))`` makes ``panel.train`` the lab's ``train``;
    ``"_hits:hits"`` names the view's ``hits`` ``panel._hits``."""

    def decorate(cls: type) -> type:
        for view, names in views.items():
            for spec in names:
                name, _colon, attr = spec.partition(":")
                part = ViewPart(view, attr)
                part.__set_name__(cls, name)
                setattr(cls, name, part)
        return cls

    return decorate


class Panel(QWidget):
    """One lecture area. Subclasses set ``key``/``title``/``summary`` and may override the state methods."""

    key = "panel"
    title = "Panel"
    summary = ""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx

    def state_dict(self) -> dict:
        """Settings and inputs to save in the session and beside exported charts."""
        return {}

    def restore_state(self, data: dict) -> None:
        """Apply what :meth:`state_dict` returned in an earlier session."""

    # The dataclass of the saved settings (its defaults give each field's shape), and checks for what a shape alone
    # does not say (field -> callable on the saved value).
    state_class: type | None = None
    setting_checks: dict[str, Callable[[Any], bool]] = {}

    def apply_state(self, data: dict) -> list[str]:
        """Restore saved settings field by field: a field of the wrong shape, or one the panel cannot take, starts
        from its default alone and the others are kept. Returns a note per field reset (empty when all were used).
        Raises only when the panel cannot take even the fields that fit (the window then resets the panel)."""
        defaults = asdict(self.state_class()) if self.state_class is not None else {}
        usable, notes = check_settings(defaults, data, self.setting_checks)
        try:
            self.restore_state(usable)
        except Exception:  # noqa: BLE001 - find the field the panel cannot take: each field alone, then the rest
            bad = []
            for key in list(usable):
                try:
                    self.restore_state({key: usable[key]})
                except Exception:  # noqa: BLE001 - this field is the one
                    bad.append(key)
            notes += [f"{key} ({type(usable.pop(key)).__name__})" for key in bad]
            self.restore_state(usable)
        return notes

    # The buttons that run a panel or one of its tabs, in the order F5 prefers them.
    PRIMARY_BUTTONS = ("run_button", "train_button", "sweep_button", "corpus_button", "compare_button")

    def primary_button(self) -> QPushButton | None:
        """The button that runs what the user sees (F5 / Ctrl+Return press it): the shown tab's, so a key press on
        the fine-tune lab trains rather than running the hidden "Run a head" tab."""
        buttons = [b for b in (getattr(self, name, None) for name in self.PRIMARY_BUTTONS) if isinstance(b, QPushButton)]
        return next((b for b in buttons if b.isVisible()), buttons[0] if buttons else None)

    def charts(self) -> list[ChartWidget]:
        return [c for c in self.findChildren(ChartWidget) if c.spec is not None]

    def export_all(self, folder: str | Path) -> list[Path]:
        """Write every chart as PNG, SVG and CSV plus ``settings.json`` with the inputs that made them. A file there
        that an export did not write is never overwritten: the new one gets a free name (``settings-2.json``)."""
        target = ExportFolder(folder)
        written: list[Path] = []
        used: set[str] = set()
        charts_meta = []
        for i, chart in enumerate(self.charts()):
            name = slug(chart.spec.title) or f"chart-{i + 1}"
            while name in used:
                name += f"-{i + 1}"
            used.add(name)
            files = {}
            for suffix in (".png", ".svg", ".csv"):
                path = chart.export(target.target(f"{name}{suffix}"))
                target.record(path)
                written.append(path)
                files[suffix[1:]] = path.name
            charts_meta.append({"name": name, "title": chart.spec.title, "meta": chart.spec.meta, "files": files})
        settings = {
            "app": f"lm-explorer {__version__}",
            "panel": self.key,
            "exported_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "state": self.state_dict(),
            "text": self.ctx.text.text(),
            "models": {n: lm.card.to_dict() for n, lm in self.ctx.models.loaded.items()},
            "charts": charts_meta,
        }
        path = target.target("settings.json")
        atomic_write_text(path, json.dumps(finite_data(settings), ensure_ascii=False, indent=1, default=str,
                                           allow_nan=False))
        target.record(path)
        written.append(path)
        target.save()
        self.export_note = ""
        if target.renamed:
            kept = ", ".join(old for old, _new in target.renamed[:3])
            self.export_note = (f"{Path(folder)} already held {kept}{' …' if len(target.renamed) > 3 else ''}, not "
                                "written by an export: kept, and the new files got free names "
                                f"({', '.join(new for _old, new in target.renamed[:3])}).")
        return written
