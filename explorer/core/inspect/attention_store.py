"""Attention weights of every layer, kept per layer instead of one [layer, head, query, key] copy.

Two forms behind one indexable object (``analysis.attentions``):

- :class:`DenseAttentions`: each layer's [head, query, key] float32 array as transformers returned it
  (zero-copy views), for short inputs.
- :class:`CompactAttentions`: for long inputs, captured layer by layer during the forward pass: each
  layer's top-k keys per query with their exact weights, plus what is needed to recompute any layer's
  dense rows (float16) on demand, with a small cache. 30 layers x 9 heads x 4096^2 float32 would be 18 GB;
  the compact form of the same pass is about 0.3 GB. To recompute a layer, its queries and keys are made
  again by running the layer's own module on its input, which is the hidden state the analysis keeps
  anyway (float32, the same tensor the pass used), up to the attention call: nothing per layer is stored
  for it, and the queries and keys are the pass's own values, so recomputed weights are exact before
  their rounding to float16.

The capture plugs into transformers' attention interface: during the pass the model's attention
modules call :func:`_capture_forward`, which runs the module's own ``eager_attention_forward`` on blocks
of queries, so the weights are eager attention's weights, never an n x n map for all heads at once.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explorer.core.inspect.attention_layers import LayerAttentions, RowsPreview
from explorer.core.io.errors import Cancelled, InputError
from explorer.core.io.heap import bound_heap, release_heap

#: Default number of keys kept per query in the compact form.
DEFAULT_TOP_K = 32
#: Queries per block when computing attention weights (bounds the transient [head, block, key] arrays).
QUERY_BLOCK = 256
#: Memory for cached dense layers of a compact store (at least one layer is always kept).
DENSE_CACHE_BYTES = 400_000_000
_IMPL = "lmx_capture"
_active = threading.local()
_registered = False
_register_lock = threading.Lock()


@dataclass
class _LayerInputs:
    """What one attention call received, enough to recompute its weights for any queries."""

    module: Any
    eager: Any
    query: Any  # torch [1, head, query, dim]
    key: Any  # torch [1, kv_head, key, dim]
    mask: Any  # torch [1, 1, query, key] additive/boolean, or None
    scaling: float | None
    kwargs: dict = field(default_factory=dict)


@dataclass
class _LayerSource:
    """How to get one attention layer's inputs back: run ``layer`` (the model's block that holds the attention
    module) on its input hidden state with the arguments it got in the pass, up to the attention call.
    ``inputs`` holds the queries and keys themselves only when the block is unknown (no ModuleList parent)."""

    module: Any  # the attention module
    layer: Any = None  # the block (an element of the model's ModuleList) that ran it
    args: tuple = ()  # the block's positional arguments after its hidden-state input
    kwargs: dict = field(default_factory=dict)
    hidden: Any = None  # torch [1, token, dim] input of the block, until the analysis's own copy is attached
    hidden_index: int | None = None  # that input's index in the pass's hidden states
    inputs: _LayerInputs | None = None


class CompactAttentions(LayerAttentions):
    """Top-k keys per query for every layer (exact weights) and dense float16 layers recomputed on demand."""

    exact = False

    def __init__(self, indices: np.ndarray, weights: np.ndarray, sources: list[_LayerSource],
                 num_keys: int, cache_bytes: int = DENSE_CACHE_BYTES, causal: bool = False,
                 configs: list[Any] | None = None, lock: Any = None) -> None:
        num_layers, h, q, _k = indices.shape
        self.causal = causal  # each query sees only keys <= itself
        super().__init__(num_layers, h, q, num_keys)
        self.indices = indices  # [layer, head, query, k] int (key positions, strongest first)
        self.weights = weights  # [layer, head, query, k] float32, exact eager-attention weights
        self.top_k = int(weights.shape[-1])
        self._sources = sources
        self._configs = configs or []
        self._model_lock = lock if lock is not None else threading.RLock()
        self._hidden: np.ndarray | None = None  # [layer+1, token, dim] the analysis's hidden states
        self._made: OrderedDict[int, _LayerInputs] = OrderedDict()  # queries/keys made again, newest last
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._memo: OrderedDict[tuple, np.ndarray] = OrderedDict()  # rows of a layer, rollouts
        self._lock = threading.Lock()
        per_layer = 2 * h * q * num_keys
        self._cache_bytes = cache_bytes
        self._cache_layers = max(1, int(cache_bytes // max(1, per_layer)))

    dtype = np.dtype(np.float16)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise InputError("This long input keeps each query's top-k keys per layer, not every layer's full map: "
                         "ask for one layer at a time.")

    def is_ready(self, index: int) -> bool:
        return self._layer_index(index) in self._cache

    def layer(self, index: int) -> np.ndarray:
        """Dense [head, query, key] float16 weights of one layer, recomputed (exactly, then rounded) if not cached."""
        index = self._layer_index(index)
        with self._lock:
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
            while len(self._cache) >= self._cache_layers:
                self._cache.popitem(last=False)
        dense = self.recompute(index)
        with self._lock:
            self._cache[index] = dense
            while len(self._cache) > self._cache_layers:
                self._cache.popitem(last=False)
        return dense

    def _memo_get(self, key: tuple) -> np.ndarray | None:
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        return None

    def memo(self, key: tuple, compute: Any) -> np.ndarray:
        """``compute()`` once per ``key`` (a few recent results are kept): rows and rollouts on screen."""
        got = self._memo_get(key)
        if got is not None:
            return got
        value = compute()
        self._memo_put(key, value)
        return value

    def _memo_put(self, key: tuple, value: np.ndarray) -> None:
        with self._lock:
            self._memo[key] = value
            self._memo.move_to_end(key)
            # Keep the newest result, and older ones while they fit the cache budget.
            while len(self._memo) > 1 and sum(v.nbytes for v in self._memo.values()) > self._cache_bytes:
                self._memo.popitem(last=False)

    def has(self, key: tuple) -> bool:
        with self._lock:
            return key in self._memo

    @staticmethod
    def rows_key(layer: int, rows: np.ndarray) -> tuple:
        return ("rows", int(layer), rows.tobytes())

    def rows_ready(self, layer: int, rows: Any) -> bool:
        """True when ``rows(layer, rows)`` needs no recompute."""
        layer = self._layer_index(layer)
        return layer in self._cache or self.has(self.rows_key(layer, np.asarray(rows, dtype=np.int64)))

    def rows(self, layer: int, rows: Any) -> np.ndarray:
        """Dense float16 weights of the query ``rows`` of one layer: [head, rows, key] (the rows on screen)."""
        layer = self._layer_index(layer)
        rows = np.asarray(rows, dtype=np.int64)
        with self._lock:
            if layer in self._cache:
                return self._cache[layer][:, rows]
        return self.memo(self.rows_key(layer, rows), lambda: self._compute_rows(layer, rows)[0])

    def head_rows(self, layer: int, how: str, rows: Any) -> np.ndarray:
        """Mean or max over heads of the query ``rows`` of one layer, [rows, key] float32, taken from the float32
        weights before their rounding (computed with :meth:`rows`, and kept beside them)."""
        layer = self._layer_index(layer)
        rows = np.asarray(rows, dtype=np.int64)
        with self._lock:
            if layer in self._cache:
                block = self._cache[layer][:, rows]
                return block.mean(axis=0, dtype=np.float32) if how == "mean" else block.max(axis=0).astype(np.float32)
        key = (how, layer, rows.tobytes())
        got = self._memo_get(key)
        if got is None:
            self.rows(layer, rows)
            got = self._memo_get(key)
        if got is None:  # the rows were kept but their aggregates were evicted
            block, mean, top = self._compute_rows(layer, rows)
            self._memo_put(self.rows_key(layer, rows), block)
            got = mean if how == "mean" else top
        return got

    def seed_rows(self, layer: int, rows: Any, block: np.ndarray, mean: np.ndarray, top: np.ndarray) -> None:
        """Keep rows the pass itself made (:class:`RowsPreview`): ``rows`` and ``head_rows`` serve them with no
        recompute."""
        layer = self._layer_index(layer)
        rows = np.asarray(rows, dtype=np.int64)
        self._memo_put(("mean", layer, rows.tobytes()), mean)
        self._memo_put(("max", layer, rows.tobytes()), top)
        self._memo_put(self.rows_key(layer, rows), block)

    def head_rows_ready(self, layer: int, how: str, rows: Any) -> bool:
        """True when ``head_rows`` (and ``rows``, which the head view of all heads draws) need no recompute."""
        layer = self._layer_index(layer)
        rows = np.asarray(rows, dtype=np.int64)
        return layer in self._cache or (self.has((how, layer, rows.tobytes())) and self.has(self.rows_key(layer, rows)))

    def _compute_rows(self, layer: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """[head, rows, key] float16 weights and their mean and max over heads ([rows, key] float32, from the
        float32 weights); the two aggregates go in the memo (the caller keeps the block)."""
        import torch

        li = self._layer_inputs(layer)
        h, k = self.shape[1], self.shape[3]
        block = np.empty((h, len(rows), k), dtype=np.float16)  # [head, rows, key]
        mean = np.empty((len(rows), k), dtype=np.float32)  # [rows, key]
        top = np.empty((len(rows), k), dtype=np.float32)
        tb, tm, tt = torch.from_numpy(block), torch.from_numpy(mean), torch.from_numpy(top)
        with torch.inference_mode():
            for s in range(0, len(rows), QUERY_BLOCK):
                sel = torch.from_numpy(rows[s:s + QUERY_BLOCK])
                w = _weights_at(li, sel)  # [head, block, key] float32
                e = s + len(sel)
                tb[:, s:e].copy_(w)  # rounded to float16 in place: no intermediate copy
                tm[s:e].copy_(w.mean(dim=0))
                tt[s:e].copy_(w.amax(dim=0))
        self._memo_put(("mean", layer, rows.tobytes()), mean)
        self._memo_put(("max", layer, rows.tobytes()), top)
        return block, mean, top

    def recompute(self, index: int, cancel: threading.Event | None = None) -> np.ndarray:
        """Run the layer's eager attention again on its stored queries and keys, in blocks of queries."""
        import torch

        li = self._layer_inputs(index)
        h, q, k = self.shape[1:]
        out = np.empty((h, q, k), dtype=np.float16)  # [head, query, key]
        with torch.inference_mode():
            for s in range(0, q, QUERY_BLOCK):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                e = min(q, s + QUERY_BLOCK)
                w = _block_weights(li, s, e)  # [head, block, key]
                out[:, s:e] = w.to(torch.float16).numpy()
        return out

    def sparse_layer(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(key indices, weights) of one layer's top-k: each [head, query, k]."""
        index = self._layer_index(index)
        return self.indices[index], self.weights[index]

    def attach_hidden_states(self, hidden: np.ndarray) -> None:
        """Use the analysis's hidden states ([layer+1, token, dim] float32, the pass's values) as each layer's
        input when its queries and keys are made again, and let go of the pass's tensors (so the caller can
        free each as it copies it). ``hidden`` may still be being filled: nothing is recomputed until it is."""
        self._hidden = hidden
        for src in self._sources:
            if src.hidden_index is not None:
                src.hidden = None

    def _layer_inputs(self, index: int) -> _LayerInputs:
        """The queries, keys and mask of one layer's attention call: stored, or made again from its input."""
        src = self._sources[index]
        if src.inputs is not None:
            return src.inputs
        with self._lock:
            if index in self._made:
                self._made.move_to_end(index)
                return self._made[index]
        li = self._make_inputs(src)
        with self._lock:
            self._made[index] = li
            while len(self._made) > 2:
                self._made.popitem(last=False)
        return li

    def _make_inputs(self, src: _LayerSource) -> _LayerInputs:
        import torch

        if src.hidden is not None:
            hidden = src.hidden
        elif self._hidden is not None and src.hidden_index is not None:
            hidden = torch.from_numpy(self._hidden[src.hidden_index])[None]  # [1, token, dim], no copy
        else:
            raise InputError("This analysis no longer has the hidden states its attention is recomputed from.")
        with self._model_lock:  # the model's attention implementation is switched for the call
            before = [c._attn_implementation for c in self._configs]
            previous = getattr(_active, "recorder", None)
            _active.recorder = _Grab(src.module)
            try:
                for c in self._configs:
                    c._attn_implementation = _IMPL
                with torch.inference_mode():
                    src.layer(hidden, *src.args, **src.kwargs)
            except _Grabbed as got:
                return got.inputs
            finally:
                for c, b in zip(self._configs, before, strict=True):
                    c._attn_implementation = b
                _active.recorder = previous
        raise InputError(f"Layer {type(src.layer).__name__} did not call its attention: it cannot be recomputed.")

    def nbytes(self) -> int:
        """Memory held: top-k arrays, stored queries/keys and masks, and cached dense layers (not the hidden
        states the queries and keys are made from: the analysis holds those)."""
        total = self.indices.nbytes + self.weights.nbytes + sum(d.nbytes for d in self._cache.values())
        seen: set[int] = set()
        tensors = []
        for src in self._sources:
            tensors += [src.hidden, src.kwargs.get("attention_mask"), *[a for a in src.args if hasattr(a, "numel")]]
            if src.inputs is not None:
                tensors += [src.inputs.query, src.inputs.key, src.inputs.mask]
        for li in self._made.values():
            tensors += [li.query, li.key]
        for t in tensors:
            if t is not None and hasattr(t, "numel") and id(t) not in seen:
                seen.add(id(t))
                total += t.numel() * t.element_size()
        return total

    def stored_query_key_bytes(self) -> int:
        """Bytes of queries and keys held for recomputing (only for layers whose block is unknown)."""
        return sum(t.numel() * t.element_size() for src in self._sources if src.inputs is not None
                   for t in (src.inputs.query, src.inputs.key))


def _mask_rows(mask: Any, s: int, e: int, n_queries: int) -> Any:
    if mask is None or mask.dim() < 3 or mask.shape[-2] != n_queries:
        return mask
    return mask[..., s:e, :]


def _block_weights(li: _LayerInputs, s: int, e: int) -> Any:
    """[head, e-s, key] float32 weights of queries s..e by the module's own eager attention."""
    q = li.query[:, :, s:e]
    value = li.key[..., :0]  # the weights need no values: a zero-width value keeps the output empty
    mask = _mask_rows(li.mask, s, e, li.query.shape[2])
    _out, w = li.eager(li.module, q, li.key, value, mask, scaling=li.scaling, dropout=0.0, **li.kwargs)
    return w[0].float()


def _weights_at(li: _LayerInputs, rows: Any) -> Any:
    """[head, rows, key] float32 weights of the queries at ``rows`` (a torch index tensor)."""
    q = li.query.index_select(2, rows)
    mask = li.mask
    if mask is not None and mask.dim() >= 3 and mask.shape[-2] == li.query.shape[2]:
        mask = mask.index_select(mask.dim() - 2, rows)
    _out, w = li.eager(li.module, q, li.key, li.key[..., :0], mask, scaling=li.scaling, dropout=0.0, **li.kwargs)
    return w[0].float()


@dataclass
class _Recorder:
    top_k: int
    cancel: threading.Event | None
    progress: Any = None
    num_layers: int = 0
    n_keys: int = 0
    indices: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    inputs: list = field(default_factory=list)  # one _LayerSource per attention call
    blocks: list = field(default_factory=list)  # (block, args after the hidden state, kwargs, hidden) entered
    members: dict = field(default_factory=dict)  # id(block) -> ids of its submodules
    preview: Any = None  # a RowsPreview: the rows on screen of one layer, taken from the pass as it makes them


@dataclass
class _Grab:
    """Recorder of a recompute: stop at ``target``'s attention call and hand its inputs over."""

    target: Any


class _Grabbed(BaseException):  # noqa: N818 (a control-flow signal, not an error; BaseException so no
    # ``except Exception`` in a model's code swallows it)
    def __init__(self, inputs: _LayerInputs) -> None:
        super().__init__()
        self.inputs = inputs


def _attention_kwargs(kwargs: dict) -> dict:
    return {k: v for k, v in kwargs.items() if k != "output_attentions"}


def _eager_of(module: Any) -> Any:
    fn = getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)
    if fn is None:
        raise InputError(f"{type(module).__name__} has no eager attention to capture weights from.")
    return fn


def _capture_forward(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                     scaling: float | None = None, dropout: float = 0.0, **kwargs: Any) -> tuple[Any, None]:
    """Attention-interface function: eager attention in blocks of queries, keeping each query's top-k."""
    import torch

    rec = _active.recorder
    eager = _eager_of(module)
    if isinstance(rec, _Grab):  # a recompute: the target's inputs, or plain eager attention for other modules
        if module is rec.target:
            raise _Grabbed(_LayerInputs(module, eager, query, key, attention_mask, scaling, _attention_kwargs(kwargs)))
        out, _w = eager(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
        return out, None
    if rec.cancel is not None and rec.cancel.is_set():
        raise Cancelled()
    n_q, n_k = query.shape[2], key.shape[2]
    rec.n_keys = n_k
    k = min(rec.top_k, n_k)
    heads = query.shape[1]
    idx = torch.empty((heads, n_q, k), dtype=torch.int16 if n_k < 2**15 else torch.int32)  # [head, query, k]
    wts = torch.empty((heads, n_q, k), dtype=torch.float32)  # [head, query, k]
    outs = []
    layer = len(rec.inputs)
    preview = rec.preview if rec.preview is not None and rec.preview.layer == layer else None
    for s in range(0, n_q, QUERY_BLOCK):
        e = min(n_q, s + QUERY_BLOCK)
        mask = _mask_rows(attention_mask, s, e, n_q)
        o, w = eager(module, query[:, :, s:e], key, value, mask, scaling=scaling, dropout=dropout, **kwargs)
        outs.append(o)  # [1, block, head, dim]
        if preview is not None:
            preview.take(w[0].float(), s, e)
        top = torch.topk(w[0].float(), k, dim=-1)  # strongest first
        idx[:, s:e] = top.indices
        wts[:, s:e] = top.values
    if preview is not None:
        preview.hand_over(preview)
    if rec.num_layers and layer < rec.num_layers:  # write straight into the whole store: no stacking copy
        if not rec.indices:
            rec.indices.append(np.empty((rec.num_layers, *idx.shape), dtype=idx.numpy().dtype))
            rec.weights.append(np.empty((rec.num_layers, *wts.shape), dtype=np.float32))
        rec.indices[0][layer] = idx.numpy()
        rec.weights[0][layer] = wts.numpy()
    else:
        rec.indices.append(idx.numpy())
        rec.weights.append(wts.numpy())
    block = next((b for b in reversed(rec.blocks) if id(module) in rec.members[id(b[0])]), None)
    if block is not None and block[3] is not None:  # made again from the block's input when asked for
        rec.inputs.append(_LayerSource(module, block[0], block[1], block[2], hidden=block[3]))
    else:  # no known block: keep this call's queries and keys
        rec.inputs.append(_LayerSource(module, inputs=_LayerInputs(module, eager, query, key, attention_mask, scaling,
                                                                   _attention_kwargs(kwargs))))
    if rec.progress is not None and rec.num_layers:
        done = len(rec.inputs)
        rec.progress(0.2 + 0.7 * min(1.0, done / rec.num_layers), f"Layer {done} of {rec.num_layers}…")
    return torch.cat(outs, dim=1), None


def _register() -> None:
    global _registered
    with _register_lock:
        if _registered:
            return
        bound_heap()
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

        AttentionInterface.register(_IMPL, _capture_forward)
        ALL_MASK_ATTENTION_FUNCTIONS.register(_IMPL, eager_mask)
        _registered = True


def _configs(model: Any) -> list[Any]:
    seen: dict[int, Any] = {}
    for m in model.modules():
        cfg = getattr(m, "config", None)
        if cfg is not None and hasattr(cfg, "_attn_implementation"):
            seen.setdefault(id(cfg), cfg)
            for sub in getattr(cfg, "sub_configs", {}) or {}:
                sc = getattr(cfg, sub, None)
                if sc is not None and hasattr(sc, "_attn_implementation"):
                    seen.setdefault(id(sc), sc)
    return list(seen.values())


def _hook_blocks(model: Any, rec: _Recorder) -> list[Any]:
    """Note each block (element of a ModuleList) as it is entered, with its input hidden state and arguments,
    so an attention call can be traced to the block that made its queries and keys."""
    import torch
    from transformers.cache_utils import Cache

    hooks = []

    def enter(block: Any, args: tuple, kwargs: dict) -> None:
        if args:
            hidden, rest = args[0], tuple(args[1:])
        else:
            hidden, rest = kwargs.get("hidden_states"), ()
            kwargs = {k: v for k, v in kwargs.items() if k != "hidden_states"}
        # A key/value cache is not kept: running the block again would append to it (and it holds every layer).
        rest = tuple(None if isinstance(a, Cache) else a for a in rest)
        kwargs = {k: (None if isinstance(v, Cache) else v) for k, v in kwargs.items()}
        rec.blocks.append((block, rest, kwargs, hidden if isinstance(hidden, torch.Tensor) else None))

    for ml in model.modules():
        if isinstance(ml, torch.nn.ModuleList):
            for block in ml:
                rec.members[id(block)] = {id(m) for m in block.modules()}
                hooks.append(block.register_forward_pre_hook(enter, with_kwargs=True))
    return hooks


def _index_hidden(sources: list[_LayerSource], hidden_states: Any) -> None:
    """Where a block's input is one of the pass's hidden states, remember its index, so the analysis's own copy
    of the hidden states can serve instead (see ``attach_hidden_states``)."""
    import torch

    if not hidden_states:
        return
    # float32 only: the analysis's copy of a lower-precision state would not be the pass's own input
    where = {t.data_ptr(): i for i, t in enumerate(hidden_states) if t is not None and t.dtype == torch.float32}
    for src in sources:
        if src.hidden is not None and src.hidden.data_ptr() in where \
                and hidden_states[where[src.hidden.data_ptr()]].shape == src.hidden.shape:
            src.hidden_index = where[src.hidden.data_ptr()]


def capture_forward(model: Any, inputs: dict, top_k: int = DEFAULT_TOP_K, cancel: threading.Event | None = None,
                    cache_bytes: int = DENSE_CACHE_BYTES, causal: bool = False, progress: Any = None,
                    num_layers: int = 0, lock: Any = None, preview: RowsPreview | None = None,
                    **forward_kwargs: Any) -> tuple[Any, CompactAttentions]:
    """Run ``model(**inputs)`` keeping attention in compact form; returns (model output, attentions).
    ``preview``: rows of one layer handed over as the pass makes them, and kept in the store (no recompute).

    The caller holds the model's lock (``lock``, which recomputes take too): the attention implementation is
    switched for the pass and restored. With ``output_hidden_states=True`` the store makes each layer's queries
    and keys again from those hidden states; pass the analysis's copy to ``attach_hidden_states``.
    """
    import torch

    if top_k < 1:
        raise InputError("top-k must be at least 1.")
    _register()
    configs = _configs(model)
    before = [c._attn_implementation for c in configs]
    rec = _Recorder(top_k=int(top_k), cancel=cancel, progress=progress, num_layers=num_layers, preview=preview)
    hooks = _hook_blocks(model, rec)
    _active.recorder = rec
    try:
        for c in configs:
            c._attn_implementation = _IMPL
        with torch.inference_mode():
            out = model(**inputs, output_attentions=False, **forward_kwargs)
    finally:
        for h in hooks:
            h.remove()
        for c, b in zip(configs, before, strict=True):
            c._attn_implementation = b
        _active.recorder = None
        rec.blocks.clear()
    if not rec.indices:
        raise InputError("This model's attention layers could not be captured.")
    n_keys = rec.n_keys
    _index_hidden(rec.inputs, getattr(out, "hidden_states", None))
    if num_layers and len(rec.inputs) == num_layers:
        indices, weights = rec.indices[0], rec.weights[0]  # [layer, head, query, k]
    elif num_layers:
        raise InputError(f"The model ran {len(rec.inputs)} attention layers, not the {num_layers} its card says.")
    else:
        indices, weights = np.stack(rec.indices), np.stack(rec.weights)  # [layer, head, query, k]
    store = CompactAttentions(indices, weights, rec.inputs, n_keys, cache_bytes, causal, configs, lock)
    if preview is not None and preview.block is not None:
        store.seed_rows(preview.layer, preview.rows, preview.block, preview.mean, preview.top)
    rec.indices.clear()
    rec.weights.clear()
    release_heap()
    return out, store


def estimate_bytes(num_layers: int, num_heads: int, num_kv_heads: int, head_dim: int, hidden: int, n: int,
                   top_k: int = DEFAULT_TOP_K) -> dict[str, int]:
    """Memory of one analysis at ``n`` tokens: dense (every map float32) vs the compact form's parts."""
    return {
        "dense_attentions": 4 * num_layers * num_heads * n * n,
        "hidden_states": 4 * (num_layers + 1) * n * hidden,
        "top_k": (6 if n < 2**15 else 8) * num_layers * num_heads * n * min(top_k, n),
        # queries/keys are made again from the hidden states when asked for: the last two layers' are kept
        "queries_keys": 4 * min(2, num_layers) * (num_heads + num_kv_heads) * n * head_dim,
        "mask": 4 * n * n,
        "dense_layer": 2 * num_heads * n * n,
    }
