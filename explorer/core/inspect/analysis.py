"""One forward pass that keeps everything the Attention and Embeddings panels draw: tokens, attention
weights and hidden states of every layer, for one text or a sentence pair (encoder-decoder: cross too).

Short inputs: the pass is the bare ``model(**enc, output_attentions=True, output_hidden_states=True)``;
each layer's attention stays a zero-copy numpy view of transformers' tensor, so the app's numbers are
exactly transformers' numbers. Long inputs (where every layer's n x n maps would not fit in memory):
attention is captured layer by layer during the pass in compact form (each query's top-k keys with exact
weights, and any layer's dense map recomputed on demand), see :mod:`explorer.core.inspect.attention_store`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explorer.core.inspect.attention_layers import DenseAttentions, LayerAttentions, RowsPreview
from explorer.core.inspect.attention_store import (
    DEFAULT_TOP_K,
    CompactAttentions,
    capture_forward,
    estimate_bytes,
)
from explorer.core.io.errors import InputError, ModelError
from explorer.core.io.heap import release_heap
from explorer.core.io.progress import UNKNOWN, Progress, check, no_progress
from explorer.core.models.loading import require_finite
from explorer.core.models.tokens import show_token, show_tokens


@dataclass
class Analysis:
    """Everything one analysis pass produced; arrays are float32 numpy, shapes noted per field."""

    model_name: str
    kind: str  # "encoder" | "decoder" | "encoder-decoder"
    text: str
    pair: str | None
    tokens: list[str]  # raw tokenizer pieces (e.g. "##ing", "Ġbank")
    labels: list[str]  # readable labels for charts (text under each piece)
    input_ids: list[int]
    attentions: LayerAttentions  # [layer, head, query, key]: att[layer] is a [head, query, key] array
    hidden_states: np.ndarray  # [layer+1, token, dim]; index 0 = embedding layer
    segment_ids: list[int]  # 0 = first text, 1 = pair text (special tokens take their neighbour's segment)
    offsets: list[tuple[int, int]]  # character span of each piece in its own text (text or pair)
    word_ids: list[int | None]
    special_mask: list[bool]
    causal: bool  # decoder self-attention sees only the left context
    truncated: bool = False
    note: str = ""  # what the user should be told (truncation)
    # Encoder-decoder models: the encoder side is in the fields above; the decoder side here.
    decoder_tokens: list[str] = field(default_factory=list)
    decoder_labels: list[str] = field(default_factory=list)
    decoder_attentions: np.ndarray | None = None  # [layer, head, query, key], causal
    cross_attentions: np.ndarray | None = None  # [layer, head, decoder query, encoder key]
    decoder_hidden_states: np.ndarray | None = None  # [layer+1, token, dim]

    @property
    def exact(self) -> bool:
        """True when every weight of every layer is kept; False for the compact (top-k) form of long inputs."""
        return bool(getattr(self.attentions, "exact", True))

    @property
    def num_layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.attentions.shape[1])

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)

    def segment_text(self, index: int) -> str:
        """The text (first or pair) that token ``index`` comes from, for its offsets."""
        return self.pair if (self.segment_ids[index] == 1 and self.pair is not None) else self.text

    def to_dict(self, layer: int | None = None, head: int | None = None) -> dict:
        """JSON-ready: tokens and attentions [layer][head][query][key], or only the asked slice."""
        att: Any = self.attentions
        if layer is not None:
            att = att[layer]
            if head is not None:
                att = att[head]
        elif head is not None:
            att = np.stack([a[head] for a in att])
        return {
            "model": self.model_name,
            "tokens": self.tokens,
            "segment_ids": self.segment_ids,
            "attentions": np.asarray(att, dtype=np.float64).tolist(),
            "truncated": self.truncated,
            "note": self.note,
        }


@dataclass
class LayerPreview:
    """One layer's attention, handed over during the pass while the later layers still run (see ``analyse``):
    the weights are the pass's own tensor, the very numbers the finished :class:`Analysis` holds."""

    model_name: str
    text: str
    pair: str | None
    layer: int
    num_layers: int
    attention: np.ndarray  # [head, query, key]; a long input's: [head, rows, key] (float16 values, as shown)
    labels: list[str]
    segment_ids: list[int]
    special_mask: list[bool]
    rows: np.ndarray | None = None  # a long input's query rows in ``attention`` (the rows on screen); None: all


#: A pass shorter than this (the model's last one) hands no layer over early unless a core is free: drawing takes a
#: core from the model's threads, and on 2 cores it slowed MiniLM's 33 ms pass by more than it hid (+3 ms).
PREVIEW_AFTER_SECONDS = 0.1


def preview_pays(last_pass_seconds: float | None) -> bool:
    """Whether to draw a layer during the pass (``analyse(partial=...)``): when a core is free of the model's
    threads, or when the pass is long (or not yet timed), so a drawing's share of the machine is small."""
    import os

    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores > torch.get_num_threads() or last_pass_seconds is None or last_pass_seconds >= PREVIEW_AFTER_SECONDS


def _watch_layer(model: Any, num_layers: int, layer: int, n: int,
                 hand_over: Callable[[np.ndarray], None]) -> list[Any]:
    """Hooks that call ``hand_over(weights)`` ([head, query, key], a view) once, when block ``layer`` of the
    model's stack of ``num_layers`` blocks has made its attention weights; no hooks when no such stack."""
    import torch

    stack = next((m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == num_layers), None)
    if stack is None or not 0 <= layer < num_layers:
        return []
    done = [False]

    def seen(_module: Any, _args: Any, output: Any) -> None:
        if done[0] or not isinstance(output, tuple) or len(output) < 2:
            return
        w = output[1]
        if isinstance(w, torch.Tensor) and w.dim() == 4 and w.shape[0] == 1 and tuple(w.shape[-2:]) == (n, n) \
                and abs(float(w[0, 0, -1].sum()) - 1.0) < 1e-3:  # softmax rows: weights, not some other [h, n, n]
            done[0] = True
            hand_over(w.detach()[0].float().numpy())

    return [m.register_forward_hook(seen) for m in stack[layer].modules()]


def readable_labels(tokens: list[str], offsets: list[tuple[int, int]], texts: list[str],
                    specials: list[bool]) -> list[str]:
    """Label each piece by the text it covers; later pieces of one character (byte-level BPE) get ·2, ·3."""
    out: list[str] = []
    prev_span: tuple[int, int, str] | None = None
    repeat = 1
    for tok, (s, e), text, special in zip(tokens, offsets, texts, specials, strict=True):
        if special or e <= s:
            out.append(tok)
            prev_span = None
            continue
        piece = text[s:e]
        label = show_token(piece)
        span = (s, e, text)
        if span == prev_span:
            repeat += 1
            label = f"{label}·{repeat}"
        else:
            repeat = 1
        prev_span = span
        out.append(label)
    return out


PIECE_NOTE = "·2, ·3 = the 2nd, 3rd byte piece of one character"


def label_axis(name: str, labels: list[str]) -> str:
    """An axis name that explains the ``·2`` marks of :func:`readable_labels` when any label carries one."""
    return f"{name} ({PIECE_NOTE})" if any("·" in lab for lab in labels) else name


def _special_mask(enc: Any, tokenizer: Any, ids: list[int]) -> list[bool]:
    """Tokens the tokenizer added ([CLS], [SEP], <s>…), not [UNK]: an unknown word is still content."""
    mask = enc.pop("special_tokens_mask", None)
    if mask is not None:
        return [bool(v) for v in mask[0].tolist()]
    unk = tokenizer.unk_token_id
    specials = set(tokenizer.all_special_ids) - {unk}
    return [i in specials for i in ids]


def _segments(enc: Any, n: int) -> list[int]:
    """Segment per token: token_type_ids when the tokenizer makes them, else sequence ids filled forward."""
    tt = enc.get("token_type_ids")
    if tt is not None:
        return [int(v) for v in tt[0].tolist()]
    seq = enc.sequence_ids(0)
    out, last = [], 0
    for s in seq[:n]:
        last = last if s is None else int(s)
        out.append(last)
    return out


#: Memory allowed for one analysis that keeps every map (see :func:`dense_bytes`); longer inputs switch to the
#: compact form. SmolLM2: 901 tokens (its 1,024-token dense pass costs 1.3 GB by that count, measured 1.5 GB).
ATTENTION_BUDGET_BYTES = 1_000_000_000
#: Memory allowed for one compact analysis (hidden states, top-k, stored queries/keys, one dense layer).
COMPACT_BUDGET_BYTES = 1_400_000_000


def dense_bytes(loaded: Any, n: int) -> int:
    """What keeping every map of ``n`` tokens really costs: every layer's [head, n, n] float32 maps, plus the
    layer in flight (eager attention holds its scores and masked scores beside the kept weights) and the
    hidden states."""
    card = loaded.card
    layers, heads = max(1, card.num_layers), max(1, card.num_heads)
    return 4 * (layers + 2) * heads * n * n + 4 * (layers + 1) * n * max(1, card.hidden_size)


def dense_limit(loaded: Any) -> int:
    """Most tokens whose dense analysis (:func:`dense_bytes`) fits ATTENTION_BUDGET_BYTES."""
    lo, hi = 16, max(16, int(loaded.max_length))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if dense_bytes(loaded, mid) <= ATTENTION_BUDGET_BYTES:
            lo = mid
        else:
            hi = mid - 1
    return lo


def compact_estimate(loaded: Any, n: int, top_k: int = DEFAULT_TOP_K) -> dict[str, int]:
    """Bytes of one analysis of ``n`` tokens, dense vs compact parts (see ``attention_store.estimate_bytes``)."""
    card = loaded.card
    cfg = getattr(getattr(loaded, "model", None), "config", None)
    cfg = getattr(cfg, "text_config", None) or cfg
    heads = max(1, card.num_heads)
    kv = int(getattr(cfg, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(cfg, "head_dim", None) or max(1, card.hidden_size // heads))
    return estimate_bytes(max(1, card.num_layers), heads, kv, head_dim, card.hidden_size, n, top_k)


def analysis_limit(loaded: Any, top_k: int = DEFAULT_TOP_K) -> int:
    """Most tokens one analysis takes: the model's limit, or fewer when even the compact form would not fit
    COMPACT_BUDGET_BYTES. Encoder-decoder models keep every map, so ATTENTION_BUDGET_BYTES bounds them."""
    if loaded.card.kind == "encoder-decoder":
        return max(16, min(int(loaded.max_length), dense_limit(loaded)))
    hi = int(loaded.max_length)
    if sum(v for k, v in compact_estimate(loaded, hi, top_k).items() if k != "dense_attentions") \
            <= COMPACT_BUDGET_BYTES:
        return hi
    lo = 16
    while lo < hi:  # largest n whose compact form fits
        mid = (lo + hi + 1) // 2
        parts = compact_estimate(loaded, mid, top_k)
        if sum(v for k, v in parts.items() if k != "dense_attentions") <= COMPACT_BUDGET_BYTES:
            lo = mid
        else:
            hi = mid - 1
    return max(16, min(int(loaded.max_length), lo))


def encode(loaded: Any, text: str, pair: str | None = None,
           top_k: int = DEFAULT_TOP_K) -> tuple[Any, bool, str]:
    """Tokenize ``text`` (and ``pair``) as PyTorch tensors, truncated to the model's limit; (enc, truncated, note)."""
    if not text or not text.strip():
        raise InputError("The text is empty: type or drop some text to analyse.")
    from explorer.core.models.truncate import clip_to_tokens

    tok = loaded.tokenizer
    limit = analysis_limit(loaded, top_k)
    kwargs: dict[str, Any] = {"return_offsets_mapping": True, "return_special_tokens_mask": True}
    # Only the start the model can take is tokenized (offsets still index the whole text).
    text, cut = clip_to_tokens(tok, text, limit)
    if pair is not None:
        pair, cut_pair = clip_to_tokens(tok, pair, limit)
        cut = cut or cut_pair
    full = tok(text, pair, **kwargs) if pair is not None else tok(text, **kwargs)
    n = len(full["input_ids"])
    truncated = cut or n > limit
    note = ""
    if truncated:
        why = (f"{loaded.name} takes at most {limit}" if limit >= int(loaded.max_length) else
               f"the attention of {loaded.name} fits in memory up to {limit}")
        has = f"more than {limit}" if cut else str(n)
        note = f"The text has {has} tokens; {why}, so only the first {limit} were analysed."
        trunc = "longest_first" if pair is not None else True
        full = tok(text, pair, truncation=trunc, max_length=limit, **kwargs) if pair is not None else \
            tok(text, truncation=True, max_length=limit, **kwargs)
    full.convert_to_tensors("pt", prepend_batch_axis=True)  # in place: [1, token]
    return full, truncated, note


def _views(tensors: Any) -> list[np.ndarray]:
    """Tuple of per-layer [1, ...] tensors -> list of float32 numpy views [...] (no copy for float32)."""
    if tensors is None or len(tensors) == 0 or any(t is None for t in tensors):
        raise ModelError("This model returned no attention weights (its attention implementation hides them).")
    return [t.detach()[0].float().numpy() for t in tensors]


def _stack_freeing(tensors: list, attach: Any = None) -> np.ndarray:
    """Like :func:`_stack` but drops each tensor once copied, so a long input's hidden states are not held twice.
    ``attach(out)`` is called before copying, for holders of the tensors to switch to the copy and let go."""
    first = tensors[0].detach()[0]
    out = np.empty((len(tensors), *first.shape), dtype=np.float32)  # [layer, ...]
    if attach is not None:
        attach(out)
    for i in range(len(tensors)):
        out[i] = tensors[i].detach()[0].float().numpy()
        tensors[i] = None
    return out


def _stack(tensors: Any) -> np.ndarray:
    """Tuple of per-layer [1, ...] tensors -> one float32 numpy array [layer, ...] (the only copy).

    numpy's stack of zero-copy views is ~10x faster here than ``torch.cat`` (measured: 18 ms vs 160 ms
    for MiniLM's 6x12x512x512 attentions).
    """
    if tensors is None or len(tensors) == 0 or any(t is None for t in tensors):
        raise ModelError("This model returned no attention weights (its attention implementation hides them).")
    views = [t.detach()[0].float().numpy() for t in tensors]  # each [...]; no copy for float32
    return np.stack(views)  # [layer, ...]


def analyse(
    loaded: Any,
    text: str,
    pair: str | None = None,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
    top_k: int = DEFAULT_TOP_K,
    compact: bool | None = None,
    partial: Callable[[LayerPreview], None] | None = None,
    preview_layer: int = 0,
    preview_rows: tuple[int, int, bool] = (0, 96, False),
) -> Analysis:
    """Run the model once on ``text`` (and optional ``pair``) and keep attentions and hidden states.

    For an encoder-decoder model ``text`` goes to the encoder and ``pair`` (or just the start token)
    to the decoder, so cross-attention links the two. Inputs longer than :func:`dense_limit` (or any,
    with ``compact=True``) keep attention in compact form: each query's ``top_k`` keys per layer. With
    ``partial``, the pass hands layer ``preview_layer`` over as a :class:`LayerPreview` the moment the model has
    made it, so a view of that layer can be drawn while the later layers run; a compact pass hands over the rows
    on screen, ``preview_rows`` = (start, count, special tokens hidden) as in :func:`shown_rows`, and keeps them
    (the view needs no recompute after the pass).
    """
    import torch

    check(cancel)
    progress(0.05, "Tokenizing…")
    tok = loaded.tokenizer
    kind = loaded.card.kind
    if kind == "encoder-decoder":
        return _analyse_seq2seq(loaded, text, pair, progress, cancel)
    enc, truncated, note = encode(loaded, text, pair, top_k)
    offsets = [tuple(int(v) for v in o) for o in enc.pop("offset_mapping")[0].tolist()]
    ids = enc["input_ids"][0].tolist()
    n = len(ids)
    check(cancel)
    if compact is None:
        compact = n > dense_limit(loaded)
    tokens = tok.convert_ids_to_tokens(ids)
    segments = _segments(enc, n)
    specials = _special_mask(enc, tok, ids)
    texts = [pair if (s == 1 and pair is not None) else text for s in segments]
    word_ids = list(enc.word_ids(0)) if hasattr(enc, "word_ids") else [None] * n
    labels = readable_labels(tokens, offsets, texts, specials)
    inputs = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    if kind == "decoder":
        inputs.pop("token_type_ids", None)
    attentions: LayerAttentions
    # The model without its head: an analysis needs no logits (SmolLM2's are [token, 49,152] floats, 0.8 GB
    # at 4,096 tokens, and a third of the pass's work at 512); hidden states and attentions are the same.
    net = getattr(loaded.model, "base_model", None) or loaded.model
    if compact:
        progress(0.2, f"Running {loaded.name} on {n} tokens (keeping each token's top {top_k} links per layer)…")
        extra = {"use_cache": False} if kind == "decoder" else {}
        rows_preview = None
        if partial is not None:
            from explorer.core.inspect.attention import shown_rows

            start, count, hide = preview_rows
            rows = shown_rows(specials, hide, start, count)
            rows_preview = RowsPreview(preview_layer, rows, lambda rp: partial(LayerPreview(
                loaded.name, text, pair, preview_layer, loaded.card.num_layers, rp.block.astype(np.float32), labels,
                segments, specials, rows=rows)))
        with loaded.lock:
            out, attentions = capture_forward(net, inputs, top_k, cancel, causal=(kind == "decoder"),
                                              progress=progress, num_layers=loaded.card.num_layers,
                                              lock=loaded.lock, preview=rows_preview, output_hidden_states=True,
                                              **extra)
        layers = list(out.hidden_states)
        del out
        # [layer+1, token, dim]; each layer's queries/keys are made again from its input in this copy
        hidden = _stack_freeing(layers, attentions.attach_hidden_states)
        release_heap()
    else:
        progress(UNKNOWN, f"Running {loaded.name} on {n} tokens…")

        def hand_over(weights: np.ndarray) -> None:
            partial(LayerPreview(loaded.name, text, pair, preview_layer, loaded.card.num_layers, weights, labels,
                                 segments, specials))

        with loaded.lock, torch.inference_mode():  # hooks only while the lock is held: no other pass sees them
            hooks = [] if partial is None else _watch_layer(net, loaded.card.num_layers, preview_layer, n, hand_over)
            try:
                out = net(**inputs, output_attentions=True, output_hidden_states=True)
            finally:
                for h in hooks:
                    h.remove()
            check(cancel)
            attentions = DenseAttentions(_views(out.attentions))  # per layer [head, query, key]
            hidden = _stack(out.hidden_states)  # [layer+1, token, dim]
        del out
    require_finite(hidden, loaded.name, "hidden states")
    if isinstance(attentions, CompactAttentions):
        kept = (f"Long input: rollout and the model view use each token's {attentions.top_k} strongest links per "
                "layer and head (exact weights, the rest dropped); one layer's maps (head view, heatmap, mean/max) "
                "are recomputed in full from its own queries and keys (single heads rounded to float16).")
        note = f"{note} {kept}".strip()
    progress(1.0, "Done")
    return Analysis(
        model_name=loaded.name, kind=kind, text=text, pair=pair, tokens=tokens,
        labels=labels, input_ids=ids,
        attentions=attentions, hidden_states=hidden, segment_ids=segments, offsets=offsets,
        word_ids=word_ids, special_mask=specials, causal=(kind == "decoder"),
        truncated=truncated, note=note,
    )


def _analyse_seq2seq(loaded: Any, text: str, target: str | None, progress: Progress,
                     cancel: threading.Event | None) -> Analysis:
    """Encoder-decoder: encoder self-attention, decoder (causal) self-attention and cross-attention."""
    import torch

    tok = loaded.tokenizer
    model = loaded.model
    enc, truncated, note = encode(loaded, text, None)
    offsets = [tuple(int(v) for v in o) for o in enc.pop("offset_mapping")[0].tolist()]
    ids = enc["input_ids"][0].tolist()
    if target:
        dec_ids = tok(text_target=target, truncation=True, max_length=int(loaded.max_length))["input_ids"]
    else:
        dec_ids = []
    start = getattr(model.config, "decoder_start_token_id", None)
    if start is None:
        start = tok.pad_token_id if tok.pad_token_id is not None else 0
    dec_input = torch.tensor([[int(start)] + list(dec_ids)[:-1] if dec_ids else [int(start)]])
    check(cancel)
    progress(0.2, f"Running {loaded.name} on {len(ids)} + {dec_input.shape[1]} tokens…")
    with loaded.lock, torch.inference_mode():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                    decoder_input_ids=dec_input, output_attentions=True, output_hidden_states=True)
        check(cancel)
        enc_att = DenseAttentions(_views(out.encoder_attentions))  # per layer [head, query, key]
        dec_att = _stack(out.decoder_attentions)  # [layer, head, query, key]
        cross = _stack(out.cross_attentions)  # [layer, head, decoder query, encoder key]
        enc_hidden = _stack(out.encoder_hidden_states)  # [layer+1, token, dim]
        dec_hidden = _stack(out.decoder_hidden_states)  # [layer+1, token, dim]
    require_finite(dec_hidden, loaded.name, "hidden states")
    tokens = tok.convert_ids_to_tokens(ids)
    specials = _special_mask(enc, tok, ids)
    dec_tokens = tok.convert_ids_to_tokens(dec_input[0].tolist())
    progress(1.0, "Done")
    return Analysis(
        model_name=loaded.name, kind="encoder-decoder", text=text, pair=target, tokens=tokens,
        labels=readable_labels(tokens, offsets, [text] * len(ids), specials), input_ids=ids,
        attentions=enc_att, hidden_states=enc_hidden, segment_ids=[0] * len(ids), offsets=offsets,
        word_ids=list(enc.word_ids(0)), special_mask=specials, causal=False,
        truncated=truncated, note=note, decoder_tokens=dec_tokens,
        decoder_labels=show_tokens(dec_tokens),
        decoder_attentions=dec_att, cross_attentions=cross, decoder_hidden_states=dec_hidden,
    )
