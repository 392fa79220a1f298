"""Loaders of fine-tuned task folders (a folder without config.json, marked by a file of its own), keyed by that
file. The area that writes such folders (tuning) registers its loaders here, so the model loader finds them
without importing it; ``explorer.core`` registers them when it is imported."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from explorer.core.io.progress import Progress

# (entry, progress, cancel, start time) -> LoadedModel
FolderLoader = Callable[[Any, Progress, threading.Event | None, float], Any]

_LOADERS: dict[str, FolderLoader] = {}  # marker file -> loader, asked in the order registered


def register(marker: str, loader: FolderLoader) -> None:
    """Load every folder holding ``marker`` (and no config.json) with ``loader``."""
    _LOADERS[marker] = loader


def loader_for(folder: str | Path) -> FolderLoader | None:
    """The registered loader of a task folder, or None when no registered marker file is in it."""
    root = Path(folder)
    return next((loader for marker, loader in _LOADERS.items() if (root / marker).is_file()), None)
