"""GPT-3's K-shot curve for a decoder and its int8 copy, on the same items and demonstration draws: how much of
the few-shot accuracy int8 dynamic quantisation keeps (the lecture's "smaller models", measured on a task)."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress


def int8_copy(lm: Any) -> Any:
    """A loaded model whose module is an int8 copy of ``lm``'s (see :func:`core.models.quantize.quantize`); named
    '<name> (int8)', with its own lock. The card keeps float32 parameter counts: quantisation removes none."""
    from explorer.core.models.quantize import quantize

    with lm.lock:
        model = quantize(lm.model)
    return dataclasses.replace(lm, name=f"{lm.name} (int8)", model=model, lock=threading.RLock())


def int8_sweep(
    lm: Any,
    task: str = "qa",
    shots: list[int] | str = "0,1,4",
    draws: int = 1,
    limit: int | None = 20,
    seed: int = 0,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> list:
    """The K-shot sweep of ``task`` on ``lm`` (float32) and on its int8 copy: [float32 result, int8 result]."""
    from explorer.core.prompting.sweep import run_sweeps
    from explorer.core.prompting.tasks import load_task

    if "causal-lm" not in lm.heads:
        raise InputError(f"'{lm.name}' is a {lm.kind}; the K-shot sweep runs on a decoder (smollm2, gemma3).")
    chosen = load_task(task, seed=seed)
    progress(0.0, f"Quantising a copy of {lm.name} to int8…")
    quantised = int8_copy(lm)
    check(cancel)
    return run_sweeps([lm, quantised], chosen, shots, draws=draws, limit=limit, seed=seed, progress=progress,
                      cancel=cancel)
