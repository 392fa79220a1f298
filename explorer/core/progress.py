"""The ``progress`` / ``cancel`` protocol every long core function takes (Orange3's ``run(..., state)``)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from explorer.core.errors import Cancelled

#: progress(fraction in [0, 1], short message)
Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str = "") -> None:
    """Default progress callback: ignore reports."""


def check(cancel: threading.Event | None) -> None:
    """Raise :class:`Cancelled` when the user asked to stop."""
    if cancel is not None and cancel.is_set():
        raise Cancelled()
