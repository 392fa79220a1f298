"""``lm-explorer``: no subcommand opens the window; subcommands run the same core functions headless.

``lm-explorer FILE...`` opens the window with those files (what a file manager's "Open with" runs). Command
names win over file names: a file called like a command is opened by giving its path (``./models``).
Each module in :mod:`explorer.commands` adds its subcommands through ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from pathlib import Path

from explorer import __version__


def build_parser() -> argparse.ArgumentParser:
    from explorer.commands._common import CliParser

    parser = CliParser(
        prog="lm-explorer",
        description="See and run what 'BERT and its family' and GPT-3 explain. Without a command, opens the window.",
        usage="%(prog)s [-h] [--version] [COMMAND ... | FILE ...]",
        epilog="lm-explorer FILE... opens the window with those files: text files go into the text box (several "
        "form the corpus), a labelled CSV/TSV/JSONL opens in the fine-tune lab. A file named like a command is "
        "opened by its path, e.g. ./models (or after --).",
    )
    parser.add_argument("--version", action="version", version=f"lm-explorer {__version__}")
    parser.add_argument("--install-desktop-entry", action="store_true",
                        help="add LM Explorer to the desktop's menu (and 'Open with' for text files), launching "
                        "this install; files go to ~/.local/share")
    parser.add_argument("--uninstall-desktop-entry", action="store_true",
                        help="remove the menu entry and icon --install-desktop-entry wrote")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import explorer.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"explorer.commands.{info.name}").register(sub)
    return parser


def command_names(parser: argparse.ArgumentParser) -> set[str]:
    """The subcommands ``parser`` knows."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def files_to_open(argv: list[str], commands: set[str]) -> list[str] | None:
    """The files of ``lm-explorer FILE...``, or None when ``argv`` is a command line for argparse.

    A first argument that is a command or an option goes to argparse. Otherwise the arguments are files when
    one of them exists or the first looks like a path (a folder part or a suffix), so a misspelt command
    still gets argparse's "invalid choice" and not a window complaining about a missing file. After ``--``
    every argument is a file.
    """
    if argv[:1] == ["--"]:  # `lm-explorer -- models`: everything after -- is a file
        return argv[1:] or None
    if not argv or argv[0] in commands or argv[0].startswith("-"):
        return None
    first = Path(argv[0])
    if any(Path(a).exists() for a in argv) or os.sep in argv[0] or first.suffix:
        return list(argv)
    return None


def one_line(message: str) -> str:
    """A message as the one line the CLI prints: keys and credentials redacted, line breaks folded."""
    from explorer.core.io.redaction import redact

    return " ".join(redact(message).split())


def desktop_entry(install: bool) -> int:
    """``--install-desktop-entry`` / ``--uninstall-desktop-entry``: say what was written or removed."""
    from explorer.desktop_entry import install_desktop_entry, uninstall_desktop_entry

    try:
        if install:
            entry, icon = install_desktop_entry()
            print(f"Installed {entry} (icon {icon}); it runs: "
                  + next(line[5:] for line in entry.read_text().splitlines() if line.startswith("Exec=")))
        else:
            removed = uninstall_desktop_entry()
            print("Removed " + ", ".join(map(str, removed)) if removed else "No menu entry of LM Explorer was found.")
    except OSError as err:
        print(f"lm-explorer: could not write the menu entry: {err}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(argv, 1):  # bytes that were not UTF-8 arrive as lone surrogates and break every library
        if any("\ud800" <= c <= "\udfff" for c in arg):
            print(f"lm-explorer: argument {i} is not valid text (its bytes are not UTF-8); pass the text in a UTF-8 "
                  "file with --file instead.", file=sys.stderr)
            return 2
    parser = build_parser()
    files = files_to_open(argv, command_names(parser))
    if files is not None:
        from explorer.gui.app import main as gui_main

        return gui_main(files=files)
    try:
        # Every option's value is checked here (argparse types), before any model loads.
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a one-line usage error (exit 2)
        return done.code if isinstance(done.code, int) else 0 if done.code is None else 2
    if args.install_desktop_entry or args.uninstall_desktop_entry:
        return desktop_entry(install=args.install_desktop_entry)
    if args.command is None:
        from explorer.gui.app import main as gui_main

        return gui_main(files=[])
    from explorer.core.io.errors import Cancelled, ExplorerError

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not os.environ.get("LM_EXPLORER_DEBUG"):
        # The libraries' own warnings and progress bars are not for the user (a deprecation notice and a GGUF
        # conversion bar turned a one-line refusal into 3-22 lines): the CLI reports progress and errors itself.
        import warnings

        warnings.simplefilter("ignore")
        os.environ.setdefault("TQDM_DISABLE", "1")  # read when tqdm is first imported, after this line
    try:
        return int(args.func(args) or 0)
    except Cancelled:
        print("lm-explorer: cancelled.", file=sys.stderr)
        return 130
    except ExplorerError as err:
        print(f"lm-explorer: {one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lm-explorer: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lm-explorer … | head`
        return 0
    except Exception as err:  # a bug: still one line and exit 2, with the way to see the whole traceback
        if os.environ.get("LM_EXPLORER_DEBUG"):
            raise
        first = one_line(str(err))[:300]
        print(f"lm-explorer: unexpected error ({type(err).__name__}{': ' + first if first else ''}). "
              "Run again with LM_EXPLORER_DEBUG=1 to see where, and please report it.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
