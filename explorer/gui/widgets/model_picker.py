"""A combo box of the loaded models a panel can use, kept in step with the model store."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QWidget


def short_name(name: str) -> str:
    """What the box shows for a model: a catalogue name as is, a folder by its own name (the full path is the
    item's tooltip), so a fine-tuned model never reads as a path cut off mid-name."""
    if "/" in name or "\\" in name:
        path = Path(name)
        if path.is_absolute() or path.exists():
            return path.name or name
    return name


class ModelPicker(QComboBox):
    """Lists loaded models filtered by kind/head; says what to do when none fits."""

    modelChanged = Signal(str)

    def __init__(self, ctx, kinds: tuple[str, ...] | None = None, heads: tuple[str, ...] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx, self.kinds, self.heads = ctx, kinds, heads
        self.setMinimumContentsLength(14)
        # The box keeps its width whatever is loaded: a long name never widens the window.
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setToolTip("Models loaded in the Models panel")
        # The model asked for (a restored session, a preset) until it is loaded or the user picks another: models
        # load one by one, and the first to arrive must not take its place for good.
        self._wanted: str | None = None
        ctx.models.changed.connect(self.refresh)
        self.currentIndexChanged.connect(self._emit)
        self.activated.connect(self._user_chose)
        self.refresh()

    def _user_chose(self, _index: int) -> None:
        self._wanted = None

    def chosen_name(self) -> str | None:
        """The model this picker stands for: the one asked for while it still loads, else the one shown."""
        return self._wanted or self.current_name()

    def refresh(self) -> None:
        names = self.ctx.models.names(self.kinds, self.heads)
        wanted = self._wanted if self._wanted in names else None
        current = wanted or self.current_name() or self._wanted
        if wanted:
            self._wanted = None  # arrived: from now on the box follows the user
        self.blockSignals(True)
        self.clear()
        if names:
            for name in names:
                self.addItem(short_name(name), name)
                self.setItemData(self.count() - 1, name, Qt.ItemDataRole.ToolTipRole)
            self.setEnabled(True)
        else:
            self.addItem("(no model loaded)")
            self.setEnabled(False)
        if current in names:
            self.setCurrentIndex(names.index(current))
        self.blockSignals(False)
        if self.current_name() != current:
            self._emit()

    def current_name(self) -> str | None:
        return self.currentData() if self.isEnabled() and self.count() else None

    def current_model(self):
        return self.ctx.models.get(self.current_name())

    def select(self, name: str) -> None:
        i = self.findData(name)
        self._wanted = None if i >= 0 else name
        if i >= 0:
            self.setCurrentIndex(i)

    def _emit(self, *_args) -> None:
        self.modelChanged.emit(self.current_name() or "")
