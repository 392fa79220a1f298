"""``lm-explorer mask`` (BERT-family masking, with statistics over many samples) and ``lm-explorer objective``."""

from __future__ import annotations

import argparse
import sys

from explorer.commands._common import (
    add_seed_arg,
    add_text_args,
    export_chart,
    export_path,
    finite_float,
    int_range,
    load,
    print_json,
    read_text,
)
from explorer.core.io.errors import InputError

SHARE = finite_float(0.0, 1.0)


def register(sub: argparse._SubParsersAction) -> None:
    from explorer.core.pretraining.masking import STRATEGIES
    from explorer.core.pretraining.objectives import OBJECTIVES

    p = sub.add_parser("mask", help="mask a text as BERT / WWM / ERNIE / SpanBERT would (seeded)")
    add_text_args(p)
    p.add_argument("--model", default="minilm", help="model whose tokenizer is used (default: minilm)")
    p.add_argument("--strategy", default="random", choices=STRATEGIES)
    add_seed_arg(p)
    p.add_argument("--ratio", type=finite_float(0.0, 1.0, lo_open=True), default=0.15,
                   help="share of tokens (units for ERNIE) to mask, in (0, 1]")
    p.add_argument("--p-mask", type=SHARE, default=0.8, help="share of chosen tokens replaced by the mask token")
    p.add_argument("--p-random", type=SHARE, default=0.1, help="share replaced by a random token (rest: kept)")
    p.add_argument("--geometric-p", type=finite_float(0.0, 1.0, lo_open=True), default=0.2,
                   help="SpanBERT span length parameter, in (0, 1]")
    p.add_argument("--max-span", type=int_range(1, 100), default=10, help="SpanBERT longest span, in words (1–100)")
    p.add_argument("--samples", type=int_range(0, 100_000), default=0,
                   help="also draw K maskings and print statistics (0–100000)")
    p.add_argument("--fill", type=int_range(0, 100), default=0, metavar="K",
                   help="also predict the masked tokens (top K, 0–100)")
    p.add_argument("--export", type=export_path, help="with --samples: write the span-length chart (.png/.svg/.csv/.json)")
    p.add_argument("--export-frequency", type=export_path, help="with --samples: write the per-token frequency chart")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_mask)

    p = sub.add_parser("fill", help="fill every [MASK] of a text in one pass of a masked LM")
    add_text_args(p)
    p.add_argument("--model", default="minilm-mlm",
                   help="a masked LM (default: minilm-mlm, MiniLM with masked-LM pre-training continued by this project)")
    p.add_argument("--top-k", type=int_range(1, 100), default=5, help="candidates per mask (1–100, default: 5)")
    p.add_argument("--compare", metavar="MODELS",
                   help="comma-separated causal LMs (e.g. smollm2,gemma3): their guesses for the first blank from the "
                        "words before it only, beside the masked LM's (both sides)")
    p.add_argument("--json", action="store_true", help="print JSON: masks = [{position, candidates}]")
    p.set_defaults(func=run_fill)

    p = sub.add_parser("objective", help="a pre-training objective's input, target and attention mask")
    add_text_args(p)
    p.add_argument("--model", default="minilm", help="model whose tokenizer is used (and ELECTRA's generator)")
    p.add_argument("--kind", default="gpt", choices=OBJECTIVES)
    add_seed_arg(p)
    p.add_argument("--ratio", type=finite_float(0.0, 1.0, lo_open=True), default=None,
                   help="share to corrupt, in (0, 1] (default: the objective's own)")
    p.add_argument("--lambda", dest="poisson_lambda", type=finite_float(0.0, 100.0, lo_open=True), default=3.0,
                   help="text-infill Poisson λ, in (0, 100]")
    p.add_argument("--stream", choices=("content", "query"), default="content", help="XLNet: which mask to export")
    p.add_argument("--export", type=export_path, help="write the attention-mask heatmap (.png/.svg/.csv/.json)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_objective)


def _note(text: str) -> None:
    if text:
        print(f"lm-explorer: {text}", file=sys.stderr)


def run_mask(args: argparse.Namespace) -> int:
    from explorer.commands._common import stderr_progress
    from explorer.core.pretraining.masking import MaskParams, mask_text, sample_stats
    from explorer.core.pretraining.masking_charts import span_hist_chart, token_frequency_chart
    from explorer.core.pretraining.words import tokenize_words

    text = read_text(args)
    params = MaskParams(ratio=args.ratio, p_mask=args.p_mask, p_random=args.p_random,
                        geometric_p=args.geometric_p, max_span=args.max_span)
    params.validate()
    lm = load(args.model)
    tt = tokenize_words(lm.tokenizer, text, max_length=lm.max_length)
    mk = mask_text(tt, lm.tokenizer, args.strategy, seed=args.seed, params=params)
    _note(mk.note)
    out = mk.to_dict()
    stats = None
    if args.samples:
        stats = sample_stats(tt, args.strategy, samples=args.samples, seed=args.seed, params=params,
                             progress=stderr_progress)
        out["stats"] = stats.to_dict()
        if args.export:
            export_chart(span_hist_chart(stats), args.export)
        if args.export_frequency:
            export_chart(token_frequency_chart(stats), args.export_frequency)
    if args.fill:
        from explorer.core.pretraining.fillmask import fill_masks

        res = fill_masks(_filler(lm), tt.ids, mk.input_ids, mk.masked, top_k=args.fill)
        out["fill"] = res.to_dict()
    if args.json:
        print_json(out)
        return 0
    act = mk.action_of
    marks = {"mask": "▮", "random": "~", "keep": "="}
    print(f"{mk.strategy}: {len(mk.masked)} of {len(tt.candidates)} tokens (seed {mk.seed}); "
          "▮ masked, ~ random token, = kept")
    print("original:", " ".join(f"[{t}]" if i in act else t for i, t in enumerate(tt.tokens)))
    print("input:   ", " ".join(f"{marks[act[i]]}{t}" if i in act else t for i, t in enumerate(mk.input_tokens)))
    if mk.spans:
        print("spans:   ", ", ".join(f"{s}-{e}:{' '.join(tt.tokens[s:e])}" for s, e in mk.spans))
    if stats is not None:
        print(f"over {stats.samples} samples: mask ratio {stats.mask_ratio_mean:.4f} (budget {stats.budget} tokens), "
              f"{stats.unit_length_text()}")
        print("actions:  " + ", ".join(f"{k} {v:.3f}" for k, v in stats.action_fractions.items()))
    if "fill" in out:
        res = out["fill"]
        print(res["message"])
        for p in res["predictions"]:
            guesses = ", ".join(f"{t} {q:.2f}" for t, q in zip(p["tokens"], p["probs"], strict=True))
            print(f"  {p['position']:>4} {p['original']:<14} → {guesses}")
    return 0


def _filler(lm: object) -> object:
    """The model that fills ``lm``'s masks: itself, or minilm-mlm for the published MiniLM (same vocabulary)."""
    from explorer.core.pretraining.fillmask import filler_name

    name = filler_name(lm)
    return load(name) if name else lm


def run_fill(args: argparse.Namespace) -> int:
    from explorer.core.pretraining.fillmask import compare_blank, fill_text

    text = read_text(args)
    if args.compare is not None:
        names = [n.strip() for n in args.compare.split(",") if n.strip()]
        if not names:
            raise InputError("--compare takes model names separated by commas, e.g. smollm2,gemma3.")
        mlm = load(args.model)
        out = compare_blank(mlm, [load(n) for n in names], text, top_k=args.top_k)
        if args.json:
            print_json(out)
            return 0
        print(f"{out['text']}{'  (' + out['note'] + ')' if out['note'] else ''}")
        for row in out["rows"]:
            guesses = ", ".join(f"{c['token']} {c['probability']:.3f}" for c in row["candidates"])
            print(f"  {row['model']:<12} {row['context']:<10} → {guesses or row['note']}")
        return 0
    lm = load(args.model)
    out = fill_text(lm, text, top_k=args.top_k)
    if args.json:
        print_json(out)
        return 0
    print(out["message"])
    for k, m in enumerate(out["masks"], 1):
        guesses = ", ".join(f"{c['token']} {c['probability']:.3f}" for c in m["candidates"])
        print(f"  mask {k} (token {m['position']}): {guesses}")
    return 0


def run_objective(args: argparse.Namespace) -> int:
    from explorer.core.pretraining.objectives import ObjectiveParams, attention_chart
    from explorer.core.pretraining.objectives import run_objective as build

    text = read_text(args)
    lm = load(args.model)
    generator = [lm, _filler(lm)] if args.kind == "electra" else lm
    res = build(args.kind, lm.tokenizer, text, seed=args.seed,
                params=ObjectiveParams(ratio=args.ratio, poisson_lambda=args.poisson_lambda),
                generator=generator, max_length=lm.max_length)
    _note(res.note)
    if args.export:
        export_chart(attention_chart(res, args.stream), args.export)
    if args.json:
        print_json(res.to_dict())
        return 0
    print(f"{res.title}: {res.description}")
    if res.generator:
        print(f"generator: {res.generator}")
    print("input: ", " ".join(res.input_tokens))
    print("target:", " ".join("·" if t is None else t for t in res.target_tokens))
    m = res.attention_mask
    print(f"attention mask {m.shape[0]}×{m.shape[1]}, {int(m.sum())} allowed pairs"
          + (f"; encoder rows 0..{res.n_encoder - 1}, decoder rows after" if res.n_encoder else ""))
    if res.order is not None:
        print("factorisation order:", " ".join(str(i) for i in res.order))
    return 0
