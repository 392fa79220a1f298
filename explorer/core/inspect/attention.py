"""Attention utilities on an :class:`~explorer.core.inspect.analysis.Analysis`: head aggregates, rollout
(Abnar & Zuidema 2020), dropping special tokens, top-k edges and exBERT's share threshold, and the
heatmap chart spec the window and the CLI both draw.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from explorer.core.io.charts import ChartSpec
from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress

#: What a view can show for a layer: one head index, or one of these aggregates.
AGGREGATES = ("mean", "max", "rollout")


def head_mean(attentions: np.ndarray) -> np.ndarray:
    """Mean over heads: [layer, head, query, key] -> [layer, query, key]."""
    return attentions.mean(axis=1)


def head_max(attentions: np.ndarray) -> np.ndarray:
    """Max over heads: [layer, head, query, key] -> [layer, query, key] (rows no longer sum to 1)."""
    return attentions.max(axis=1)


def rollout(attentions: np.ndarray, residual: float = 0.5) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020): per layer A = (1-r)·mean_heads + r·I, rows renormalised,
    multiplied through the layers. Returns the cumulative map after each layer: [layer, query, key].
    """
    mean = head_mean(attentions).astype(np.float64)  # [layer, query, key]
    n = mean.shape[-1]
    eye = np.eye(n)
    out = np.empty_like(mean)
    acc = eye
    for layer in range(mean.shape[0]):
        a = (1.0 - residual) * mean[layer] + residual * eye
        a = a / a.sum(axis=-1, keepdims=True)
        acc = a @ acc  # rollout_l = A_l · rollout_{l-1}
        out[layer] = acc
    return out.astype(np.float32)


def compact_head_mean(attentions: object, layer: int) -> object:
    """Mean over heads of one layer's top-k weights as a sparse [query, key] matrix (scipy CSR); the
    weights outside each head's top-k count as 0."""
    from scipy.sparse import csr_matrix

    idx, w = attentions.sparse_layer(layer)  # each [head, query, k]
    heads, q, _k = idx.shape
    rows = np.broadcast_to(np.arange(q)[None, :, None], idx.shape)
    return csr_matrix((w.ravel() / heads, (rows.ravel(), idx.ravel().astype(np.int64))),
                      shape=(q, attentions.shape[3]))  # duplicates (one key in several heads) add up


def compact_rollout(attentions: object, layer: int, rows: np.ndarray | list[int] | range | None = None,
                    residual: float = 0.5) -> np.ndarray:
    """Rollout up to ``layer`` from the compact (top-k) form, for the query ``rows`` only: [rows, key].

    Same formula as :func:`rollout` (mean of heads, + r·I, rows renormalised, multiplied through the layers).
    Each layer's mean is its kept top-k weights plus the mass outside them spread evenly over the keys the
    query may see (all keys, or the left context of a causal model), so rows still sum to 1. Computed as
    row vectors times sparse layers, right to left: it never holds an n x n matrix.
    """
    num_layers = attentions.shape[0]
    layer = layer % num_layers
    n = attentions.shape[3]
    causal = bool(getattr(attentions, "causal", False))
    rows = np.arange(attentions.shape[2]) if rows is None else np.asarray(list(rows), dtype=np.int64)
    r = np.zeros((len(rows), n))  # [rows, key]
    r[np.arange(len(rows)), rows] = 1.0
    seen = np.arange(1, n + 1, dtype=np.float64) if causal else np.full(n, float(n))  # keys each query sees
    for li in range(layer, -1, -1):
        mean = compact_head_mean(attentions, li)  # sparse [query, key]
        dropped = np.clip(1.0 - np.asarray(mean.sum(axis=1)).ravel(), 0.0, None)  # [query]
        x = r  # each row of (1-r)·(kept + spread) + r·I sums to 1: no renormalising needed
        spread = x * (dropped / seen)[None, :]  # [rows, query]: mass each query spreads evenly
        if causal:  # key j receives from every query q >= j
            even = np.cumsum(spread[:, ::-1], axis=1)[:, ::-1]
        else:
            even = np.repeat(spread.sum(axis=1, keepdims=True), n, axis=1)
        r = (1.0 - residual) * (np.asarray(x @ mean) + even) + residual * x
    return r.astype(np.float32)


def layer_matrix(attentions: np.ndarray, layer: int, head: int | str) -> np.ndarray:
    """The [query, key] map of one head, or the layer's mean / max over heads, or rollout up to it."""
    num_layers = attentions.shape[0]
    if not -num_layers <= layer < num_layers:
        raise InputError(f"Layer {layer} does not exist: this model has layers 0–{num_layers - 1}.")
    if head == "rollout":
        if not getattr(attentions, "exact", True):
            return compact_rollout(attentions, layer)
        return rollout(np.stack([attentions[i] for i in range(layer % num_layers + 1)]))[-1]
    return head_matrix(attentions[layer], head)


def head_matrix(layer_attention: np.ndarray, head: int | str) -> np.ndarray:
    """The [query, key] map of one head of a layer's [head, query, key] weights, or their mean / max over heads."""
    num_heads = layer_attention.shape[0]
    if isinstance(head, str):
        if head == "mean":
            return layer_attention.mean(axis=0)
        if head == "max":
            return layer_attention.max(axis=0)
        raise InputError(f"Unknown head aggregate '{head}': use a head number, mean, max or rollout.")
    if not -num_heads <= head < num_heads:
        raise InputError(f"Head {head} does not exist: this model has heads 0–{num_heads - 1}.")
    return layer_attention[head]


def attention_rows(attentions: object, layer: int, head: int | str, rows: np.ndarray | list[int]) -> np.ndarray:
    """The query ``rows`` of :func:`layer_matrix` ([rows, key] float32), without a whole n x n map for the
    compact form: dense rows of the layer (exact weights, float16) or rollout from the top-k form."""
    rows = np.asarray(rows, dtype=np.int64)
    if getattr(attentions, "exact", True):
        return np.asarray(layer_matrix(attentions, layer, head)[rows], dtype=np.float32)
    num_layers, num_heads = attentions.shape[:2]
    layer_matrix_check(num_layers, num_heads, layer, head)
    if head == "rollout":
        key = ("rollout", layer % num_layers, rows.tobytes())
        return attentions.memo(key, lambda: compact_rollout(attentions, layer, rows))
    if head in ("mean", "max"):
        return attentions.head_rows(layer, head, rows)  # [rows, key] float32, from the float32 weights
    return attentions.rows(layer, rows)[head].astype(np.float32)  # [head, rows, key] float16 -> [rows, key]


def rows_ready(attentions: object, layer: int, head: int | str, rows: np.ndarray | list[int]) -> bool:
    """True when :func:`attention_rows` returns at once (nothing to recompute): the GUI may call it directly."""
    if getattr(attentions, "exact", True):
        return True
    rows = np.asarray(rows, dtype=np.int64)
    if head == "rollout":
        return attentions.has(("rollout", layer % attentions.shape[0], rows.tobytes()))
    if head in ("mean", "max"):
        return attentions.head_rows_ready(layer, head, rows)
    return attentions.rows_ready(layer, rows)


def prepare_rows(attentions: object, requests: list[tuple[int, int | str, list[int]]],
                 progress: Progress = no_progress, cancel: threading.Event | None = None) -> int:
    """Compute (and cache in the compact store) each (layer, head, rows) of ``requests`` in the background,
    so the window then draws them at once; returns how many were computed."""
    done = 0
    for i, (layer, head, rows) in enumerate(requests):
        check(cancel)
        progress(i / max(1, len(requests)), f"Recomputing layer {layer % attentions.shape[0]}…")
        if not rows_ready(attentions, layer, head, rows):
            attention_rows(attentions, layer, head, rows)
            done += 1
    progress(1.0, "Done")
    return done


def compact_tiles(attentions: object, layer: int, rows: np.ndarray, cols: np.ndarray, row_starts: np.ndarray,
                  col_starts: np.ndarray, renormalise: bool = False) -> np.ndarray:
    """Block sums of every head's kept top-k weights between ``rows`` and ``cols`` (the model view of a long
    input): [head, row block, col block], blocks starting at ``row_starts``/``col_starts`` (positions in rows/cols)."""
    idx, w = attentions.sparse_layer(layer)  # [head, query, k]
    heads = idx.shape[0]
    n = attentions.shape[3]
    col_pos = np.full(n, -1, dtype=np.int64)
    col_pos[cols] = np.arange(len(cols))
    col_block = np.searchsorted(col_starts, np.arange(len(cols)), side="right") - 1  # [col] -> block
    row_block = np.searchsorted(row_starts, np.arange(len(rows)), side="right") - 1
    sub_i = idx[:, rows].astype(np.int64)  # [head, rows, k]
    sub_w = w[:, rows]
    pos = col_pos[sub_i]
    ok = (pos >= 0) & (sub_w > 0)
    h_ix, r_ix, _k = np.nonzero(ok)
    vals = sub_w[ok].astype(np.float64)
    if renormalise:  # each row's kept weights among ``cols`` sum to 1, as the dense view's renormalised rows
        sums = np.zeros((heads, len(rows)))
        np.add.at(sums, (h_ix, r_ix), vals)
        vals = vals / sums[h_ix, r_ix]
    out = np.zeros((heads, len(row_starts), len(col_starts)), dtype=np.float64)
    np.add.at(out, (h_ix, row_block[r_ix], col_block[pos[ok]]), vals)
    return out.astype(np.float32)


def layer_matrix_check(num_layers: int, num_heads: int, layer: int, head: int | str) -> None:
    """Raise InputError for a layer or head the model does not have."""
    if not -num_layers <= layer < num_layers:
        raise InputError(f"Layer {layer} does not exist: this model has layers 0–{num_layers - 1}.")
    if isinstance(head, str):
        if head not in AGGREGATES:
            raise InputError(f"Unknown head aggregate '{head}': use a head number, mean, max or rollout.")
    elif not -num_heads <= head < num_heads:
        raise InputError(f"Head {head} does not exist: this model has heads 0–{num_heads - 1}.")


def shown_rows(special_mask: list[bool], hide_special: bool, start: int, count: int) -> np.ndarray:
    """The token positions a view shows, ascending: ``count`` of the kept tokens (all, or all but the special
    ones) from the ``start``-th on (the Attention panel's 'Tokens from' and 'count')."""
    mask = np.asarray(special_mask, dtype=bool)
    kept = np.flatnonzero(~mask) if hide_special else np.arange(len(mask), dtype=np.int64)
    lo = min(max(0, start), max(0, len(kept) - 1))
    return kept[lo:min(len(kept), lo + max(1, count))].astype(np.int64)


def drop_tokens(matrix: np.ndarray, keep: np.ndarray | list[bool], renormalise: bool = True) -> np.ndarray:
    """Keep the rows and columns in ``keep`` ([query, key] -> [kept, kept]); rows renormalised to sum 1.

    Used to hide [CLS]/[SEP]: much of BERT's attention parks on them and drowns the rest.
    """
    keep = np.asarray(keep, dtype=bool)
    sub = matrix[np.ix_(keep, keep)].astype(np.float32)
    if renormalise:
        sums = sub.sum(axis=-1, keepdims=True)
        sub = np.divide(sub, sums, out=np.zeros_like(sub), where=sums > 0)
    return sub


@dataclass(frozen=True)
class Edge:
    """One attention link from a query token to a key token."""

    query: int
    key: int
    weight: float


def top_k_edges(matrix: np.ndarray, k: int) -> list[Edge]:
    """The ``k`` strongest links of a [query, key] map, strongest first."""
    flat = matrix.ravel()
    k = max(0, min(int(k), flat.size))
    if k == 0:
        return []
    idx = np.argpartition(-flat, k - 1)[:k]
    idx = idx[np.argsort(-flat[idx], kind="stable")]
    n = matrix.shape[1]
    return [Edge(int(i // n), int(i % n), float(flat[i])) for i in idx]


def threshold_mask(matrix: np.ndarray, share: float) -> np.ndarray:
    """exBERT's filter: per query row keep its strongest links until they hold ``share`` of the row's mass.

    Returns a bool [query, key] mask; share=1 keeps every non-zero link, share→0 keeps each row's top link.
    """
    share = float(np.clip(share, 0.0, 1.0))
    order = np.argsort(-matrix, axis=-1, kind="stable")  # [query, rank]
    sorted_w = np.take_along_axis(matrix, order, axis=-1)
    cum = np.cumsum(sorted_w, axis=-1)
    total = cum[:, -1:]
    # A link is kept if the mass before it is still short of the target share.
    before = cum - sorted_w
    keep_sorted = (before < share * total - 1e-9) | (np.arange(matrix.shape[1]) == 0)
    keep_sorted &= sorted_w > 0
    mask = np.zeros_like(matrix, dtype=bool)
    np.put_along_axis(mask, order, keep_sorted, axis=-1)
    return mask


def causal_mask(n: int) -> np.ndarray:
    """True where a decoder query may look (key ≤ query): the lower triangle."""
    return np.tril(np.ones((n, n), dtype=bool))


def view_name(head: int | str) -> str:
    return f"head {head}" if isinstance(head, int) else {"mean": "mean of heads", "max": "max of heads",
                                                          "rollout": "rollout"}[head]


def attention_heatmap_spec(
    analysis: object,
    layer: int,
    head: int | str = "mean",
    hide_special: bool = False,
    share: float | None = None,
    token_range: tuple[int, int] | None = None,
    source: str = "self",
) -> ChartSpec:
    """Heatmap of one attention map (rows = queries, columns = keys) with the settings in ``meta``.

    ``source`` picks "self" (encoder/decoder-only), "decoder" or "cross" for encoder-decoder models.
    Hidden special tokens are dropped and rows renormalised; ``share`` blanks links below exBERT's threshold.
    """
    a = analysis
    rows_labels, cols_labels = list(a.labels), list(a.labels)
    keep_rows = ~np.asarray(a.special_mask, dtype=bool) if hide_special else np.ones(a.num_tokens, bool)
    keep_cols = keep_rows
    if source == "self":
        att = a.attentions
    elif source == "decoder":
        att = a.decoder_attentions
        rows_labels = cols_labels = list(a.decoder_labels)
        keep_rows = keep_cols = np.ones(len(rows_labels), bool)
    elif source == "cross":
        att = a.cross_attentions
        rows_labels = list(a.decoder_labels)
        keep_rows = np.ones(len(rows_labels), bool)
    else:
        raise InputError(f"Unknown attention source '{source}': use self, decoder or cross.")
    if att is None:
        raise InputError(f"This model has no {source} attention.")
    if not getattr(att, "exact", True):
        m, rows_idx = _compact_self_rows(att, layer, head, keep_rows, share, token_range)
        labels = list(a.labels)
        return _heatmap(a, att, layer, head, hide_special, share, source, m, [labels[i] for i in rows_idx],
                        [labels[i] for i in rows_idx], rows_idx, rows_idx)
    m = layer_matrix(att, layer, head)
    if hide_special and source == "self":
        m = drop_tokens(m, keep_rows)
    elif hide_special and source == "cross":
        m = m[:, keep_cols]
        sums = m.sum(axis=-1, keepdims=True)
        m = np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)
    rows_labels = [lab for lab, k in zip(rows_labels, keep_rows, strict=True) if k]
    cols_labels = [lab for lab, k in zip(cols_labels, keep_cols, strict=True) if k]
    rows_idx = [i for i, k in enumerate(keep_rows) if k]
    cols_idx = [i for i, k in enumerate(keep_cols) if k]
    if share is not None and share < 1.0:
        m = np.where(threshold_mask(m, share), m, 0.0).astype(np.float32)
    if token_range is not None:
        lo, hi = max(0, token_range[0]), min(len(rows_labels), token_range[1])
        m = m[lo:hi, lo:hi] if source != "cross" else m[lo:hi]
        rows_labels = rows_labels[lo:hi]
        rows_idx = rows_idx[lo:hi]
        if source != "cross":
            cols_labels, cols_idx = cols_labels[lo:hi], cols_idx[lo:hi]
    return _heatmap(a, att, layer, head, hide_special, share, source, m, rows_labels, cols_labels, rows_idx, cols_idx)


def _compact_self_rows(att: object, layer: int, head: int | str, keep: np.ndarray, share: float | None,
                       token_range: tuple[int, int] | None) -> tuple[np.ndarray, list[int]]:
    """The shown [rows, cols] of a compact analysis, computing only the rows in the token range; the same
    steps as the dense path (drop hidden tokens and renormalise, threshold over the whole row, then slice)."""
    kept = np.nonzero(keep)[0]
    lo, hi = (0, len(kept)) if token_range is None else (max(0, token_range[0]), min(len(kept), token_range[1]))
    m = attention_rows(att, layer, head, kept[lo:hi])  # [rows, key]
    if not keep.all():
        m = m[:, kept]
        sums = m.sum(axis=-1, keepdims=True)
        m = np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)
    if share is not None and share < 1.0:
        m = np.where(threshold_mask(m, share), m, 0.0).astype(np.float32)
    return m[:, lo:hi], [int(i) for i in kept[lo:hi]]


def _heatmap(a: object, att: object, layer: int, head: int | str, hide_special: bool, share: float | None,
             source: str, m: np.ndarray, rows_labels: list[str], cols_labels: list[str], rows_idx: list[int],
             cols_idx: list[int]) -> ChartSpec:
    layer_no = layer % att.shape[0]
    causal = (a.causal and source == "self") or source == "decoder"
    title = f"{a.model_name} · layer {layer_no} · {view_name(head)}"
    if source != "self":
        title += f" · {source} attention"
    compact = not getattr(att, "exact", True)
    if compact and head == "rollout":
        title += f" · from each token's top {att.top_k} links"
    greyed = None
    if causal:  # [query, key]: the future a decoder cannot see, drawn grey
        greyed = np.asarray(cols_idx)[None, :] > np.asarray(rows_idx)[:, None]
        title += " · grey = masked (causal)"
    return ChartSpec(
        greyed=greyed,
        title=title, kind="heatmap", x_label="key (attended to)", y_label="query (attending)",
        matrix=np.asarray(m, dtype=np.float32), row_labels=rows_labels, col_labels=cols_labels,
        value_range=(0.0, float(max(m.max(), 1e-6)) if m.size else 1.0),
        colormap="viridis", legend=False,
        meta={"model": a.model_name, "layer": layer_no, "head": head, "hide_special": hide_special,
              "share": share, "source": source, "causal": causal, "rows": rows_idx, "cols": cols_idx,
              "text": a.text, "pair": a.pair, "truncated": a.truncated,
              "exact": not (compact and head == "rollout"), "top_k": att.top_k if compact else None},
    )


def model_grid(att: object, rows: np.ndarray, cols: np.ndarray, renorm: bool,
               compact: bool) -> tuple[np.ndarray, tuple[int, int], int]:
    """Every layer x head as one image of small tiles, each the block sums of its [query, key] map scaled to its
    own maximum: (grid [layer tiles, head tiles], (tile rows, tile columns), gap). ``compact``: a long input's
    store, read from each token's top-k links; ``renorm``: rows renormalised over the shown keys."""
    n_layers, n_heads = att.shape[:2]
    tr, tc = min(len(rows), 40), min(len(cols), 40)
    gap = 2
    b_r = (np.arange(tr) * len(rows) // tr).astype(int)
    b_c = (np.arange(tc) * len(cols) // tc).astype(int)
    grid = np.full((n_layers * (tr + gap) - gap, n_heads * (tc + gap) - gap), np.nan, dtype=np.float32)
    for layer in range(n_layers):
        if compact:  # long input: block sums of each head's top-k links
            tiles = compact_tiles(att, layer, rows, cols, b_r, b_c, renorm)  # [head, tr, tc]
        for h in range(n_heads):
            if compact:
                small = tiles[h]
                top = small.max()
                r, c = layer * (tr + gap), h * (tc + gap)
                grid[r:r + tr, c:c + tc] = small / top if top > 0 else small
                continue
            m = att[layer, h][np.ix_(rows, cols)]  # [query, key]
            if renorm:
                s = m.sum(-1, keepdims=True)
                m = np.divide(m, s, out=np.zeros_like(m), where=s > 0)
            small = np.add.reduceat(np.add.reduceat(m, b_r, axis=0), b_c, axis=1)  # block sums [tr, tc]
            top = small.max()
            r, c = layer * (tr + gap), h * (tc + gap)
            grid[r:r + tr, c:c + tc] = small / top if top > 0 else small
    return grid, (tr, tc), gap


def token_words(a: object) -> list[str]:
    """The whole word each token of an analysis belongs to (so 'contextual' finds 'context' + '##ual')."""
    spans: dict[tuple[int, int], list[int]] = {}
    for i, w in enumerate(a.word_ids):
        if w is not None and not a.special_mask[i]:
            spans.setdefault((a.segment_ids[i], w), []).append(i)
    out = list(a.labels)
    for (_seg, _w), toks in spans.items():
        text = a.segment_text(toks[0])
        word = text[a.offsets[toks[0]][0]:a.offsets[toks[-1]][1]]
        for i in toks:
            out[i] = word
    return out


def compact_head_maps(att: object, layer: int, head: int | str, kept: np.ndarray, lo: int, hi: int, share: float,
                      fetched: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Head-view maps of a long input from the shown rows only: [head, shown, shown] and the threshold mask of
    ``share`` (None at 1.0). ``fetched``: those rows already in hand ([head, rows, key] float32, from the pass's
    preview)."""
    kept_idx = np.nonzero(kept)[0]
    rows = kept_idx[lo:hi]
    if fetched is not None:
        maps = fetched if head == "all" else fetched[head][None]
    elif head == "all":
        maps = att.rows(layer, rows).astype(np.float32)  # [head, rows, key]
    else:
        maps = attention_rows(att, layer, head, rows)[None]  # [1, rows, key]
    if not kept.all():
        maps = maps[:, :, kept_idx]
        sums = maps.sum(axis=-1, keepdims=True)
        maps = np.divide(maps, sums, out=np.zeros_like(maps), where=sums > 0)
    keep = None
    if share < 1.0:
        keep = np.stack([threshold_mask(m, share) for m in maps])[:, :, lo:hi]
    return maps[:, :, lo:hi], keep
