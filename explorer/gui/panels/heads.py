"""Heads & fine-tuning panel."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from explorer.gui.panels.base import Panel


class HeadsPanel(Panel):
    key = "heads"
    title = "Heads & fine-tuning"
    summary = "Task heads on a pre-trained model, and fine-tuning them frozen, fully, or with adapters."

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        label = QLabel(f"<h2>{self.title}</h2><p>{self.summary}</p>")
        label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addStretch(1)
