"""Live views redrawn at most once per screen frame: a job reporting faster than the screen refreshes (a
training round, a progress message) costs one redraw per frame, not one per report."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QGuiApplication


def frame_ms() -> int:
    """One frame of the primary screen in milliseconds (16 at 60 Hz; 60 Hz when the screen does not say)."""
    screen = QGuiApplication.primaryScreen()
    rate = screen.refreshRate() if screen is not None else 0.0
    return max(1, round(1000 / (rate if rate >= 1 else 60.0)))


class FrameCoalescer(QObject):
    """Runs the latest drawing asked under each key at the next frame; earlier ones of the frame are dropped.

    ``request(key, draw)`` keeps ``draw`` until the frame's timer fires (a new request for the same key
    replaces it). ``drop()`` forgets what is pending: a job's final result draws itself at once, and a
    pending live frame must not paint an older state over it.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pending: dict[str, Callable[[], None]] = {}
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self.flush)

    def request(self, key: str, draw: Callable[[], None]) -> None:
        self._pending[key] = draw
        if not self._timer.isActive():
            self._timer.start(frame_ms())

    def pending(self) -> bool:
        return bool(self._pending)

    def flush(self) -> None:
        """Draw what is pending now, in the order first asked."""
        self._timer.stop()
        pending, self._pending = self._pending, {}
        for draw in pending.values():
            draw()

    def drop(self, key: str | None = None) -> None:
        """Forget the pending drawing under ``key`` (all of them without a key)."""
        if key is None:
            self._pending = {}
        else:
            self._pending.pop(key, None)
        if not self._pending:
            self._timer.stop()
