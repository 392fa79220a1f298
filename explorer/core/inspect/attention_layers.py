"""An analysis's attentions as one indexable [layer, head, query, key] object, its dense form (transformers'
own arrays) and the rows of one layer taken from a pass as it runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


class LayerAttentions:
    """Indexable like a [layer, head, query, key] array: ``att[layer]`` is [head, query, key] float32/16."""

    exact = True  # every weight of every layer is kept

    def __init__(self, num_layers: int, num_heads: int, num_queries: int, num_keys: int) -> None:
        self.shape = (num_layers, num_heads, num_queries, num_keys)

    ndim = 4
    dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def layer(self, index: int) -> np.ndarray:
        """Dense [head, query, key] weights of one layer."""
        raise NotImplementedError

    def is_ready(self, index: int) -> bool:
        """True when ``layer(index)`` returns without recomputing (cheap enough for the GUI thread)."""
        return True

    def _layer_index(self, index: Any) -> int:
        i = int(index)
        n = self.shape[0]
        if not -n <= i < n:
            raise IndexError(f"layer {i} out of range for {n} layers")
        return i % n

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self.layer(self._layer_index(index))
        if isinstance(index, tuple) and index and isinstance(index[0], (int, np.integer)):
            return self.layer(self._layer_index(index[0]))[index[1:]]
        return np.asarray(self)[index]

    def __iter__(self):
        return (self.layer(i) for i in range(self.shape[0]))


class DenseAttentions(LayerAttentions):
    """Every layer's full weights, one float32 [head, query, key] array per layer (no stacking copy)."""

    def __init__(self, layers: list[np.ndarray]) -> None:
        h, q, k = layers[0].shape
        super().__init__(len(layers), h, q, k)
        self.layers = layers

    def layer(self, index: int) -> np.ndarray:
        return self.layers[index]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.stack(self.layers)  # [layer, head, query, key]
        return out if dtype is None else out.astype(dtype)

    def __getattr__(self, name: str) -> Any:
        # Array methods (sum, mean, max…) on the stacked array: small inputs only.
        if name.startswith("_") or name == "layers":
            raise AttributeError(name)
        return getattr(np.asarray(self), name)


@dataclass
class RowsPreview:
    """Which rows of which layer to take from the pass (the rows on screen), and who gets them: ``hand_over(rows
    block)`` with [head, rows, key] float16 weights as the store serves them, called once the layer is done."""

    layer: int
    rows: np.ndarray  # query positions, ascending
    hand_over: Any
    block: Any = None  # [head, rows, key] float16, filled block by block
    mean: Any = None  # [rows, key] float32: mean over heads of the float32 weights
    top: Any = None  # [rows, key] float32: their max

    def take(self, w: Any, s: int, e: int) -> None:
        """Copy what rows ``s..e`` of the pass's float32 weights ``w`` ([head, e-s, key]) hold of the wanted rows."""
        import torch

        if self.block is None:
            h, k = w.shape[0], w.shape[-1]
            self.block = np.empty((h, len(self.rows), k), dtype=np.float16)
            self.mean = np.empty((len(self.rows), k), dtype=np.float32)
            self.top = np.empty((len(self.rows), k), dtype=np.float32)
        at = np.flatnonzero((self.rows >= s) & (self.rows < e))
        if not len(at):
            return
        sel = w[:, torch.from_numpy(self.rows[at] - s)]  # [head, rows here, key]
        self.block[:, at] = sel.to(torch.float16).numpy()
        self.mean[at] = sel.mean(dim=0).numpy()
        self.top[at] = sel.amax(dim=0).numpy()
