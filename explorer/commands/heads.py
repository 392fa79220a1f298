"""``lm-explorer head`` (run a task head) and ``lm-explorer finetune`` (frozen / full / adapter)."""

from __future__ import annotations

import argparse
import sys

from explorer.commands._common import (
    CliParser,
    add_seed_arg,
    export_chart,
    export_path,
    finite_float,
    int_range,
    load,
    print_json,
    stderr_progress,
)
from explorer.core.errors import InputError

HEAD_TASKS = ("classify", "pair", "tokens", "qa", "fill-mask", "generate")
FT_TASKS = ("classify", "pair", "tokens")
FT_MODES = ("frozen", "full", "adapter")


class _IntermixedParser(CliParser):
    """Options may sit between positionals (``head MODEL --task qa QUESTION CONTEXT``); plain argparse
    binds the optional TEXT/TEXT2 positionals as empty at the first option and then rejects them."""

    _inside = False

    def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201
        if self._inside:
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "head",
        help="run a task head: classify, pair, tokens, qa, fill-mask, generate",
        description="Run a fine-tuned model's task head. For 'pair' give two texts; for 'qa' the question, then "
        "the context.",
    )
    p.__class__ = _IntermixedParser
    p.add_argument("model", help="alias, folder (also a fine-tune output folder) or hub id")
    p.add_argument("--task", choices=HEAD_TASKS, help="the task (default: the first one the model's head can run)")
    p.add_argument("text", nargs="?", help="the text ('-' reads standard input); for qa the question")
    p.add_argument("text2", nargs="?", help="the second text (pair) or the context (qa)")
    p.add_argument("--file", help="read TEXT from this file")
    p.add_argument("--file2", help="read TEXT2 from this file (e.g. a long QA context)")
    p.add_argument("--top-k", type=int_range(1, 100), default=5,
                   help="candidates per mask / QA spans listed, 1–100 (default 5)")
    p.add_argument("--max-answer-len", type=int_range(1, 4096), default=30,
                   help="longest QA answer in tokens (default 30)")
    p.add_argument("--max-new-tokens", type=int_range(1, 4096), default=40, help="tokens to generate (default 40)")
    p.add_argument("--temperature", type=finite_float(0.0, 100.0), default=0.0,
                   help="0 = greedy (default); > 0 samples (at most 100)")
    add_seed_arg(p, help="seed for sampling")
    p.add_argument("--export", type=export_path, metavar="PATH", help="write the result's chart (.png/.svg/.csv/.json)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_head)

    p = sub.add_parser(
        "finetune",
        help="fine-tune an encoder on a CSV/TSV/JSONL: frozen, full or adapter (LoRA)",
        description="Fine-tune a task head. Prints trainable parameters and the bytes stored per task for each "
        "mode first, then per-epoch loss and validation accuracy. The --out folder runs with `lm-explorer head`.",
    )
    p.add_argument("--model", default="minilm", help="the encoder to fine-tune (default: minilm)")
    p.add_argument("--data", required=True, help="CSV/TSV (text[,text_pair],label) or JSONL (tokens, tags)")
    p.add_argument("--task", choices=FT_TASKS, help="default: guessed from the columns")
    p.add_argument("--mode", choices=FT_MODES, default="frozen", help="what to train (default frozen)")
    p.add_argument("--epochs", type=int, help="default: frozen 20, full 3, adapter 3")
    p.add_argument("--lr", type=float, help="learning rate (default: frozen 5e-3, full 1e-4, adapter 1e-3)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of rows held out (default 0.2)")
    p.add_argument("--lora-r", type=int, default=8, help="LoRA rank for --mode adapter (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="folder to save the fine-tuned model in (new or empty)")
    p.add_argument("--plan", action="store_true", help="only print the parameter / storage table, do not train")
    p.add_argument("--export", metavar="PATH", help="write the loss / accuracy chart (.png/.svg/.csv/.json)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_finetune)


def _read(value: str | None, file: str | None) -> str | None:
    from explorer.core.fileio import read_text_file

    if file:
        tf = read_text_file(file)
        if tf.note:
            print(f"lm-explorer: {tf.note}", file=sys.stderr)
        return tf.text
    if value == "-":
        return sys.stdin.read()
    return value


def run_head(args: argparse.Namespace) -> int:
    from explorer.core import heads

    text = _read(args.text, args.file)
    text2 = _read(args.text2, args.file2)
    if not text or not text.strip():
        raise InputError("The text is empty. Give TEXT (and TEXT2 for pair / qa), or --file.")
    lm = load(args.model)
    task = args.task or heads.default_task(lm.heads)
    if task is None:
        heads.require_head(lm, "classify")
    result = heads.run_head(
        lm, task, text, text2, top_k=args.top_k, max_answer_len=args.max_answer_len,
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
        progress=stderr_progress,
    )
    if args.export:
        charts = heads.result_charts(result)
        if not charts:
            raise InputError("Generated text has no chart to export.")
        export_chart(charts[-1] if task == "qa" and args.export.lower().endswith(".png") else charts[0], args.export)
    if args.json:
        print_json({"task": task, "model": lm.name, **result.to_dict()})
        return 0
    _print_result(task, result)
    return 0


def _print_result(task: str, r) -> None:  # noqa: ANN001
    if task in ("classify", "pair"):
        print(f"label: {r.label}")
        for name, p in sorted(r.scores.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<20} {p:7.2%}  {'█' * round(p * 30)}")
    elif task == "tokens":
        for t in r.tokens:
            print(f"  {t.token:<16} {t.label:<10} {t.score:.2f}")
        print("entities: " + ("; ".join(f"{e.text} [{e.label}] {e.score:.2f}" for e in r.entities) or "none"))
    elif task == "qa":
        print(f"answer: {r.answer}")
        for s in r.spans:
            print(f"  {s.score:.4f}  tokens {s.start_token}-{s.end_token}  {s.text}")
    elif task == "fill-mask":
        print(r.filled)
        for i, m in enumerate(r.masks, 1):
            print(f"  mask {i}: " + ", ".join(f"{t} {p:.2f}" for t, p in m.candidates))
    else:
        print(r.prompt + r.text if r.kind == "causal-lm" else r.text)
    if getattr(r, "truncated", False):
        print("note: the input was longer than the model takes and was truncated.", file=sys.stderr)


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def run_finetune(args: argparse.Namespace) -> int:
    from explorer.core import finetune as ft
    from explorer.core.datasets import load_task_data

    if not args.plan and not args.out:
        raise InputError("Give --out DIR to save the fine-tuned model (or --plan to see the figures only).")
    data = load_task_data(args.data, args.task, val_fraction=args.val_fraction, seed=args.seed)
    lm = load(args.model)
    costs = ft.plan(lm, data.task, data.labels, args.lora_r)
    if args.plan:
        if args.json:
            print_json({"task": data.task, "labels": data.labels, "costs": {c.mode: c.to_dict() for c in costs}})
        else:
            _print_costs(costs, args.mode)
        return 0
    if not args.json:
        print(f"data: {data.path}: {len(data.train)} train / {len(data.val)} validation rows, "
              f"labels {', '.join(data.labels)} (majority baseline {data.majority_baseline():.0%})")
        _print_costs(costs, args.mode)

    def partial(update: ft.TrainUpdate) -> None:
        if update.epoch_done and not args.json:
            h = update.history[-1]
            print(f"epoch {h.epoch:>3}: loss {h.loss:.4f}  val accuracy {h.val_accuracy:.2%}", flush=True)

    result = ft.finetune(
        lm, data, args.mode, epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size, seed=args.seed,
        lora_r=args.lora_r, out_dir=args.out, progress=stderr_progress, partial=partial,
    )
    if args.export:
        export_chart(ft.history_chart(result.history, result.initial_val_accuracy, result.batch_losses,
                                      result.majority_baseline, meta=result.to_dict()), args.export)
    if args.json:
        print_json(result.to_dict())
        return 0
    print(f"validation accuracy {result.val_accuracy:.2%} (before training {result.initial_val_accuracy:.2%}, "
          f"majority baseline {result.majority_baseline:.2%}) in {result.seconds:.1f} s")
    print(f"saved to {result.out_dir} ({_mb(result.saved_bytes)} of weights); run it with: "
          f"lm-explorer head {result.out_dir} --task {data.task} TEXT" + (" TEXT2" if data.task == "pair" else ""))
    return 0


def _print_costs(costs, mode: str) -> None:  # noqa: ANN001
    print(f"{'mode':<9} {'trainable':>12} {'of total':>9} {'stored per task':>16}")
    for c in costs:
        mark = "*" if c.mode == mode else " "
        print(f"{mark}{c.mode:<8} {c.trainable_parameters:>12,} {c.trainable_fraction:>9.3%} {_mb(c.stored_bytes):>16}"
              f"   {c.note}")
