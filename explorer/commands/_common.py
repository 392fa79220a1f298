"""Helpers every subcommand shares: reading the text argument, loading a model, printing JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from explorer.core.errors import InputError


def add_text_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """TEXT positional, or --file F; '-' reads standard input."""
    parser.add_argument("text", nargs="?", help="the text (or '-' for standard input)")
    parser.add_argument("--file", help="read the text from this file (encoding detected)")


def read_text(args: argparse.Namespace, required: bool = True) -> str:
    from explorer.core.fileio import read_text_file

    if getattr(args, "file", None):
        tf = read_text_file(args.file)
        if tf.note:
            print(f"lm-explorer: {tf.note}", file=sys.stderr)
        text = tf.text
    elif getattr(args, "text", None) == "-":
        text = sys.stdin.read()
    else:
        text = getattr(args, "text", None) or ""
    if required and not text.strip():
        raise InputError("The text is empty. Give a TEXT argument, --file FILE, or '-' for standard input.")
    return text


def stderr_progress(fraction: float, message: str = "") -> None:
    if message and sys.stderr.isatty():
        print(f"\r[{fraction * 100:3.0f}%] {message[:70]:<70}", end="", file=sys.stderr, flush=True)
        if fraction >= 1.0:
            print(file=sys.stderr)


def load(name: str) -> Any:
    from explorer.core.models import load_model

    return load_model(name, progress=stderr_progress, trust_remote_code=False)


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=None, default=_default)
    sys.stdout.write("\n")


def _default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def export_chart(spec: Any, path: str) -> None:
    """Write a chart spec to .png/.svg (rendered offscreen by the window's chart widget) or .csv/.json."""
    from explorer.core.charts import write_chart_data

    if path.lower().endswith((".csv", ".json")):
        write_chart_data(spec, path)
    else:
        from explorer.gui.render import render_chart_file

        render_chart_file(spec, path)
    print(f"lm-explorer: wrote {path}", file=sys.stderr)
