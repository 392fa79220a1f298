"""Where the app keeps its cache, data and resources.

``LM_EXPLORER_HOME`` moves both cache and data; ``LM_EXPLORER_DATA_DIR`` moves only the data (tests use it
to start from an empty session while keeping the converted-model cache).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "lm-explorer"


def _home() -> Path | None:
    home = os.environ.get("LM_EXPLORER_HOME")
    return Path(home) if home else None


def cache_dir() -> Path:
    """Converted models and other rebuildable files."""
    home = _home()
    path = home / "cache" if home else Path(platformdirs.user_cache_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Session, settings and user-added model list."""
    override = os.environ.get("LM_EXPLORER_DATA_DIR")
    home = _home()
    if override:
        path = Path(override)
    else:
        path = home / "data" if home else Path(platformdirs.user_data_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def resources_dir() -> Path:
    """Sample texts, data sets and icons the project ships: the package ``explorer.resources``.

    Found through ``importlib.resources`` so a checkout, an editable install, a wheel and the PyInstaller bundle
    (which collects the folder as package data) all work from any working directory. In the repository the
    folder is the top-level ``resources/``; see ``explorer/__init__.py``.
    """
    from importlib.resources import files

    return Path(str(files("explorer.resources")))
