"""Masking & objectives panel."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from explorer.gui.panels.base import Panel


class MaskingPanel(Panel):
    key = "masking"
    title = "Masking & objectives"
    summary = "How pre-training corrupts a text: BERT masking (random, whole word, phrase/entity, SpanBERT spans) and the objectives of XLNet, BART/MASS, UniLM, ELECTRA and GPT."

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        label = QLabel(f"<h2>{self.title}</h2><p>{self.summary}</p>")
        label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addStretch(1)
