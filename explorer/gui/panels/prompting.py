"""Prompting panel."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from explorer.gui.panels.base import Panel


class PromptingPanel(Panel):
    key = "prompting"
    title = "Prompting"
    summary = "GPT-3 style zero-, one- and few-shot prompts, generation, and accuracy against the number of examples."

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        label = QLabel(f"<h2>{self.title}</h2><p>{self.summary}</p>")
        label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addStretch(1)
