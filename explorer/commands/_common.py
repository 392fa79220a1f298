"""Helpers every subcommand shares: reading the text argument, loading a model, printing JSON."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from explorer.core.io.errors import InputError

SEED_MAX = 2**32 - 1  # numpy, torch and the window's spin boxes all take seeds in [0, 2**32)
EXPORT_SUFFIXES = (".png", ".svg", ".csv", ".json")


class CliParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line on stderr (``lm-explorer: …``), exit code 2.

    argparse prints the whole usage block before the error; a script or a person reads the one line better,
    and ``--help`` still shows the usage.
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        words = self.prog.split()  # a subcommand's prog is the root's usage line plus its name
        command = words[-1] if len(words) > 1 else ""
        where = f"{command}: " if command else ""
        from explorer.core.io.redaction import redact

        message = " ".join(redact(message).split())
        self.exit(2, f"lm-explorer: {where}{message}. See 'lm-explorer {command + ' ' if command else ''}--help'.\n")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _range_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    low = (f"above {_num(lo)}" if lo_open else f"from {_num(lo)}") if lo is not None else ""
    high = (f"below {_num(hi)}" if hi_open else f"at most {_num(hi)}") if hi is not None else ""
    if low and high:
        return f"{low} and {high}" if lo_open or hi_open else f"from {_num(lo)} to {_num(hi)}"
    if low:
        return low if lo_open else f"{_num(lo)} or more"
    return high


def finite_float(
    lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False
) -> Callable[[str], float]:
    """argparse ``type=`` for a float that must be finite (no nan/inf) and inside [lo, hi] (open ends optional)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        bad = not math.isfinite(value)
        bad = bad or (lo is not None and (value <= lo if lo_open else value < lo))
        bad = bad or (hi is not None and (value >= hi if hi_open else value > hi))
        if bad:
            raise argparse.ArgumentTypeError(
                f"must be a finite number {_range_text(lo, hi, lo_open, hi_open)}, not '{text}'"
            )
        return value

    parse.__name__ = "number"
    parse.bounds = ("float", lo, hi, lo_open, hi_open)  # type: ignore[attr-defined]
    return parse


def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """argparse ``type=`` for a whole number inside [lo, hi]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be a whole number {_range_text(lo, hi, False, False)}, not '{text}'")
        return value

    parse.__name__ = "whole number"
    parse.bounds = ("int", lo, hi, False, False)  # type: ignore[attr-defined]
    return parse


def add_seed_arg(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    parser.add_argument("--seed", type=int_range(0, SEED_MAX), default=0, help=help or f"random seed (0–{SEED_MAX})")


def export_path(text: str) -> str:
    """argparse ``type=`` for ``--export``: a file name ending in a format we write, in a folder that exists and
    is writable, checked before any model loads."""
    try:
        return _export_path(text)
    except OSError as err:  # a path the system refuses to look at (too long, a loop of links)
        raise argparse.ArgumentTypeError(f"'{_cut(text)}' cannot be used: {err.strerror or err}") from None


def _cut(text: str, n: int = 60) -> str:
    return text if len(text) <= n else f"{text[:n // 2]}…{text[-n // 2:]}"


# An export is written to a temporary name beside the file first (".NAME.xxxxxxxx"), 10 bytes longer than it.
_TEMP_EXTRA = 10


def _export_path(text: str) -> str:
    import os

    p = Path(text).expanduser()
    parent = p.parent if str(p.parent) else Path(".")
    try:
        name_max = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    size = len(os.fsencode(p.name))
    if size > name_max - _TEMP_EXTRA:
        raise argparse.ArgumentTypeError(
            f"the file name '{_cut(p.name)}' is {size} bytes long; this folder takes names of at most {name_max} "
            f"bytes, and an export needs {_TEMP_EXTRA} more for its temporary file: give a name of at most "
            f"{name_max - _TEMP_EXTRA} bytes")
    if p.is_dir() or text.endswith(("/", "\\")):
        raise argparse.ArgumentTypeError(f"'{text}' is a folder; give a file name such as {Path(text) / 'chart.png'}")
    suffix = p.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        what = f"'{suffix}'" if suffix else "no suffix"
        raise argparse.ArgumentTypeError(
            f"'{text}' has {what}: give a file ending in {', '.join(EXPORT_SUFFIXES)}"
        )
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"the folder {parent} is not writable")
    if p.exists() and not p.is_file():
        raise argparse.ArgumentTypeError(f"'{text}' exists and is not a regular file")
    return str(p)


def add_text_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """TEXT positional, or --file F; '-' reads standard input."""
    parser.add_argument("text", nargs="?", help="the text (or '-' for standard input)")
    parser.add_argument("--file", help="read the text from this file (encoding detected)")


def read_text(args: argparse.Namespace, required: bool = True) -> str:
    from explorer.core.io.fileio import read_text_file

    if getattr(args, "file", None):
        tf = read_text_file(args.file)
        if tf.note:
            print(f"lm-explorer: {tf.note}", file=sys.stderr)
        text = tf.text
    elif getattr(args, "text", None) == "-":
        from explorer.core.io.fileio import read_text_stream

        tf = read_text_stream(sys.stdin.buffer)
        if tf.note:
            print(f"lm-explorer: {tf.note}", file=sys.stderr)
        text = tf.text
    else:
        text = getattr(args, "text", None) or ""
    if required and not text.strip():
        raise InputError("The text is empty. Give a TEXT argument, --file FILE, or '-' for standard input.")
    return text


def stderr_progress(fraction: float, message: str = "") -> None:
    if message and sys.stderr.isatty():
        share = " .. " if fraction < 0 else f"{fraction * 100:3.0f}%"
        print(f"\r[{share}] {message[:70]:<70}", end="", file=sys.stderr, flush=True)
        if fraction >= 1.0:
            print(file=sys.stderr)


def load(name: str) -> Any:
    from explorer.core.models.loading import load_model

    return load_model(name, progress=stderr_progress, trust_remote_code=False)


def print_json(obj: Any) -> None:
    """Print strict JSON: NaN and ±Infinity (which ``json`` would print as bare words no parser accepts) become null."""
    json.dump(finite_json(obj), sys.stdout, ensure_ascii=False, indent=None, allow_nan=False)
    sys.stdout.write("\n")


def finite_json(obj: Any) -> Any:
    """``obj`` as plain JSON data (numpy arrays and scalars, ``to_dict`` objects converted), non-finite floats → None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, (str, int, float, bool)) and k is not None else k: finite_json(v)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return finite_json(_default(obj))


def _default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def export_chart(spec: Any, path: str) -> None:
    """Write a chart spec to .png/.svg (rendered offscreen by the window's chart widget) or .csv/.json."""
    from explorer.core.io.charts import write_chart_data

    export_path_checked(path)
    try:
        if path.lower().endswith((".csv", ".json")):
            write_chart_data(spec, path)
        else:
            from explorer.gui.render import render_chart_file

            render_chart_file(spec, path)
    except (OSError, ValueError, RuntimeError) as err:
        raise InputError(f"Could not write {path}: {getattr(err, 'strerror', None) or err}. Nothing was written.") from err
    print(f"lm-explorer: wrote {path}", file=sys.stderr)


def export_path_checked(path: str) -> None:
    """The ``--export`` checks again at write time (the folder may have changed while the model ran)."""
    try:
        export_path(path)
    except argparse.ArgumentTypeError as err:
        raise InputError(f"--export: {err}.") from None
