"""``lm-explorer selftest FILE``: the window, offscreen, opens FILE, loads a model and draws its attention."""

from __future__ import annotations

import argparse

from explorer.commands._common import print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("selftest", help="check this install's window: open FILE offscreen, load a model, draw "
                       "its attention (exit 0 when every step happened)")
    p.add_argument("file", help="a text file to open, as `lm-explorer FILE` would")
    p.add_argument("--model", default="minilm", help="the model to load and analyse with (default: minilm)")
    p.add_argument("--screenshot", help="also save the window as this PNG")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_selftest)


def run_selftest(args: argparse.Namespace) -> int:
    from pathlib import Path

    from explorer.core.io.errors import InputError

    if not Path(args.file).is_file():
        raise InputError(f"selftest: {args.file} is not a file")
    if args.screenshot and not args.screenshot.lower().endswith(".png"):
        raise InputError("selftest: --screenshot takes a .png file")
    from explorer.gui.selftest import SelfTestFailed, run_selftest

    try:
        summary = run_selftest(args.file, model=args.model, screenshot=args.screenshot,
                               say=(lambda _line: None) if args.json else print)
    except SelfTestFailed as err:
        raise InputError(f"selftest failed: {err}") from None
    if args.json:
        print_json(summary)
    else:
        print("selftest passed")
    return 0
