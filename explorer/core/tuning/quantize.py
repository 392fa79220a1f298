"""int8 dynamic quantisation beside float32, measured in one run: the lecture's "make the model smaller".

``torch.ao.quantization.quantize_dynamic`` stores every ``nn.Linear`` weight of the layers as int8 (one scale per
tensor) and quantises the activations on the fly; embeddings, layer norms and a decoder's output projection
(tied to its input embedding) stay float32. Measured on a copy of a loaded
model, on the same inputs for both: bytes in memory (every tensor the module holds, the packed int8 weights
included), bytes on disk (``torch.save`` of the state dict, the file's size), seconds per input (same inputs,
same thread count, after one warm-up pass each) and the change in results:

- an encoder: cosine between each held-out sentence's mean-pooled vector from the float and the int8 model,
  and the frozen probe's held-out accuracy (the same L-BFGS head as ``finetune --mode frozen``) fitted on each;
  with a masked-LM head, the overlap of the top-5 fillers of masked words;
- a decoder: next-token top-1 agreement between the two models at every position of a held-out text, and the
  perplexity of each on it.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from explorer.core.io.charts import ChartSpec, Series
from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.models.quantize import quantize

__all__ = ["quantize", "compare_int8"]

TOP_K = 5
MAX_TOKENS = 128  # each sentence or window of held-out text is cut to this many tokens
METHOD = ("torch.ao.quantization.quantize_dynamic on every nn.Linear, dtype=torch.qint8 (per-tensor scales): int8 "
          "weights, activations quantised per input at run time; embeddings, norms and a decoder's output "
          "projection (tied to its embedding) stay float32")


@dataclass
class Measure:
    """One model's figures: float32 or int8."""

    label: str
    bytes_in_memory: int
    bytes_on_disk: int
    seconds_per_input: float
    float_linear: int  # nn.Linear modules left in float32
    int8_linear: int  # dynamically quantised Linear modules


@dataclass
class QuantizeResult:
    """float32 against int8 on the same inputs; ``agreement`` names each result change measured."""

    model: str
    kind: str
    method: str
    engine: str
    threads: int
    inputs: int
    float32: Measure
    int8: Measure
    agreement: dict[str, float] = field(default_factory=dict)
    explain: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def size_ratio(self) -> float:
        return self.int8.bytes_on_disk / self.float32.bytes_on_disk if self.float32.bytes_on_disk else math.nan

    @property
    def speedup(self) -> float:
        return self.float32.seconds_per_input / self.int8.seconds_per_input if self.int8.seconds_per_input else math.nan


def tensor_bytes(obj: Any) -> int:
    """Bytes of every tensor in ``obj`` (a tensor, or nested tuples/lists/dicts of them); an int8 tensor counts one
    byte an element, a packed quantised Linear its int8 weight and float bias."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (tuple, list)):
        return sum(tensor_bytes(o) for o in obj)
    if isinstance(obj, dict):
        return sum(tensor_bytes(o) for o in obj.values())
    return 0


def memory_bytes(model: Any) -> int:
    """What the module's weights take in memory: each distinct tensor once (tied weights are one tensor), its
    parameters, all its buffers (those not saved too) and the packed int8 weights of quantised Linear layers
    (which only the state dict reaches)."""
    import torch

    seen: set[int] = set()
    total = 0
    found: list = list(model.parameters()) + list(model.buffers())
    for value in model.state_dict(keep_vars=True).values():
        found += list(value) if isinstance(value, (tuple, list)) else [value]
    for t in found:
        if not isinstance(t, torch.Tensor):
            continue
        key = id(t) if t.is_quantized else t.data_ptr()
        if key in seen:
            continue
        seen.add(key)
        total += tensor_bytes(t)
    return total


def disk_bytes(model: Any) -> int:
    """Size of ``torch.save(model.state_dict())`` written to a file (how a quantised model is saved: safetensors
    holds no packed int8 weights)."""
    import torch

    fd, path = tempfile.mkstemp(suffix=".pt")
    os.close(fd)
    try:
        torch.save(model.state_dict(), path)
        return os.path.getsize(path)
    finally:
        os.unlink(path)


def count_linear(model: Any) -> tuple[int, int]:
    """(float nn.Linear modules, int8 dynamically quantised Linear modules) in ``model``."""
    import torch

    dq = torch.ao.nn.quantized.dynamic.Linear
    mods = list(model.modules())
    return sum(type(m) is torch.nn.Linear for m in mods), sum(isinstance(m, dq) for m in mods)


def heldout_sentences() -> list[str]:
    """The held-out sentences of the bundled sentiment set (its validation split, seed 0): no model here saw them."""
    from explorer.core.io.bundled_data import resolve_data
    from explorer.core.tuning.datasets import load_task_data

    data = load_task_data(resolve_data("sentiment"), seed=0)
    return [ex.text for ex in data.val]


def heldout_text() -> str:
    """The bundled long sample text (the project's own prose on pre-training)."""
    from explorer.core.io.paths import resources_dir

    return (resources_dir() / "samples" / "long-pretraining.txt").read_text(encoding="utf-8")


def _windows(text: str, tokenizer: Any, size: int = MAX_TOKENS) -> list[list[int]]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return [bos + ids[i:i + size - len(bos)] for i in range(0, len(ids), size - len(bos)) if len(ids[i:i + size]) > 1]


def timed(run: Any, inputs: list, progress: Progress, cancel: threading.Event | None,
           frac: tuple[float, float], what: str) -> tuple[list, float]:
    """Run every input once (a warm-up pass on the first first); outputs and seconds per input."""
    import torch

    with torch.inference_mode():
        run(inputs[0])
        outs, spent = [], 0.0
        for i, x in enumerate(inputs):
            check(cancel)
            t0 = time.perf_counter()
            outs.append(run(x))
            spent += time.perf_counter() - t0
            progress(frac[0] + (frac[1] - frac[0]) * (i + 1) / len(inputs), f"{what}: input {i + 1}/{len(inputs)}")
    return outs, spent / len(inputs)


def _measure(label: str, model: Any, seconds: float) -> Measure:
    return Measure(label, memory_bytes(model), disk_bytes(model), seconds, *count_linear(model))


def compare_int8(
    lm: Any,
    texts: list[str] | None = None,
    probe_accuracy: bool = True,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> QuantizeResult:
    """Quantise a copy of the loaded model ``lm`` to int8 and measure both on the same held-out inputs.

    ``texts``: sentences for an encoder (default: the held-out sentiment sentences) or one text for a decoder
    (default: the bundled long sample, read in windows of 128 tokens)."""
    import torch

    if lm.kind not in ("encoder", "decoder"):
        raise InputError(f"'{lm.name}' is a {lm.kind}; int8 comparison runs on an encoder (MiniLM) or a decoder "
                         "(SmolLM2).")
    if texts is not None and not any(t.strip() for t in texts):
        raise InputError("The text to measure on is empty.")
    progress(0.0, f"Quantising a copy of {lm.name} to int8…")
    with lm.lock:
        float_model = lm.model.eval()
        int8_model = quantize(float_model)
    check(cancel)
    result = QuantizeResult(
        model=lm.name, kind=lm.kind, method=METHOD, engine=torch.backends.quantized.engine,
        threads=torch.get_num_threads(), inputs=0,
        float32=Measure("float32", 0, 0, 0.0, 0, 0), int8=Measure("int8", 0, 0, 0.0, 0, 0),
    )
    if lm.kind == "encoder":
        _encoder(lm, float_model, int8_model, texts, probe_accuracy, result, progress, cancel)
    else:
        _decoder(lm, float_model, int8_model, texts, result, progress, cancel)
    progress(1.0, f"int8: {result.size_ratio:.2f}× the bytes on disk, {result.speedup:.2f}× the speed")
    return result


def _encoder_of(model: Any) -> Any:
    from explorer.core.tuning.probe import encoder_of

    return encoder_of(model)


def _encoder(lm: Any, float_model: Any, int8_model: Any, texts: list[str] | None, probe_accuracy: bool,
             result: QuantizeResult, progress: Progress, cancel: threading.Event | None) -> None:
    import torch

    from explorer.core.tuning.probe import pool

    sentences = [t for t in (texts if texts is not None else heldout_sentences()) if t.strip()]
    tok = lm.tokenizer
    inputs = [tok(s, return_tensors="pt", truncation=True, max_length=MAX_TOKENS) for s in sentences]

    def runner(model: Any) -> Any:
        enc = _encoder_of(model)
        return lambda batch: pool(enc(**batch), batch["attention_mask"], "mean")[0]  # [hidden]

    with lm.lock:
        f_out, f_sec = timed(runner(float_model), inputs, progress, cancel, (0.05, 0.3), "float32")
    q_out, q_sec = timed(runner(int8_model), inputs, progress, cancel, (0.3, 0.55), "int8")
    cos = torch.nn.functional.cosine_similarity(torch.stack(f_out), torch.stack(q_out), dim=-1)  # [sentence]
    result.inputs = len(inputs)
    result.float32 = _measure("float32", float_model, f_sec)
    result.int8 = _measure("int8", int8_model, q_sec)
    result.agreement["cosine_mean"] = float(cos.mean())
    result.agreement["cosine_min"] = float(cos.min())
    result.explain["cosine_mean"] = (f"cosine of each sentence's mean-pooled vector, float32 against int8, "
                                     f"{len(inputs)} held-out sentences: mean")
    result.explain["cosine_min"] = "the same cosine: the lowest sentence"
    if "mlm" in lm.heads and hasattr(float_model, "get_output_embeddings"):
        _fill_overlap(lm, float_model, int8_model, sentences, result, cancel)
    if probe_accuracy and texts is None:
        progress(0.6, "Frozen probe on the float32 and the int8 encoder…")
        f_acc, q_acc, n_val = _probe_accuracies(lm, float_model, int8_model, cancel)
        result.agreement["probe_accuracy_float32"] = f_acc
        result.agreement["probe_accuracy_int8"] = q_acc
        result.explain["probe_accuracy_float32"] = (f"frozen probe (finetune --mode frozen's L-BFGS head) fitted "
                                                    f"on the float32 encoder: held-out sentiment accuracy, {n_val} rows")
        result.explain["probe_accuracy_int8"] = "the same probe fitted on the int8 encoder's vectors"


def _fill_overlap(lm: Any, float_model: Any, int8_model: Any, sentences: list[str], result: QuantizeResult,
                  cancel: threading.Event | None) -> None:
    """Mask the longest word of each sentence; share of float32's top-5 fillers int8 also ranks top-5."""
    import torch

    tok = lm.tokenizer
    overlaps, same_top1 = [], 0
    for s in sentences:
        check(cancel)
        words = re.findall(r"[A-Za-z]{4,}", s)
        if not words:
            continue
        word = max(words, key=len)
        masked = s.replace(word, tok.mask_token, 1)
        batch = tok(masked, return_tensors="pt", truncation=True, max_length=MAX_TOKENS)
        where = (batch["input_ids"][0] == tok.mask_token_id).nonzero()
        if not len(where):
            continue
        pos = int(where[0])
        with torch.inference_mode():
            with lm.lock:
                f_top = float_model(**batch).logits[0, pos].topk(TOP_K).indices.tolist()
            q_top = int8_model(**batch).logits[0, pos].topk(TOP_K).indices.tolist()
        overlaps.append(len(set(f_top) & set(q_top)) / TOP_K)
        same_top1 += f_top[0] == q_top[0]
    if overlaps:
        result.agreement["fill_top5_overlap"] = sum(overlaps) / len(overlaps)
        result.agreement["fill_top1_agreement"] = same_top1 / len(overlaps)
        result.explain["fill_top5_overlap"] = (f"fill-mask: share of float32's top-5 fillers also in int8's top-5, "
                                               f"the longest word of {len(overlaps)} sentences masked")
        result.explain["fill_top1_agreement"] = "fill-mask: the same top filler"


def probe_accuracy(encoder: Any, tokenizer: Any, lock: Any = None, cancel: threading.Event | None = None
                   ) -> tuple[float, int]:
    """The frozen fine-tune's held-out accuracy on the bundled sentiment set (seed 0) with ``encoder``'s
    mean-pooled vectors: (accuracy, held-out rows)."""
    import torch

    from explorer.core.io.bundled_data import resolve_data
    from explorer.core.tuning import probe
    from explorer.core.tuning.datasets import load_task_data

    data = load_task_data(resolve_data("sentiment"), seed=0)
    rows = data.train + data.val
    batches = [dict(tokenizer([ex.text for ex in rows[i:i + 32]], return_tensors="pt", padding=True,
                              truncation=True, max_length=MAX_TOKENS)) for i in range(0, len(rows), 32)]
    y = torch.tensor([data.label2id[ex.label] for ex in rows])
    n = len(data.train)
    x = probe.sentence_features(encoder, batches, "mean", lock, cancel=cancel)
    _head, rounds, _conv = probe.fit_probe(x[:n], y[:n], len(data.labels), x[n:], y[n:], 50, cancel)
    return rounds[-1].val_accuracy, len(data.val)


def _probe_accuracies(lm: Any, float_model: Any, int8_model: Any, cancel: threading.Event | None
                      ) -> tuple[float, float, int]:
    f_acc, n_val = probe_accuracy(_encoder_of(float_model), lm.tokenizer, lm.lock, cancel)
    q_acc, _n = probe_accuracy(_encoder_of(int8_model), lm.tokenizer, None, cancel)
    return f_acc, q_acc, n_val


def _decoder(lm: Any, float_model: Any, int8_model: Any, texts: list[str] | None, result: QuantizeResult,
             progress: Progress, cancel: threading.Event | None) -> None:
    import torch

    text = "\n".join(texts) if texts is not None else heldout_text()
    windows = _windows(text, lm.tokenizer)
    if not windows:
        raise InputError("The text to measure on has fewer than two tokens.")
    inputs = [torch.tensor([w]) for w in windows]

    def runner(model: Any) -> Any:
        return lambda ids: model(input_ids=ids).logits[0].float()  # [token, vocab]

    with lm.lock:
        f_out, f_sec = timed(runner(float_model), inputs, progress, cancel, (0.05, 0.45), "float32")
    q_out, q_sec = timed(runner(int8_model), inputs, progress, cancel, (0.45, 0.9), "int8")
    agree = total = 0
    nll = {"float32": 0.0, "int8": 0.0}
    for ids, f, q in zip(inputs, f_out, q_out, strict=True):
        target = ids[0, 1:]
        agree += int((f[:-1].argmax(-1) == q[:-1].argmax(-1)).sum())
        total += len(target)
        nll["float32"] += float(torch.nn.functional.cross_entropy(f[:-1], target, reduction="sum"))
        nll["int8"] += float(torch.nn.functional.cross_entropy(q[:-1], target, reduction="sum"))
    result.inputs = len(inputs)
    result.float32 = _measure("float32", float_model, f_sec)
    result.int8 = _measure("int8", int8_model, q_sec)
    result.agreement["next_token_top1_agreement"] = agree / total
    result.agreement["perplexity_float32"] = math.exp(nll["float32"] / total)
    result.agreement["perplexity_int8"] = math.exp(nll["int8"] / total)
    result.explain["next_token_top1_agreement"] = (f"share of {total} positions of the held-out text where both "
                                                   f"predict the same next token ({len(inputs)} windows of up to "
                                                   f"{MAX_TOKENS} tokens)")
    result.explain["perplexity_float32"] = "perplexity of the held-out text, float32"
    result.explain["perplexity_int8"] = "perplexity of the held-out text, int8"


def quantize_chart(result: QuantizeResult) -> ChartSpec:
    """float32 against int8: MB in memory and on disk, and milliseconds per input, as bars."""
    return ChartSpec(
        title=f"{result.model}: float32 against int8 (dynamic quantisation)",
        x_label="measure",
        y_label="float32 = 1",
        series=[
            Series("float32", [0, 1, 2], [1.0, 1.0, 1.0], style="bar"),
            Series("int8", [0, 1, 2], [
                result.int8.bytes_in_memory / max(result.float32.bytes_in_memory, 1),
                result.int8.bytes_on_disk / max(result.float32.bytes_on_disk, 1),
                result.int8.seconds_per_input / max(result.float32.seconds_per_input, 1e-12),
            ], style="bar"),
        ],
        x_ticks=[(0, "memory"), (1, "disk"), (2, "time per input")],
        meta={"result": result.to_dict()},
    )
