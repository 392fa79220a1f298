"""A grey veil with "stale: press F5" over a view whose inputs changed since it was computed, so an old model's
drawing is never read as the new one's. The pointer passes through it (hover readouts still work)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QLabel, QWidget

STALE_TEXT = "stale: press F5"


class StaleVeil(QLabel):
    """Covers ``target`` (as its child) while shown; follows its size."""

    def __init__(self, target: QWidget, text: str = STALE_TEXT) -> None:
        super().__init__(text, target)
        self.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.setStyleSheet("background: rgba(245, 245, 245, 175); color: #444; font-weight: 600; padding-top: 8px;")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setToolTip("The text, model or settings changed since this was computed: press F5 (or the panel's "
                        "button) to compute it again.")
        self.hide()
        target.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt naming
        if event.type() == QEvent.Type.Resize and obj is self.parentWidget():
            self.setGeometry(obj.rect())
        return False

    def set_stale(self, stale: bool) -> None:
        if stale:
            self.setGeometry(self.parentWidget().rect())
            self.raise_()
        self.setVisible(stale)
