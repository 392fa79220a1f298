"""``lm-explorer shrink quantize|prune|distill``: the lecture's smaller models, measured (the Models panel's
*Smaller models* view runs the same core functions)."""

from __future__ import annotations

import argparse

from explorer.commands._common import add_seed_arg, export_chart, export_path, int_range, load, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("shrink", help="smaller models, measured: int8 quantisation, head pruning, distillation")
    what = p.add_subparsers(dest="shrink", metavar="WHAT", required=True)
    q = what.add_parser("quantize", help="int8 dynamic quantisation against float32: size, speed, result change")
    q.add_argument("--model", default="minilm", help="an encoder (minilm) or a decoder (smollm2); default minilm")
    q.add_argument("--file", help="measure on this text instead of the held-out set (an encoder: one sentence a "
                   "line; a decoder: the whole text)")
    q.add_argument("--no-probe", action="store_true", help="skip the frozen probe's accuracy (encoders)")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.add_argument("--export", type=export_path, help="write the chart (.png/.svg/.csv/.json)")
    q.set_defaults(func=run_quantize)
    sw = what.add_parser("sweep", help="GPT-3's K-shot accuracy of a decoder and of its int8 copy, same items")
    sw.add_argument("--model", default="smollm2", help="a decoder; default smollm2")
    sw.add_argument("--task", default="qa", help="a built-in prompting task or a task file; default qa")
    sw.add_argument("--shots", default="0,1,4", help="comma-separated K values (default 0,1,4)")
    sw.add_argument("--draws", type=int_range(1, 1000), default=1, help="demonstration draws per K (default 1)")
    sw.add_argument("--limit", type=int_range(1, 10_000), default=20, help="test items (default 20)")
    add_seed_arg(sw)
    sw.add_argument("--details", action="store_true", help="include every evaluated item in --json output")
    sw.add_argument("--json", action="store_true", help="print JSON")
    sw.add_argument("--export", type=export_path, help="write the accuracy-against-K chart (.png/.svg/.csv/.json)")
    sw.set_defaults(func=run_int8_sweep)
    pr = what.add_parser("prune", help="remove attention heads of a fine-tuned classifier; accuracy against heads "
                         "removed")
    pr.add_argument("--model", default="minilm", help="a BERT-style encoder; default minilm")
    pr.add_argument("--data", default="sentiment", help="a classify/pair data set (bundled name or file); "
                    "default sentiment")
    pr.add_argument("--step", type=int_range(1, 1000), default=6, help="heads removed between two measurements")
    add_seed_arg(pr)
    pr.add_argument("--json", action="store_true", help="print JSON")
    pr.add_argument("--export", type=export_path, help="write the chart (.png/.svg/.csv/.json)")
    pr.set_defaults(func=run_prune)
    d = what.add_parser("distill", help="where the bundled models come from (their cards), and a distilled "
                        "student against a bigger model you point at")
    d.add_argument("--model", default="minilm", help="the student; default minilm")
    d.add_argument("--teacher", help="a BERT-base-sized model (HF folder or name) to compare size, speed and the "
                   "frozen probe's accuracy with")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.add_argument("--export", type=export_path, help="write the comparison chart (.png/.svg/.csv/.json)")
    d.set_defaults(func=run_distill)


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


def run_quantize(args: argparse.Namespace) -> int:
    from explorer.commands._common import stderr_progress
    from explorer.core.tuning.quantize import compare_int8, quantize_chart

    texts = None
    if args.file:
        from explorer.core.io.fileio import read_text_file

        text = read_text_file(args.file).text
        texts = [line for line in text.splitlines() if line.strip()]
    lm = load(args.model)
    if texts is not None and lm.kind == "decoder":
        texts = [text]
    result = compare_int8(lm, texts, probe_accuracy=not args.no_probe, progress=stderr_progress)
    if args.export:
        export_chart(quantize_chart(result), args.export)
    if args.json:
        print_json(result.to_dict())
        return 0
    print(f"{result.model} ({result.kind}): {result.method}")
    print(f"engine {result.engine}, {result.threads} thread(s), {result.inputs} input(s)")
    print(f"{'':<22}{'float32':>14}{'int8':>14}{'int8/float32':>14}")
    f, q = result.float32, result.int8
    for label, a, b, fmt in (("in memory", f.bytes_in_memory, q.bytes_in_memory, _mb),
                             ("on disk", f.bytes_on_disk, q.bytes_on_disk, _mb),
                             ("time per input", f.seconds_per_input, q.seconds_per_input,
                              lambda s: f"{s * 1000:.1f} ms")):
        print(f"{label:<22}{fmt(a):>14}{fmt(b):>14}{b / a if a else float('nan'):>14.2f}")
    print(f"{'Linear float/int8':<22}{f.float_linear:>14}{q.int8_linear:>14}")
    for key, value in result.agreement.items():
        print(f"{key:<28} {value:.4f}   {result.explain.get(key, '')}")
    return 0


def run_int8_sweep(args: argparse.Namespace) -> int:
    from explorer.commands._common import stderr_progress
    from explorer.core.prompting.int8_sweep import int8_sweep
    from explorer.core.prompting.sweep import parse_shots, sweep_chart, sweeps_to_dict
    from explorer.core.prompting.tasks import load_task

    parse_shots(args.shots)  # a bad K list or task is said before the model loads
    load_task(args.task, seed=args.seed)
    lm = load(args.model)
    results = int8_sweep(lm, args.task, args.shots, draws=args.draws, limit=args.limit, seed=args.seed,
                         progress=stderr_progress)
    if args.export:
        export_chart(sweep_chart(results, title=f"{lm.name}: float32 against int8, K-shot {args.task}"), args.export)
    if args.json:
        print_json(sweeps_to_dict(results, details=args.details))
        return 0
    for r in results:
        for p in r.points:
            print(f"{r.model:<20} K = {p.shots:<3} accuracy {p.accuracy:6.1%}  95% CI [{p.ci_low:.1%}, "
                  f"{p.ci_high:.1%}]  n = {p.n}")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    from explorer.commands._common import stderr_progress
    from explorer.core.io.bundled_data import resolve_data
    from explorer.core.tuning.prune import prune_chart, prune_sweep

    resolve_data(args.data)  # a missing data file is said before the model loads
    lm = load(args.model)
    result = prune_sweep(lm, args.data, step=args.step, seed=args.seed, progress=stderr_progress)
    if args.export:
        export_chart(prune_chart(result), args.export)
    if args.json:
        print_json(result.to_dict())
        return 0
    print(f"{result.model} on {result.data}: frozen fine-tune, {result.train_rows} training / {result.val_rows} "
          f"held-out rows, {result.layers}×{result.heads_per_layer} heads")
    print(f"rule: {result.rule}")
    print(f"{'removed':>8}{'left':>6}{'parameters':>13}{'accuracy':>10}{'random':>9}{'important first':>17}")
    for s in result.steps:
        print(f"{s.removed:>8}{s.heads_left:>6}{s.parameters:>13,}{s.accuracy:>10.3f}{s.random_accuracy:>9.3f}"
              f"{s.reverse_accuracy:>17.3f}")
    print(f"majority class {result.majority_baseline:.3f}; pruned vs gated heads: largest logit difference "
          f"{result.check['max_logit_difference']:.2e}")
    return 0


def run_distill(args: argparse.Namespace) -> int:
    from explorer.commands._common import stderr_progress
    from explorer.core.models.lineage import lineage

    lines = lineage(args.model)
    comparison = None
    if args.teacher:
        from explorer.core.tuning.distill import compare_models, distill_chart

        student, teacher = load(args.model), load(args.teacher)
        comparison = compare_models(student, teacher, progress=stderr_progress)
        if args.export:
            export_chart(distill_chart(comparison), args.export)
    if args.json:
        print_json({"lineage": lines.to_dict(), "comparison": comparison.to_dict() if comparison else None})
        return 0
    print(f"{lines.model}: {lines.summary}")
    for step in lines.steps:
        print(f"  {step.relation:<24} {step.name:<44} ({step.source})")
    if comparison is not None:
        print(f"{'':<26}{comparison.student.name[:18]:>20}{comparison.teacher.name[:18]:>20}{'ratio':>8}")
        s, t = comparison.student, comparison.teacher
        for label, a, b, fmt in (("parameters", s.parameters, t.parameters, lambda n: f"{n / 1e6:.1f} M"),
                                 ("bytes on disk", s.bytes_on_disk, t.bytes_on_disk, _mb),
                                 ("time per sentence", s.seconds_per_input, t.seconds_per_input,
                                  lambda v: f"{v * 1000:.1f} ms"),
                                 ("probe accuracy", s.probe_accuracy, t.probe_accuracy, lambda v: f"{v:.3f}")):
            print(f"{label:<26}{fmt(a):>20}{fmt(b):>20}{a / b if b else float('nan'):>8.2f}")
    return 0
