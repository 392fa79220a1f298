"""``lm-explorer``: no subcommand opens the window; subcommands run the same core functions headless.

Each module in :mod:`explorer.commands` adds its subcommands through ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from explorer import __version__


def build_parser() -> argparse.ArgumentParser:
    from explorer.commands._common import CliParser

    parser = CliParser(
        prog="lm-explorer",
        description="See and run what 'BERT and its family' and GPT-3 explain. Without a command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"lm-explorer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import explorer.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"explorer.commands.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        # Every option's value is checked here (argparse types), before any model loads.
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a one-line usage error (exit 2)
        return done.code if isinstance(done.code, int) else 0 if done.code is None else 2
    if args.command is None:
        from explorer.gui.app import main as gui_main

        return gui_main()
    from explorer.core.errors import Cancelled, ExplorerError

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return int(args.func(args) or 0)
    except Cancelled:
        print("lm-explorer: cancelled.", file=sys.stderr)
        return 130
    except ExplorerError as err:
        print(f"lm-explorer: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lm-explorer: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lm-explorer … | head`
        return 0
    except Exception as err:  # a bug: still one line, with the way to see the whole traceback
        if os.environ.get("LM_EXPLORER_DEBUG"):
            raise
        first = str(err).splitlines()[0][:300] if str(err) else ""
        print(f"lm-explorer: unexpected error ({type(err).__name__}{': ' + first if first else ''}). "
              "Run again with LM_EXPLORER_DEBUG=1 to see where, and please report it.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
