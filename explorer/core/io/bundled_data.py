"""The data sets the project ships (resources/data), named by a short name wherever a command takes data.

``--data sentiment`` works the same from a checkout, a wheel and the bundle, where a checkout's path such as
``resources/data/sentiment.csv`` does not exist. One resolver, used by finetune, evaluate, prompt and sweep.
"""

from __future__ import annotations

import os
from pathlib import Path

from explorer.core.io.errors import InputError
from explorer.core.io.paths import resources_dir

DATA_SUFFIXES = (".csv", ".tsv", ".jsonl")


def bundled_sets() -> list[str]:
    """Names of the data sets the project ships: dates, dates-test, entailment, ner, qa, qa-test, sentiment."""
    folder = resources_dir() / "data"
    return sorted(p.stem for p in folder.iterdir() if p.suffix in DATA_SUFFIXES) if folder.is_dir() else []


def bundled_path(name: str) -> Path | None:
    """The bundled file called ``name`` (``qa`` or ``qa.jsonl``), or None when the project ships no such set."""
    if not name or os.sep in name or "/" in name or name in (".", ".."):
        return None
    folder = resources_dir() / "data"
    for candidate in (name, *(name + s for s in DATA_SUFFIXES)):
        path = folder / candidate
        if path.suffix in DATA_SUFFIXES and path.is_file():
            return path
    return None


def resolve_data(spec: str | os.PathLike) -> Path:
    """A data file: the file when it exists, else the bundled set of that name (``qa`` → resources/data/qa.jsonl;
    a bare file name such as ``sentiment.csv`` too). Neither: an InputError naming the bundled sets."""
    text = os.fspath(spec)
    path = Path(text).expanduser()
    if text and path.exists() and not path.is_dir():
        return path
    bundled = bundled_path(text)
    if bundled is not None:  # also past a folder of that name, e.g. a fine-tune saved as `--out qa`
        return bundled
    if text and path.is_dir():
        raise InputError(f"{text} is a folder; give a data file (CSV, TSV or JSONL) or a bundled set's name.")
    raise InputError(f"No data file '{text}', and no bundled set of that name "
                     f"(bundled: {', '.join(bundled_sets())}).")
