"""The last session (texts, files, loaded models, panel states, window layout) as one JSON file,
written atomically on every change so a crash or kill -9 loses nothing.

A session that cannot be used (not JSON, not an object, a field of the wrong type) is moved aside to a
timestamped backup (``session.broken-YYYYmmdd-HHMMSS.json``, never overwriting an earlier one) and the app
starts with defaults, saying where the old file went.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from explorer.core.io import paths
from explorer.core.io.fileio import atomic_write_text, move_aside

log = logging.getLogger(__name__)
VERSION = 1
MAX_SESSION_BYTES = 64 * 1024 * 1024  # a session holds the text box; anything much larger is not ours


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# field -> (check, what it must be); fields not listed are kept as they are (newer versions may add some).
SCHEMA: dict[str, tuple[Any, str]] = {
    "version": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    "text": (lambda v: isinstance(v, str), "a string"),
    "files": (_str_list, "a list of file paths"),
    "models": (_str_list, "a list of model names"),
    "panel": (lambda v: isinstance(v, str), "a panel name"),
    "geometry": (lambda v: isinstance(v, str), "a string"),
    "window_state": (lambda v: isinstance(v, str), "a string"),
    "panels": (lambda v: isinstance(v, dict) and all(isinstance(s, dict) for s in v.values()),
               "an object of panel states"),
}


def session_path() -> Path:
    return paths.data_dir() / "session.json"


def validate_session(data: Any) -> str:
    """'' when ``data`` is a usable session; else what is wrong with it, in words."""
    if not isinstance(data, dict):
        return f"it holds a JSON {type(data).__name__.replace('dict', 'object')}, not an object"
    for key, (ok, what) in SCHEMA.items():
        if key in data and not ok(data[key]):
            return f"'{key}' is {json.dumps(data[key])[:40]}, not {what}"
    return ""


def read_session() -> tuple[dict[str, Any], str]:
    """(the saved session or {}, a note for the user when the file was unusable and moved aside)."""
    path = session_path()
    try:
        if path.stat().st_size > MAX_SESSION_BYTES:
            problem = f"it is {path.stat().st_size / 1e6:.0f} MB"
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
            problem = validate_session(data)
            if not problem:
                return data, ""
    except FileNotFoundError:
        return {}, ""
    except (OSError, ValueError) as err:
        problem = f"it is not readable JSON ({str(err)[:80]})"
    log.warning("ignoring unusable session %s: %s", path, problem)
    # Keep the broken file for the user under a new name; never overwrite an earlier backup.
    backup = move_aside(path)
    where = f"it was kept as {backup}" if backup else "it was left in place"
    return {}, f"The last session could not be used ({problem}); {where}. Starting with a fresh session."


def load_session() -> dict[str, Any]:
    """The saved session, or an empty one when there is none or it cannot be used (see :func:`read_session`)."""
    return read_session()[0]


def save_session(state: dict[str, Any]) -> None:
    atomic_write_text(session_path(), json.dumps({"version": VERSION, **state}, ensure_ascii=False, indent=1))
