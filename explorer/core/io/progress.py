"""The ``progress`` / ``cancel`` protocol every long core function takes (Orange3's ``run(..., state)``)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from explorer.core.io.errors import Cancelled

#: progress(fraction in [0, 1], short message); fraction UNKNOWN for a phase whose length cannot be known
Progress = Callable[[float, str], None]

#: The fraction to report when a step's length cannot be known (one long library call): the window shows a
#: busy bar and the phase's name instead of a percentage that would sit still.
UNKNOWN = -1.0


def no_progress(fraction: float, message: str = "") -> None:
    """Default progress callback: ignore reports."""


def check(cancel: threading.Event | None) -> None:
    """Raise :class:`Cancelled` when the user asked to stop."""
    if cancel is not None and cancel.is_set():
        raise Cancelled()


def following(progress: Progress, start: float) -> Progress:
    """``progress`` for the phases after one that took the bar to ``start``: their fractions rescaled into
    [start, 1] (UNKNOWN passed on), so the bar never moves back. A first gemma3 load went 70% "Saving the
    converted model" then 30% "Loading the tokenizer"."""

    def report(fraction: float, message: str = "") -> None:
        progress(fraction if fraction < 0 else start + (1.0 - start) * fraction, message)

    return report
