"""The last session (texts, files, loaded models, panel states, window layout) as one JSON file,
written atomically on every change so a crash or kill -9 loses nothing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from explorer.core import paths
from explorer.core.fileio import atomic_write_text

log = logging.getLogger(__name__)
VERSION = 1


def session_path() -> Path:
    return paths.data_dir() / "session.json"


def load_session() -> dict[str, Any]:
    """The saved session, or an empty one when there is none or it cannot be read."""
    path = session_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        log.warning("ignoring unreadable session %s: %s", path, err)
        # Keep the broken file for the user rather than overwrite it silently.
        try:
            path.replace(path.with_suffix(".broken.json"))
        except OSError:
            pass
        return {}
    return data if isinstance(data, dict) else {}


def save_session(state: dict[str, Any]) -> None:
    atomic_write_text(session_path(), json.dumps({"version": VERSION, **state}, ensure_ascii=False, indent=1))
