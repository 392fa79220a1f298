"""The fine-tune lab's drop target: a page that takes a dragged CSV / TSV / JSONL file."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QWidget

DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".ndjson")


class DataDrop(QWidget):
    """The fine-tune lab's page: accepts a dragged CSV/TSV/JSONL file."""

    def __init__(self, on_file: Callable[[str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._on_file = on_file
        self.setAcceptDrops(True)

    def _paths(self, event) -> list[str]:
        md = event.mimeData()
        return [u.toLocalFile() for u in md.urls() if u.toLocalFile().lower().endswith(DATA_SUFFIXES)] if md.hasUrls() else []

    def dragEnterEvent(self, event) -> None:
        if self._paths(event):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if self._paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = self._paths(event)
        if paths:
            event.acceptProposedAction()
            self._on_file(paths[0])
