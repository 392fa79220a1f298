"""int8 dynamic quantisation of a model's layers (``torch.ao.quantization.quantize_dynamic``): one function every
area that compares int8 with float32 uses (``core.tuning.quantize``'s figures, ``core.prompting.int8_sweep``)."""

from __future__ import annotations

import copy
from typing import Any


def quantize(model: Any) -> Any:
    """An int8 dynamically quantised copy of ``model``: every nn.Linear but the output embedding (a decoder's
    vocabulary projection, tied to its input embedding, stays float32 as the embeddings do); ``model`` is
    unchanged."""
    import warnings

    import torch

    copied = copy.deepcopy(model).eval()
    out = copied.get_output_embeddings() if hasattr(copied, "get_output_embeddings") else None
    spec = {name: torch.ao.quantization.default_dynamic_qconfig for name, m in copied.named_modules()
            if isinstance(m, torch.nn.Linear) and m is not out}
    with warnings.catch_warnings():  # torch 2.13 marks quantised tensor creation deprecated (pytorch#184982)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(copied, spec, dtype=torch.qint8)
