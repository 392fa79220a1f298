"""The "Find token…" box: the tokens whose text or whole word holds the typed text, stepped through in turn."""

from __future__ import annotations

from PySide6.QtWidgets import QLineEdit, QWidget


class TokenSearch(QLineEdit):
    """A search field that keeps its matches (``hits``, token positions) and where it stands among them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText("Find token…")
        self.setMaximumWidth(130)
        self.hits: list[int] = []
        self.pos = -1

    def forget(self) -> None:
        """No matches (the text or the tokens changed)."""
        self.hits = []
        self.pos = -1

    def find(self, labels: list[str], words: list[str]) -> None:
        """Match the typed text in each token's label (a WordPiece '##' ignored) or its whole word."""
        q = self.text().strip().lower()
        self.hits = [i for i, (lab, w) in enumerate(zip(labels, words, strict=True))
                     if q in lab.lower().lstrip("#") or q in w.lower()]
        self.pos = -1

    def next_hit(self) -> int | None:
        """The next match's token position (wrapping round), or None when nothing matches."""
        if not self.hits:
            return None
        self.pos = (self.pos + 1) % len(self.hits)
        return self.hits[self.pos]
