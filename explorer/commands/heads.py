"""``lm-explorer head`` (run a task head), ``finetune`` (frozen / full / adapter / scratch) and ``evaluate``."""

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
from explorer.core.io.errors import InputError

HEAD_TASKS = ("classify", "pair", "tokens", "qa", "fill-mask", "generate")
FT_TASKS = ("classify", "pair", "tokens", "qa", "seq2seq")
FT_MODES = ("frozen", "full", "adapter", "scratch")
POOLINGS = ("mean", "cls", "max", "pooler")


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
        help="fine-tune an encoder on a CSV/TSV/JSONL: frozen, full, adapter (LoRA) or scratch",
        description="Fine-tune a task head. Prints trainable parameters and the bytes stored per task for each "
        "mode first, then per-epoch loss and validation accuracy (frozen: per L-BFGS round). The --out folder "
        "runs with `lm-explorer head` and `lm-explorer evaluate`.",
    )
    p.add_argument("--model", default="minilm", help="the encoder to fine-tune (default: minilm)")
    p.add_argument("--data", required=True,
                   help="CSV/TSV (text[,text_pair],label), JSONL (tokens, tags) or QA JSONL (question, context, "
                   "answers); or a bundled set by name: sentiment, entailment, ner, qa, dates")
    p.add_argument("--task", choices=FT_TASKS, help="default: guessed from the columns (qa: extractive QA, a "
                   "start/end span head)")
    p.add_argument("--mode", choices=FT_MODES, default="frozen",
                   help="what to train (default frozen); scratch = the same architecture from random weights")
    p.add_argument("--epochs", type=int_range(1, 10_000),
                   help="full/adapter/scratch: epochs (default 3); frozen: most L-BFGS rounds of 10 iterations "
                   "(default 50; stops when converged)")
    p.add_argument("--lr", type=finite_float(0.0, 1.0, lo_open=True),
                   help="learning rate, above 0 and at most 1 (default: full/scratch 1e-4, adapter 1e-3; frozen: "
                   "none, L-BFGS line search)")
    p.add_argument("--batch-size", type=int_range(1, 4096), default=16)
    p.add_argument("--val-fraction", type=finite_float(0.0, 1.0, lo_open=True, hi_open=True), default=0.2,
                   help="share of rows held out (default 0.2)")
    p.add_argument("--lora-r", type=int_range(1, 1024), default=8, help="LoRA rank for --mode adapter (default 8)")
    p.add_argument("--pooling", choices=POOLINGS,
                   help="frozen: the sentence vector (default: the model's own, e.g. 1_Pooling/config.json)")
    add_seed_arg(p)
    p.add_argument("--out", help="folder to save in: new, empty, or an earlier fine-tune (only the app's own files "
                   "in it are replaced)")
    p.add_argument("--why-pretrain", action="store_true",
                   help="train full and scratch with the same data, steps and seed and compare (no --out needed)")
    p.add_argument("--design", choices=("v1", "v2", "both"), default="both",
                   help="seq2seq: v1 = --model (an encoder, default minilm) + a small decoder from scratch; v2 = "
                   "--decoder (default smollm2) + LoRA; both (default) trains them on the same pairs, side by side")
    p.add_argument("--decoder", default="smollm2", help="seq2seq v2: the pre-trained decoder (default smollm2)")
    p.add_argument("--steps", type=int_range(1, 100_000),
                   help="seq2seq: optimiser steps per design (default v1 400, v2 150)")
    p.add_argument("--eval-every", type=int_range(1, 100_000), default=25,
                   help="seq2seq: score the held-out pairs every N steps (default 25)")
    p.add_argument("--plan", action="store_true", help="only print the parameter / storage table, do not train")
    p.add_argument("--export", type=export_path, metavar="PATH",
                   help="write the loss / accuracy chart (.png/.svg/.csv/.json)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_finetune)

    p = sub.add_parser(
        "evaluate",
        help="score a classifier, token tagger or QA model on a labelled CSV/TSV/JSONL",
        description="Accuracy, per-class precision/recall/F1, macro-F1 and the confusion matrix of a model with a "
        "classification head on a labelled file (token tasks: entity-level P/R/F1, seqeval's span rules); for a "
        "QA model SQuAD v1.1 exact match and F1.",
    )
    p.add_argument("model", help="alias, folder (also a fine-tune output folder) or hub id")
    p.add_argument("--data", required=True,
                   help="CSV/TSV (text[,text_pair],label), JSONL (tokens, tags) or QA JSONL (question, context, "
                   "answers); or a bundled set by name, e.g. qa-test")
    p.add_argument("--task", choices=FT_TASKS, help="default: guessed from the columns")
    p.add_argument("--batch-size", type=int_range(1, 4096), default=32)
    p.add_argument("--export", type=export_path, metavar="PATH",
                   help="write the confusion-matrix chart (.png/.svg/.csv/.json)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_evaluate)


def _read(value: str | None, file: str | None) -> str | None:
    from explorer.core.io.fileio import read_text_file

    if file:
        tf = read_text_file(file)
        if tf.note:
            print(f"lm-explorer: {tf.note}", file=sys.stderr)
        return tf.text
    if value == "-":
        return sys.stdin.read()
    return value


def run_head(args: argparse.Namespace) -> int:
    from explorer.core.tuning import heads

    text = _read(args.text, args.file)
    text2 = _read(args.text2, args.file2)
    if not text or not text.strip():
        raise InputError("The text is empty. Give TEXT (and TEXT2 for pair / qa), or --file.")
    from explorer.core.tuning.seq2seq import is_seq2seq_folder

    if is_seq2seq_folder(args.model):
        if args.task not in (None, "generate"):
            raise InputError(f"{args.model} is a seq2seq fine-tune: it runs the 'generate' task only.")
        return _run_seq2seq_folder_head(args, text)
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
    from explorer.core.tuning import finetune as ft
    from explorer.core.tuning.taskstore import check_out_dir, out_lock

    # Every check that needs no model comes first: bad values, the --out folder, the data file.
    ft.validate(args.mode, args.epochs, args.lr, args.batch_size, args.lora_r, args.seed, args.pooling)
    if not args.plan and not args.why_pretrain and not args.out:
        raise InputError("Give --out DIR to save the fine-tuned model (or --plan to see the figures only).")
    if args.out and not args.plan:
        out = check_out_dir(args.out, _model_folders(args.model))
        with out_lock(out):  # a second run into the same folder is refused now, not after its training
            return _run_finetune(args)
    return _run_finetune(args)


def _model_folders(spec: str) -> list[str]:
    """The folder a model name points to, when it is one (a fine-tune must not be saved into its own base)."""
    from explorer.core.io.errors import ModelError
    from explorer.core.models import catalog

    try:
        entry = catalog.resolve(spec)
    except ModelError:
        return []
    return [entry.location] if entry.source != "hub" else []


def _run_finetune(args: argparse.Namespace) -> int:
    from explorer.core.io.bundled_data import resolve_data
    from explorer.core.tuning import finetune as ft
    from explorer.core.tuning import task_model
    from explorer.core.tuning.datasets import load_task_data
    from explorer.core.tuning.finetune_results import TrainUpdate
    from explorer.core.tuning.squad import looks_like_qa

    args.data = str(resolve_data(args.data))
    if args.task == "qa" or (args.task is None and looks_like_qa(args.data)):
        return _run_finetune_qa(args)
    from explorer.core.tuning.seq2seq import looks_like_pairs

    if args.task == "seq2seq" or (args.task is None and looks_like_pairs(args.data)):
        return _run_finetune_seq2seq(args)
    data = load_task_data(args.data, args.task, val_fraction=args.val_fraction, seed=args.seed)
    lm = load(args.model)
    costs = task_model.plan(lm, data.task, data.labels, args.lora_r)
    if args.plan:
        if args.json:
            print_json({"task": data.task, "labels": data.labels, "costs": {c.mode: c.to_dict() for c in costs}})
        else:
            _print_costs(costs, args.mode)
        return 0
    if not args.json:
        print(f"data: {data.path}: {len(data.train)} train / {len(data.val)} validation rows, "
              f"labels {', '.join(data.labels)} (majority baseline {data.majority_baseline():.0%})", flush=True)
        _print_costs(costs, args.mode)

    def partial(update: TrainUpdate) -> None:
        if update.epoch_done and not args.json:
            h = update.history[-1]
            what = "round" if update.mode == "frozen" else "epoch"
            prefix = f"{update.mode:<8} " if args.why_pretrain else ""
            print(f"{prefix}{what} {h.epoch:>3}: loss {h.loss:.4f}  val accuracy {h.val_accuracy:.2%}", flush=True)

    if args.why_pretrain:
        pre, scratch = ft.compare_scratch(lm, data, epochs=args.epochs, learning_rate=args.lr,
                                          batch_size=args.batch_size, seed=args.seed, progress=stderr_progress,
                                          partial=partial)
        if args.export:
            export_chart(ft.scratch_chart(pre, scratch), args.export)
        if args.json:
            print_json({"pretrained": pre.to_dict(), "scratch": scratch.to_dict()})
            return 0
        print(f"pre-trained: validation accuracy {pre.val_accuracy:.2%}; from scratch: {scratch.val_accuracy:.2%} "
              f"(same {pre.epochs} epochs, lr {pre.learning_rate:g}, seed {pre.seed}; majority baseline "
              f"{pre.majority_baseline:.2%})")
        return 0
    if not args.json:
        print(f"mode {args.mode}: " + (
            "features: {} pooling ({})".format(*task_model.model_pooling(lm)) if args.mode == "frozen" and not args.pooling
            else f"pooling {args.pooling}" if args.mode == "frozen" else "gradient training"), flush=True)
    result = ft.finetune(
        lm, data, args.mode, epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size, seed=args.seed,
        lora_r=args.lora_r, pooling=args.pooling, out_dir=args.out, progress=stderr_progress, partial=partial,
    )
    if _report_run(args, result):
        return 0
    print(f"validation accuracy {result.val_accuracy:.2%} (before training {result.initial_val_accuracy:.2%}, "
          f"majority baseline {result.majority_baseline:.2%}) in {result.seconds:.1f} s")
    print(f"saved to {result.out_dir}: {_mb(result.stored_bytes)} written ({', '.join(result.files)}); "
          f"the table's figure for {result.mode} was {_mb(result.weight_bytes)} of weights")
    print(f"run it with: lm-explorer head {result.out_dir} --task {data.task} TEXT"
          + (" TEXT2" if data.task == "pair" else "") + f"; score it with: lm-explorer evaluate {result.out_dir} "
          "--data TEST_FILE")
    return 0


def _report_run(args: argparse.Namespace, result: object) -> bool:
    """The chart export, then the JSON (True: nothing more to print) or the stopping rule and the run's notes."""
    from explorer.core.tuning import finetune as ft

    if args.export:
        export_chart(ft.result_chart(result), args.export)
    if args.json:
        print_json(result.to_dict())
        return True
    print(f"stopping rule: {result.stopping_rule}" + (
        f" — {'converged' if result.converged else 'NOT converged'}" if result.converged is not None else ""))
    for note in result.notes:
        print(f"note: {note}")
    return False


def _run_finetune_qa(args: argparse.Namespace) -> int:
    """``finetune --task qa``: a start/end span head on the encoder, scored with SQuAD exact match / F1."""
    from explorer.core.tuning import extractive
    from explorer.core.tuning.finetune_results import TrainUpdate
    from explorer.core.tuning.squad import load_qa_data

    if args.mode not in extractive.MODES:
        raise InputError(f"Extractive QA fine-tunes in the modes {', '.join(extractive.MODES)} (got '{args.mode}').")
    if args.why_pretrain:
        raise InputError("--why-pretrain compares classifiers; for QA train --mode full and look at the curve.")
    if args.pooling:
        raise InputError("--pooling does not apply to QA: the span head reads every token's vector.")
    data = load_qa_data(args.data, val_fraction=args.val_fraction, seed=args.seed)
    lm = load(args.model)
    costs = extractive.plan(lm, args.lora_r)
    if args.plan:
        if args.json:
            print_json({"task": "qa", "labels": extractive.LABELS, "costs": {c.mode: c.to_dict() for c in costs}})
        else:
            _print_costs(costs, args.mode)
        return 0
    if not args.json:
        s = data.summary()
        print(f"data: {data.path}: {s['train_rows']} train questions ({s['train_contexts']} contexts) / "
              f"{s['val_rows']} validation questions ({s['val_contexts']} contexts)", flush=True)
        _print_costs(costs, args.mode)

    def partial(update: TrainUpdate) -> None:
        if update.epoch_done and not args.json:
            h = update.history[-1]
            what = "round" if update.mode == "frozen" else "epoch"
            print(f"{what} {h.epoch:>3}: loss {h.loss:.4f}  validation F1 {h.val_accuracy:.2%}", flush=True)

    result = extractive.finetune_qa(lm, data, args.mode, epochs=args.epochs, learning_rate=args.lr,
                                    batch_size=args.batch_size, seed=args.seed, lora_r=args.lora_r,
                                    out_dir=args.out, progress=stderr_progress, partial=partial)
    if _report_run(args, result):
        return 0
    print(f"validation exact match {result.scores['exact_match']:.2%}, F1 {result.scores['f1']:.2%} "
          f"(F1 before training {result.initial_val_accuracy:.2%}) in {result.seconds:.1f} s")
    print(f"saved to {result.out_dir}: {_mb(result.stored_bytes)} written ({', '.join(result.files)})")
    print(f"run it with: lm-explorer head {result.out_dir} --task qa QUESTION CONTEXT; score it with: "
          f"lm-explorer evaluate {result.out_dir} --data qa-test")
    return 0


def _run_finetune_seq2seq(args: argparse.Namespace) -> int:
    """``finetune --task seq2seq``: v1 (encoder + decoder from scratch) and / or v2 (decoder + LoRA), held-out
    exact match and chrF against steps."""
    from pathlib import Path

    from explorer.core.tuning import seq2seq
    from explorer.core.tuning.taskstore import check_out_dir

    designs = ["v1", "v2"] if args.design == "both" else [args.design]
    if args.plan or args.why_pretrain or args.pooling:
        raise InputError("--plan, --why-pretrain and --pooling do not apply to seq2seq.")
    outs: dict[str, Path] = {}
    if args.out:
        root = Path(args.out).expanduser()
        if root.is_file():
            raise InputError(f"{root} is a file; give a folder to save the fine-tunes in.")
        for d in designs:
            outs[d] = check_out_dir(root / d)
    data = seq2seq.load_pairs(args.data, val_fraction=args.val_fraction, seed=args.seed)
    if not args.json:
        print(f"data: {data.path}: {len(data.train)} train / {len(data.val)} held-out pairs", flush=True)

    def partial(u: seq2seq.Seq2SeqUpdate) -> None:
        if not args.json and u.curve and u.curve[-1].step == u.step:
            p = u.curve[-1]
            print(f"{u.design} step {p.step:>5}: loss {p.loss:.4f}  held-out exact match {p.exact_match:.2%}  "
                  f"chrF {p.chrf:.3f}", flush=True)

    results = []
    for d in designs:
        lm = load(args.model if d == "v1" else args.decoder)
        if not args.json:
            print(f"{seq2seq.DESIGN_TITLES[d]} on {lm.name}", flush=True)
        results.append(seq2seq.finetune_seq2seq(
            lm, data, d, steps=args.steps, learning_rate=args.lr, batch_size=args.batch_size, seed=args.seed,
            lora_r=args.lora_r, eval_every=args.eval_every, out_dir=outs.get(d), progress=stderr_progress,
            partial=partial))
    if args.export:
        export_chart(seq2seq.designs_chart(results), args.export)
    if args.json:
        print_json({r.design: r.to_dict() for r in results})
        return 0
    for r in results:
        print(f"{r.design}: held-out exact match {r.exact_match:.2%}, chrF {r.chrf:.3f} after {r.steps} steps "
              f"({r.trainable_parameters:,} of {r.total_parameters:,} parameters trained) in {r.seconds:.1f} s")
        for ex in r.examples[:3]:
            print(f"  {ex['input']!r} → {ex['prediction']!r} (reference {ex['reference']!r})")
        if r.out_dir:
            print(f"  saved to {r.out_dir}: {_mb(r.stored_bytes)}; run it with: lm-explorer head {r.out_dir} TEXT; "
                  f"score it with: lm-explorer evaluate {r.out_dir} --data dates-test")
    return 0


def _run_seq2seq_folder_head(args: argparse.Namespace, text: str) -> int:
    from explorer.core.tuning import seq2seq

    ft = seq2seq.Finetuned(args.model, progress=stderr_progress)
    out = ft.generate([seq2seq.clean_text(text)])[0]
    if args.json:
        print_json({"task": "seq2seq", "model": ft.name, "design": ft.design, "input": text, "output": out})
    else:
        print(out)
    return 0


def _run_evaluate_seq2seq(args: argparse.Namespace) -> int:
    from explorer.core.tuning import seq2seq

    seq2seq.read_pairs(args.data)  # a bad file is refused before the model loads
    ft = seq2seq.Finetuned(args.model, progress=stderr_progress)
    result = seq2seq.evaluate_seq2seq(ft, args.data, progress=stderr_progress)
    if args.export:
        raise InputError("A seq2seq evaluation has no chart; use --json for every prediction.")
    if args.json:
        print_json(result.to_dict(predictions=True))
        return 0
    print(f"{result.model} ({result.design}) on {result.path}: {result.n} pairs, exact match {result.exact_match:.2%}, "
          f"chrF {result.chrf:.3f}")
    for p in [p for p in result.predictions if not p["exact"]][:5]:
        print(f"  {p['input']!r} → {p['prediction']!r} (reference {p['reference']!r})")
    return 0


def _run_evaluate_qa(args: argparse.Namespace) -> int:
    from explorer.core.tuning import extractive
    from explorer.core.tuning.squad import read_examples

    read_examples(args.data)  # a bad file is refused before the model loads
    lm = load(args.model)
    result = extractive.evaluate_qa(lm, args.data, args.batch_size, progress=stderr_progress)
    if args.export:
        export_chart(extractive.scores_chart(result), args.export)
    if args.json:
        print_json(result.to_dict(predictions=True))
        return 0
    print(f"{result.model} on {result.path}: {result.n} questions, exact match {result.exact_match:.2%}, "
          f"F1 {result.f1:.2%} (SQuAD v1.1 rules)")
    wrong = [p for p in result.predictions if not p["exact_match"]][:5]
    for p in wrong:
        print(f"  {p['question']}  predicted {p['prediction']!r}, gold {' / '.join(map(repr, p['answers']))}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from explorer.core.io.bundled_data import resolve_data
    from explorer.core.tuning.datasets import parse_examples
    from explorer.core.tuning.evaluation import confusion_chart, evaluate
    from explorer.core.tuning.seq2seq import is_seq2seq_folder
    from explorer.core.tuning.squad import looks_like_qa

    args.data = str(resolve_data(args.data))
    if is_seq2seq_folder(args.model):
        return _run_evaluate_seq2seq(args)
    if args.task == "qa" or (args.task is None and looks_like_qa(args.data)):
        return _run_evaluate_qa(args)
    parse_examples(args.data, args.task)  # a bad file is refused before the model loads
    lm = load(args.model)
    result = evaluate(lm, args.data, args.task, args.batch_size, progress=stderr_progress)
    if args.export:
        export_chart(confusion_chart(result), args.export)
    if args.json:
        print_json(result.to_dict())
        return 0
    unit = "words" if result.level == "entity" else "rows"
    print(f"{result.model} on {result.path}: {result.n} rows, accuracy {result.accuracy:.2%} ({result.units} {unit}), "
          f"macro-F1 {result.macro_f1:.3f}" + (" (entity level)" if result.level == "entity" else ""))
    print(f"  {'class':<16} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}")
    for name, v in result.per_class.items():
        print(f"  {name:<16} {v['precision']:>9.3f} {v['recall']:>7.3f} {v['f1']:>6.3f} {v['support']:>8}")
    width = max(6, *(len(x) for x in result.labels))
    print("confusion (rows gold, columns predicted):")
    print(" " * (width + 2) + " ".join(f"{x[:width]:>{width}}" for x in result.labels))
    for name, row in zip(result.labels, result.confusion, strict=True):
        print(f"  {name:<{width}}" + " ".join(f"{v:>{width}}" for v in row))
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _print_costs(costs, mode: str) -> None:  # noqa: ANN001
    print(f"{'mode':<9} {'trainable':>12} {'of total':>9} {'stored per task':>16}")
    for c in costs:
        mark = "*" if c.mode == mode else " "
        print(f"{mark}{c.mode:<8} {c.trainable_parameters:>12,} {c.trainable_fraction:>9.3%} {_mb(c.stored_bytes):>16}"
              f"   {c.note}")
