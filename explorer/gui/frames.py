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
    """Runs the latest drawing asked under each key once its interval is up; earlier ones are dropped.

    ``request(key, draw)`` keeps ``draw`` until the key's timer fires: one screen frame, or the key's own interval
    from ``intervals`` (a progress text changing more than ten times a second cannot be read, and every redraw
    while a model runs takes the CPU and the GIL from it). A new request for the same key replaces the pending
    one. ``drop()`` forgets what is pending: a job's final result draws itself at once, and a pending live frame
    must not paint an older state over it.
    """

    def __init__(self, parent: QObject | None = None, intervals: dict[str, int] | None = None) -> None:
        super().__init__(parent)
        self._intervals = dict(intervals or {})
        self._pending: dict[str, Callable[[], None]] = {}
        self._timers: dict[str, QTimer] = {}

    def request(self, key: str, draw: Callable[[], None]) -> None:
        self._pending[key] = draw
        timer = self._timers.get(key)
        if timer is None:
            timer = self._timers[key] = QTimer(self, singleShot=True)
            timer.timeout.connect(lambda k=key: self._fire(k))
        if not timer.isActive():
            timer.start(self._intervals.get(key, frame_ms()))

    def _fire(self, key: str) -> None:
        draw = self._pending.pop(key, None)
        if draw is not None:
            draw()

    def pending(self) -> bool:
        return bool(self._pending)

    def flush(self) -> None:
        """Draw what is pending now, in the order first asked."""
        for timer in self._timers.values():
            timer.stop()
        pending, self._pending = self._pending, {}
        for draw in pending.values():
            draw()

    def drop(self, key: str | None = None) -> None:
        """Forget the pending drawing under ``key`` (all of them without a key)."""
        for k in list(self._pending) if key is None else [key]:
            self._pending.pop(k, None)
            if k in self._timers:
                self._timers[k].stop()
