"""``lm-explorer storage [--clear AREA] [--yes]``: what the app wrote to disk, with sizes, and clearing it."""

from __future__ import annotations

import argparse
import sys

from explorer.commands._common import print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("storage", help="list the app's caches and saved files with sizes; --clear AREA deletes one")
    p.add_argument("--clear", metavar="AREA", help="delete what an area holds: converted, gguf, finetuned, session "
                   "or all (only files the app wrote)")
    p.add_argument("--yes", action="store_true", help="clear without asking")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_storage)


def human(n: int) -> str:
    """Bytes as people read them: 518 MB, 1.1 GB."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}" if n < 10 * size else f"{n / size:.0f} {unit}"
    return f"{n} bytes"


def run_storage(args: argparse.Namespace) -> int:
    from explorer.core.io.errors import InputError
    from explorer.core.models.storage import clear_storage, list_storage

    areas = list_storage()
    if args.clear:
        keys = [a.key for a in areas]
        if args.clear != "all" and args.clear not in keys:
            raise InputError(f"storage: there is no area '{args.clear}'; choose one of: {', '.join(keys)}, all.")
        chosen = [a for a in areas if args.clear in ("all", a.key)]
        size = sum(a.bytes for a in chosen)
        if not args.yes:
            if not sys.stdin.isatty():
                raise InputError("storage: --clear deletes files; add --yes to do it without a question.")
            names = ", ".join(a.label.lower() for a in chosen)
            answer = input(f"Delete {names} ({human(size)})? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing was deleted.")
                return 0
        freed = clear_storage(args.clear)
        if args.json:
            print_json({"cleared": [a.key for a in chosen], "bytes": freed})
        else:
            print(f"Deleted {human(freed)}.")
        return 0
    if args.json:
        print_json([a.to_dict() for a in areas])
        return 0
    for a in areas:
        print(f"{a.label:<22} {human(a.bytes):>9}  {a.location}")
        for item in a.items:
            print(f"  {item.name:<40} {human(item.bytes):>9}")
    print(f"{'Total':<22} {human(sum(a.bytes for a in areas)):>9}")
    return 0
