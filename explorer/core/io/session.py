"""The last session (texts, files, loaded models, panel states, window layout) as one JSON file,
written atomically on every change so a crash or kill -9 loses nothing.

A session that cannot be used at all (not JSON, not an object, over the size limit) is moved aside to a
timestamped backup (``session.broken-YYYYmmdd-HHMMSS.json``, never overwriting an earlier one) and the app
starts with defaults, saying where the old file went. A single bad field is reset alone, with a note. Fields this
version does not know, and a newer version number, are kept on save (forward compatible).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from explorer.core.io import paths
from explorer.core.io.errors import InputError
from explorer.core.io.fileio import atomic_write_text, backup_name, finite_data, move_aside
from explorer.core.io.limits import MAX_SESSION_BYTES, first_long_line, read_json_file, too_long_to_show

log = logging.getLogger(__name__)
VERSION = 1


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


# A panel setting must fit the control it goes back into: Qt's spin boxes and indexes hold 32-bit numbers (a
# larger one raised OverflowError), a text box lays a line out whole (see limits.MAX_SHOWN_LINE), a table of
# saved rows is filled row by row.
MAX_SETTING_INT = 2**31 - 1
MAX_SETTING_ITEMS = 10_000


def _setting_fits(value: Any, default: Any) -> bool:
    """Whether a saved panel setting has the shape of its default (bool, whole number, number, text, list, object)
    and fits the control it is shown in."""
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if isinstance(default, int):
        return isinstance(value, int) and abs(value) <= MAX_SETTING_INT
    if isinstance(default, float):
        return isinstance(value, (int, float)) and abs(value) <= 1e15
    if isinstance(default, str):
        return isinstance(value, str) and not first_long_line(value)
    if isinstance(default, (list, dict)):
        return isinstance(value, type(default)) and len(value) <= MAX_SETTING_ITEMS
    return isinstance(value, type(default))


def _preview(value: Any) -> str:
    """A short picture of a saved value for a note (a huge one is never turned into text whole)."""
    if isinstance(value, str):
        return json.dumps(value[:24] + ("…" if len(value) > 24 else ""), ensure_ascii=False)
    if isinstance(value, list):
        return f"a list of {len(value):,}"
    if isinstance(value, dict):
        return f"an object of {len(value):,} fields"
    return json.dumps(value)[:30]


def check_settings(defaults: dict[str, Any], data: dict[str, Any],
                   checks: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """A panel's saved settings, field by field: (the fields that can be used, a note per field that cannot).

    A field fits when it has the shape of its default in ``defaults`` and passes its check in ``checks`` (a
    callable taking the value, for what the shape alone does not say: the rows of a table, a head's number). A
    field that does not fit is left out, so it alone starts from its default; fields not in ``defaults`` (a newer
    version's) are kept."""
    usable: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in data.items():
        fits = key not in defaults or _setting_fits(value, defaults[key])
        if fits and checks and key in checks:
            try:
                fits = bool(checks[key](value))
            except Exception:  # noqa: BLE001 - a check that cannot read the value has its answer
                fits = False
        if fits:
            usable[key] = value
        else:
            notes.append(f"{key} ({_preview(value)})")
    return usable, notes


def session_path() -> Path:
    return paths.data_dir() / "session.json"


# What the file held that this version does not write itself (fields of a newer version, its version number):
# written back unchanged on every save, so opening a newer session in an older app loses nothing.
_carried: dict[str, Any] = {}


def validate_session(data: Any) -> str:
    """'' when ``data`` can be used as a session at all (a JSON object); else what is wrong with it, in words.
    Single fields are checked by :func:`clean_session`."""
    if not isinstance(data, dict):
        return f"it holds a JSON {type(data).__name__.replace('dict', 'object')}, not an object"
    return ""


def clean_session(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The session with each unusable field left out (that field alone starts from its default), and a note per
    field. A panel whose saved state is not an object is left out alone; unknown fields stay."""
    clean: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in data.items():
        if key == "panels" and isinstance(value, dict):
            panels = {k: v for k, v in value.items() if isinstance(v, dict)}
            notes += [f"the settings of the panel '{str(k)[:30]}'" for k in value if k not in panels]
            clean[key] = panels
        elif key in SCHEMA and not SCHEMA[key][0](value):
            notes.append(f"'{key}' ({json.dumps(value, default=str)[:40]}, not {SCHEMA[key][1]})")
        else:
            clean[key] = value
    return clean, notes


def read_session() -> tuple[dict[str, Any], str]:
    """(the saved session or {}, a note for the user about anything that could not be used).

    Read through the limits (size, JSON depth, no NaN). A file that is not a JSON object at all is moved aside
    (never overwriting an earlier backup); a single bad field is reset alone, with a note."""
    global _carried
    path = session_path()
    try:
        data = read_json_file(path, MAX_SESSION_BYTES, "The session file")
    except InputError as err:
        if not path.exists():
            return {}, ""
        problem = str(err).rstrip(".")
    else:
        problem = validate_session(data)
        if not problem:
            clean, notes = clean_session(data)
            _carried = {k: v for k, v in clean.items() if k not in SCHEMA or k == "version"}
            note = ("Some saved settings could not be used and start from their defaults: " + "; ".join(notes[:4])
                    + ("; …" if len(notes) > 4 else "") + ".") if notes else ""
            long_text = _set_aside_long_text(clean, path)
            note = " ".join(n for n in (long_text, note) if n)
            if isinstance(data.get("version"), int) and data["version"] > VERSION:
                log.info("session written by a newer version (%s); its fields are kept", data["version"])
            return clean, note
    log.warning("ignoring unusable session %s: %s", path, problem)
    # Keep the broken file for the user under a new name; never overwrite an earlier backup.
    backup = move_aside(path)
    where = f"it was kept as {backup}" if backup else "it was left in place"
    return {}, f"The last session could not be used ({problem}); {where}. Starting with a fresh session."


def _set_aside_long_text(session: dict[str, Any], path: Path) -> str:
    """A saved text the window's text box cannot show (a line over its limit) is left out of ``session``, and the
    session file is first copied aside as it is, so the text is kept; a note saying where, or ''."""
    text = session.get("text")
    problem = too_long_to_show(text, "The last session's text") if isinstance(text, str) else ""
    if not problem:
        return ""
    del session["text"]
    copy = backup_name(path, "long-text")
    try:
        shutil.copyfile(path, copy)
    except OSError as err:
        log.warning("could not keep a copy of %s: %s", path, err)
        return f"{problem}. A copy of the session could not be kept ({err.strerror or err}); the text box starts empty."
    return f"{problem}; the session as it was is kept in {copy}. The text box starts empty."


def load_session() -> dict[str, Any]:
    """The saved session, or an empty one when there is none or it cannot be used (see :func:`read_session`)."""
    return read_session()[0]


def save_session(state: dict[str, Any]) -> None:
    """Write the session atomically: ``state`` over the fields carried from the file that was read (a newer
    version's fields and version number are kept)."""
    carried_version = _carried.get("version")
    version = max(VERSION, carried_version) if isinstance(carried_version, int) else VERSION
    body = {**_carried, **state, "version": version}
    atomic_write_text(session_path(), json.dumps(finite_data(body), ensure_ascii=False, indent=1, allow_nan=False))
