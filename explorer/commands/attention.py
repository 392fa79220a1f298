"""``lm-explorer attention``, ``similarity`` and ``embed``: the Attention and Embeddings panels, headless."""

from __future__ import annotations

import argparse
import sys

import numpy as np

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
    stderr_progress,
)
from explorer.core.inspect.attention_store import DEFAULT_TOP_K
from explorer.core.io.errors import InputError


def _head_arg(value: str) -> int | str:
    if value in ("mean", "max", "rollout"):
        return value
    try:
        head = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a head number (0, 1, …), mean, max or rollout") from None
    if not 0 <= head < 10_000:
        raise argparse.ArgumentTypeError(f"heads are numbered from 0, not '{value}'")
    return head


LAYER = int_range(-10_000, 10_000)  # the model's real range is checked once it is known


OCCURRENCE = int_range(1, 100_000)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("attention", help="attention weights of every layer and head of a text (or sentence pair)")
    add_text_args(p)
    p.add_argument("--pair", help="a second sentence (BERT-style pair; the decoder input for encoder-decoders)")
    p.add_argument("--model", default="minilm", help="model alias, folder or hub id (default: minilm)")
    p.add_argument("--layer", type=LAYER, help="only this layer (0-based; -1 = last)")
    p.add_argument("--head", type=_head_arg, help="only this head (0-based), or mean / max / rollout")
    p.add_argument("--source", choices=["self", "decoder", "cross"], default="self",
                   help="encoder-decoder models: encoder self-, decoder self- or cross-attention")
    p.add_argument("--hide-special", action="store_true", help="drop [CLS]/[SEP]-like tokens and renormalise")
    p.add_argument("--threshold", type=finite_float(0.0, 1.0, lo_open=True), metavar="SHARE",
                   help="keep each token's strongest links up to this share of its attention (exBERT), in (0, 1], "
                   "e.g. 0.8")
    p.add_argument("--export", type=export_path, metavar="FILE", help="write the heatmap as .png, .svg, .csv or .json")
    p.add_argument("--json", action="store_true", help="print tokens and attentions [layer][head][query][key]")
    p.add_argument("--top-k", type=int_range(1, 100_000), default=DEFAULT_TOP_K, metavar="K",
                   help=f"long inputs: keys kept per token, layer and head (exact weights; default {DEFAULT_TOP_K}); "
                   "the layer asked for is recomputed in full")
    p.set_defaults(func=run_attention)

    p = sub.add_parser("similarity", help="the same word in several contexts: cosine similarity per layer")
    p.add_argument("--model", default=None, help="model alias, folder or hub id (default: the preset's, or minilm)")
    p.add_argument("--preset", metavar="NAME", help="a shipped preset (see --list-presets); its sentences and senses")
    p.add_argument("--list-presets", action="store_true", help="list the shipped presets and exit")
    p.add_argument("--a", metavar="TEXT", help="first sentence")
    p.add_argument("--word-a", metavar="W", help="the word in the first sentence")
    p.add_argument("--occurrence-a", type=OCCURRENCE, default=1, metavar="N", help="which occurrence (1 = first)")
    p.add_argument("--sense-a", default="", metavar="LABEL", help="sense label of the first sentence")
    p.add_argument("--b", metavar="TEXT", help="second sentence")
    p.add_argument("--word-b", metavar="W", help="the word in the second sentence (default: --word-a)")
    p.add_argument("--occurrence-b", type=OCCURRENCE, default=1, metavar="N", help="which occurrence (1 = first)")
    p.add_argument("--sense-b", default="", metavar="LABEL", help="sense label of the second sentence")
    p.add_argument("--context", action="append", default=[], metavar="TEXT|WORD[|SENSE]",
                   help="one more sentence, its word and optional sense label (repeatable)")
    p.add_argument("--view", choices=["raw", "centred", "minus-baseline"], default="raw",
                   help="raw cosine, cosine after subtracting each layer's mean token vector, or cosine minus the "
                        "baseline (chart and table; the JSON has all three)")
    add_seed_arg(p, help="seed of the random token pairs of the baseline")
    p.add_argument("--export", type=export_path, metavar="FILE", help="write the chart as .png, .svg, .csv or .json")
    p.add_argument("--json", action="store_true", help="print JSON ('layers': cosine per layer, 0 = embeddings)")
    p.set_defaults(func=run_similarity)

    p = sub.add_parser("embed", help="every occurrence of a word across files, projected to 2-D per layer")
    p.add_argument("files", nargs="+", help="text files to search")
    p.add_argument("--word", required=True, help="the word to find")
    p.add_argument("--model", default="minilm", help="model alias, folder or hub id (default: minilm)")
    p.add_argument("--layer", type=LAYER, default=-1, help="layer to project (0 = embeddings, -1 = last)")
    p.add_argument("--method", choices=["pca", "umap"], default="pca", help="projection (umap if installed)")
    p.add_argument("--color", choices=["file", "cluster"], default="file", help="colour points by file or k-means cluster")
    p.add_argument("--clusters", type=int_range(1, 50), default=2,
                   help="number of k-means clusters for --color cluster (1–50)")
    p.add_argument("--neighbours", type=int_range(0, 100), default=3, metavar="K",
                   help="list each point's K nearest occurrences (0–100)")
    p.add_argument("--max", type=int_range(1, 100_000), default=400, dest="max_occurrences",
                   help="at most this many occurrences (1–100000)")
    add_seed_arg(p)
    p.add_argument("--export", type=export_path, metavar="FILE", help="write the scatter as .png, .svg, .csv or .json")
    p.add_argument("--json", action="store_true", help="print the points and their neighbours as JSON")
    p.set_defaults(func=run_embed)


def run_attention(args: argparse.Namespace) -> int:
    from explorer.core.inspect.analysis import analyse
    from explorer.core.inspect.attention import attention_heatmap_spec, layer_matrix, top_k_edges

    text = read_text(args)
    loaded = load(args.model)
    a = analyse(loaded, text, args.pair, progress=stderr_progress, top_k=args.top_k)
    if a.note:
        print(f"lm-explorer: {a.note}", file=sys.stderr)
    layer = args.layer
    if layer is not None and not -a.num_layers <= layer < a.num_layers:
        raise InputError(f"Layer {layer} does not exist: {loaded.name} has layers 0–{a.num_layers - 1}.")
    if isinstance(args.head, int) and not -a.num_heads <= args.head < a.num_heads:
        raise InputError(f"Head {args.head} does not exist: {loaded.name} has heads 0–{a.num_heads - 1}.")
    if args.source != "self" and a.kind != "encoder-decoder":
        raise InputError(f"--source {args.source} needs an encoder-decoder model; {loaded.name} is a {a.kind}.")
    if args.export:
        head = args.head if args.head is not None else "mean"
        spec = attention_heatmap_spec(a, layer if layer is not None else -1, head, args.hide_special,
                                      args.threshold, source=args.source)
        export_chart(spec, args.export)
    if args.json:
        if isinstance(args.head, str):
            raise InputError("--json gives raw heads; use a head number (or no --head) with --json.")
        out = a.to_dict(layer=layer, head=args.head)
        out.update(layer=layer, head=args.head, num_layers=a.num_layers, num_heads=a.num_heads)
        if a.kind == "encoder-decoder":
            out["decoder_tokens"] = a.decoder_tokens
            for key, arr in (("decoder_attentions", a.decoder_attentions), ("cross_attentions", a.cross_attentions)):
                sl = arr if layer is None else arr[layer]
                if args.head is not None:
                    sl = sl[args.head] if layer is not None else sl[:, args.head]
                out[key] = np.asarray(sl, dtype=np.float64).tolist()
        print_json(out)
        return 0
    layer_no = (layer if layer is not None else -1) % a.num_layers
    head = args.head if args.head is not None else "mean"
    print(f"{loaded.name}: {a.num_tokens} tokens, {a.num_layers} layers × {a.num_heads} heads"
          f"{' (causal: each token sees only the left)' if a.causal else ''}")
    print(f"layer {layer_no}, {head if isinstance(head, str) else 'head ' + str(head)}: each token's strongest links")
    m = layer_matrix(a.attentions, layer_no, head)
    for q in range(a.num_tokens):
        row = m[q : q + 1]
        tops = top_k_edges(row, 3)
        links = ", ".join(f"{a.labels[e.key]} {e.weight:.2f}" for e in tops)
        seg = f"[{a.segment_ids[q]}] " if a.pair is not None else ""
        print(f"  {q:>4} {seg}{a.labels[q]:<14} → {links}")
    return 0


def _similarity_contexts(args: argparse.Namespace) -> tuple[list, list[str] | None, str]:
    """The contexts to compare (from --preset, --a/--b and --context), the preset's reference and model."""
    from explorer.core.inspect.embeddings import Context, load_presets

    contexts: list = []
    reference = None
    model = "minilm"
    if args.preset:
        presets = load_presets().get("presets", [])
        preset = next((p for p in presets if p["name"].lower() == args.preset.lower()), None)
        if preset is None:
            preset = next((p for p in presets if p["name"].lower().startswith(args.preset.lower())), None)
        if preset is None:
            raise InputError(f"No preset '{args.preset}'. Shipped presets: "
                             + "; ".join(p["name"] for p in presets))
        contexts += [Context(c["text"], c["word"], c.get("occurrence", 1) - 1, c.get("sense", ""))
                     for c in preset["contexts"]]
        reference = preset.get("reference")
        model = preset.get("model", model)
    if args.occurrence_a < 1 or args.occurrence_b < 1:
        raise InputError("Occurrences count from 1 (the first occurrence).")
    if args.a or args.b:
        if not (args.a and args.b and args.word_a):
            raise InputError("Give --a TEXT --word-a W and --b TEXT (or use --preset / --context).")
        contexts += [Context(args.a, args.word_a, args.occurrence_a - 1, args.sense_a),
                     Context(args.b, args.word_b or args.word_a, args.occurrence_b - 1, args.sense_b)]
    for spec in args.context:
        parts = spec.split("|")
        if len(parts) not in (2, 3) or not parts[0].strip() or not parts[1].strip():
            raise InputError(f"--context takes 'TEXT|WORD' or 'TEXT|WORD|SENSE', not '{spec}'.")
        contexts.append(Context(parts[0].strip(), parts[1].strip(), 0, parts[2].strip() if len(parts) == 3 else ""))
    if len(contexts) < 2:
        raise InputError("Give at least two sentences: --a/--word-a/--b, --context (repeatable) or --preset.")
    return contexts, reference, model


def run_similarity(args: argparse.Namespace) -> int:
    from explorer.core.inspect.embeddings import (
        VIEWS,
        compare_contexts,
        load_presets,
        load_reference_texts,
        similarity_chart_spec,
    )

    if args.list_presets:
        for p in load_presets().get("presets", []):
            print(f"{p['name']}  (model {p.get('model', 'minilm')}, {len(p['contexts'])} sentences)")
        return 0
    contexts, reference, preset_model = _similarity_contexts(args)
    loaded = load(args.model or preset_model)
    result = compare_contexts(loaded, contexts, reference=reference or load_reference_texts(), seed=args.seed,
                              progress=stderr_progress)
    for note in result.notes:
        print(f"lm-explorer: {note}", file=sys.stderr)
    if args.export:
        export_chart(similarity_chart_spec(result, args.view), args.export)
    if args.json:
        out = result.to_dict()
        out["view"] = args.view
        print_json(out)
        return 0
    view = args.view
    base = result.baseline_for(view)
    means = result.sense_means(view)
    print(f"{loaded.name}: '{contexts[0].word}' in {len(contexts)} contexts, {VIEWS[view]}, per layer")
    if {"same", "different"} <= set(means):
        print(f"{'layer':>5}  {'same sense':>10}  {'different':>9}  {'baseline':>8}  same − different")
        for i, (s, d, b) in enumerate(zip(means["same"], means["different"], base, strict=True)):
            print(f"{i:>5}  {s:10.3f}  {d:9.3f}  {b:8.3f}  {s - d:+.3f}")
        best = result.best_layer(view)
        print(f"best layer {best}: same sense {means['same'][best]:.3f} vs different sense "
              f"{means['different'][best]:.3f}")
    else:
        first = result.pairs[0].values(view, result.baseline)
        print(f"{'layer':>5}  {'cosine':>7}  {'baseline':>8}  above baseline")
        for i, (c, b) in enumerate(zip(first, base, strict=True)):
            print(f"{i:>5}  {c:7.3f}  {b:8.3f}  {c - b:+.3f}")
    print("layer 0 = embeddings; baseline = mean cosine of random token pairs from different sentences and "
          "different words at that layer (Ethayarajh 2019)")
    return 0


def run_embed(args: argparse.Namespace) -> int:
    from explorer.core.inspect.corpus import collect_corpus, corpus_chart_spec, nearest_neighbours
    from explorer.core.io.fileio import read_text_file

    files = []
    for path in args.files:
        tf = read_text_file(path)
        if tf.note:
            print(f"lm-explorer: {path}: {tf.note}", file=sys.stderr)
        files.append((path, tf.text))
    loaded = load(args.model)
    corpus = collect_corpus(loaded, files, args.word, max_occurrences=args.max_occurrences, progress=stderr_progress)
    for note in corpus.notes:
        print(f"lm-explorer: {note}", file=sys.stderr)
    spec = corpus_chart_spec(corpus, args.layer, args.method, args.color, args.clusters, args.seed)
    if args.method == "umap" and spec.meta["method"] != "umap":
        print("lm-explorer: UMAP is not installed (pip install umap-learn); used PCA.", file=sys.stderr)
    if args.export:
        export_chart(spec, args.export)
    layer = spec.meta["layer"]
    vec = corpus.vectors[:, layer]
    coords: dict[int, tuple[float, float, str]] = {}
    for s in spec.series:
        for k, i in enumerate(spec.meta["index"][s.name]):
            coords[i] = (s.x[k], s.y[k], s.name)
    points = []
    for i, p in enumerate(corpus.points):
        x, y, group = coords[i]
        nn = nearest_neighbours(vec, i, args.neighbours)
        points.append({"file": p.file, "sentence": p.sentence, "start": p.start, "end": p.end, "x": x, "y": y,
                       "group": group, "neighbours": [{"index": j, "cosine": c} for j, c in nn]})
    if args.json:
        print_json({"model": loaded.name, "word": corpus.word, "layer": layer, "method": spec.meta["method"],
                    "points": points, "notes": corpus.notes})
        return 0
    print(f"{loaded.name}: {len(points)} occurrences of '{corpus.word}', layer {layer}, {spec.meta['method'].upper()}")
    for i, pt in enumerate(points):
        near = ", ".join(f"#{n['index']} {n['cosine']:.2f}" for n in pt["neighbours"])
        print(f"  #{i:<3} ({pt['x']:7.2f}, {pt['y']:7.2f}) {pt['group'][:20]:<20} {pt['sentence'][:60]!r}  near: {near}")
    return 0
