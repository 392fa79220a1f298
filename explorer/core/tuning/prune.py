"""Attention-head pruning of a fine-tuned classifier: accuracy against heads removed, measured in one run.

The classifier is the frozen fine-tune (``finetune --mode frozen``: the encoder's mean-pooled sentence vector and
a linear head fitted by L-BFGS) on a bundled or user data set. Each head's importance is Michel et al. (2019,
"Are Sixteen Heads Really Better than One?"): a gate of 1 multiplies every head's output, and the importance is
|∂ loss / ∂ gate| summed over the training rows, normalised per layer (L2). Heads are removed least important
first (and, as contrasts, at random and most important first), physically (their query/key/value rows and output columns cut with transformers'
``prune_linear_layer``: transformers 5 dropped ``prune_heads``, this is what it did), keeping one head per layer;
the head is not refitted. The pruned model's logits are
checked against the unpruned model with the same heads gated to 0.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from explorer.core.io.charts import ChartSpec, Series
from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress

BATCH = 32
MAX_TOKENS = 128
RULE = ("importance of a head = |d loss / d gate| summed over the training rows (Michel et al. 2019), normalised "
        "per layer; removed least important first, one head kept in every layer; the fitted head is not refitted")


@dataclass
class PruneStep:
    removed: int
    heads_left: int
    parameters: int  # the encoder's, after pruning
    accuracy: float  # held-out accuracy, heads removed by importance
    random_accuracy: float  # the same count removed in a seeded random order
    reverse_accuracy: float  # the same count removed most important first (Michel et al.'s contrast)


@dataclass
class PruneResult:
    """The sweep: one step per count of heads removed, the importance of every head and the order used."""

    model: str
    data: str
    train_rows: int
    val_rows: int
    layers: int
    heads_per_layer: int
    pooling: str
    rule: str
    importance: list[list[float]]  # [layer][head]
    order: list[tuple[int, int]]  # (layer, head), the order heads are removed in
    random_order: list[tuple[int, int]]
    reverse_order: list[tuple[int, int]]
    steps: list[PruneStep]
    majority_baseline: float
    check: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def attention_layers(encoder: Any) -> list[Any]:
    """The BERT-style attention modules (``.self`` with query/key/value, ``.output.dense``) of ``encoder``."""
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    out = []
    for layer in layers or []:
        attn = getattr(layer, "attention", None)
        if attn is None or not all(hasattr(getattr(attn, "self", None), n) for n in ("query", "key", "value")):
            break
        out.append(attn)
    if not out or len(out) != len(layers):
        raise InputError("Head pruning runs on a BERT-style encoder (MiniLM, BERT); this model's attention layers "
                         "are of another kind.")
    return out


def head_count(encoder: Any) -> list[int]:
    """Heads left in every layer."""
    return [attn.self.query.out_features // attn.self.attention_head_size for attn in attention_layers(encoder)]


def prune_heads(encoder: Any, heads: dict[int, list[int]]) -> None:
    """Remove ``heads`` ({layer: [head, …]}, numbered as in the unpruned model) from ``encoder`` in place: the
    heads' query/key/value rows and their columns of the attention output projection."""
    import torch
    from transformers.pytorch_utils import prune_linear_layer

    layers = attention_layers(encoder)
    for layer, chosen in heads.items():
        attn = layers[layer]
        sa = attn.self
        done: set[int] = getattr(sa, "pruned_heads", set())
        chosen_set = set(chosen) - done
        if not chosen_set:
            continue
        n_now = sa.query.out_features // sa.attention_head_size
        if len(chosen_set) >= n_now:
            raise InputError(f"Layer {layer} would keep no head; at least one head stays in every layer.")
        mask = torch.ones(n_now, sa.attention_head_size)  # [head now, dim]
        for h in chosen_set:
            mask[h - sum(1 for p in done if p < h)] = 0
        index = mask.view(-1).eq(1).nonzero().squeeze(1)
        sa.query = prune_linear_layer(sa.query, index)
        sa.key = prune_linear_layer(sa.key, index)
        sa.value = prune_linear_layer(sa.value, index)
        attn.output.dense = prune_linear_layer(attn.output.dense, index, dim=1)
        sa.num_attention_heads = n_now - len(chosen_set)
        sa.all_head_size = sa.num_attention_heads * sa.attention_head_size
        sa.pruned_heads = done | chosen_set


def gate_heads(encoder: Any, gates: Any) -> list[Any]:
    """Multiply every head's output by ``gates`` [layer, head] (a hook before each attention output projection);
    returns the hook handles to remove."""
    handles = []
    for layer, attn in enumerate(attention_layers(encoder)):
        size = attn.self.attention_head_size

        def hook(_module: Any, args: tuple, layer: int = layer, size: int = size) -> tuple:
            return (args[0] * gates[layer].repeat_interleave(size),) + tuple(args[1:])

        handles.append(attn.output.dense.register_forward_pre_hook(hook))
    return handles


def _batches(tok: Any, data: Any, examples: list) -> list[dict]:
    out = []
    for i in range(0, len(examples), BATCH):
        rows = examples[i:i + BATCH]
        pairs = [ex.text_pair for ex in rows] if data.task == "pair" else None
        out.append(dict(tok([ex.text for ex in rows], pairs, return_tensors="pt", padding=True, truncation=True,
                            max_length=MAX_TOKENS)))
    return out


def _logits(encoder: Any, head: Any, batches: list[dict], pooling: str) -> Any:
    import torch

    from explorer.core.tuning.probe import pool

    with torch.no_grad():
        return torch.cat([head(pool(encoder(**b), b["attention_mask"], pooling)) for b in batches])  # [row, label]


def _accuracy(logits: Any, y: Any) -> float:
    return float((logits.argmax(-1) == y).double().mean()) if len(y) else 0.0


def importance(encoder: Any, head: Any, batches: list[dict], y: Any, pooling: str,
               cancel: threading.Event | None = None) -> Any:
    """Michel et al.'s head importance: |∂ loss / ∂ gate| summed over ``batches``, each layer L2-normalised:
    [layer, head]."""
    import torch

    from explorer.core.tuning.probe import pool

    counts = head_count(encoder)
    gates = torch.ones(len(counts), max(counts), requires_grad=True)  # [layer, head]
    handles = gate_heads(encoder, gates)
    try:
        total = torch.zeros_like(gates)
        start = 0
        for b in batches:
            check(cancel)
            n = len(b["input_ids"])
            logits = head(pool(encoder(**b), b["attention_mask"], pooling))
            loss = torch.nn.functional.cross_entropy(logits, y[start:start + n], reduction="sum")
            (grad,) = torch.autograd.grad(loss, gates)
            total += grad.abs()
            start += n
    finally:
        for h in handles:
            h.remove()
    return total / total.norm(dim=-1, keepdim=True).clamp(min=1e-20)


def removal_order(scores: Any, seed: int | None = None, reverse: bool = False) -> list[tuple[int, int]]:
    """Heads in the order they are removed: least important first (most important first when ``reverse``, or a
    seeded random order), never a layer's last head."""
    import torch

    layers, heads = scores.shape
    if seed is None:
        ranked = sorted(((float(scores[l_, h]), l_, h) for l_ in range(layers) for h in range(heads)),
                        reverse=reverse)
        candidates = [(l_, h) for _s, l_, h in ranked]
    else:
        perm = torch.randperm(layers * heads, generator=torch.Generator().manual_seed(seed)).tolist()
        candidates = [divmod(i, heads) for i in perm]
    left = [heads] * layers
    order = []
    for l_, h in candidates:
        if left[l_] > 1:
            order.append((l_, h))
            left[l_] -= 1
    return order


def prune_sweep(
    lm: Any,
    data_spec: str = "sentiment",
    step: int = 6,
    seed: int = 0,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> PruneResult:
    """Fine-tune a frozen classifier on ``data_spec`` with ``lm``'s encoder, then remove 0, step, 2·step, … heads
    (least important first, at random, most important first) from a copy and measure held-out accuracy after each."""
    import torch

    from explorer.core.io.bundled_data import resolve_data
    from explorer.core.tuning import probe
    from explorer.core.tuning.datasets import load_task_data

    if step < 1:
        raise InputError("The step (heads removed between two measurements) must be 1 or more.")
    start = time.perf_counter()
    with lm.lock:
        encoder = copy.deepcopy(probe.encoder_of(lm.model)).eval()
    counts = head_count(encoder)  # refuses a non-BERT attention before any work
    data = load_task_data(resolve_data(data_spec), seed=seed)
    if data.task not in ("classify", "pair"):
        raise InputError(f"{data_spec} is a '{data.task}' set; pruning measures a sentence classifier (classify or "
                         "pair data, e.g. sentiment).")
    tok = lm.tokenizer
    train_b, val_b = _batches(tok, data, data.train), _batches(tok, data, data.val)
    label2id = data.label2id
    y_train = torch.tensor([label2id[ex.label] for ex in data.train])
    y_val = torch.tensor([label2id[ex.label] for ex in data.val])
    pooling = "mean"
    progress(0.02, "Frozen fine-tune: encoding the data once…")
    x_train = probe.sentence_features(encoder, train_b, pooling, cancel=cancel)
    x_val = probe.sentence_features(encoder, val_b, pooling, cancel=cancel)
    progress(0.15, "Frozen fine-tune: fitting the head (L-BFGS)…")
    head, _rounds, _conv = probe.fit_probe(x_train, y_train, len(data.labels), x_val, y_val, 50, cancel)
    progress(0.2, "Head importance (gradient of the loss with respect to each head's gate)…")
    scores = importance(encoder, head, train_b, y_train, pooling, cancel)  # [layer, head]
    order = removal_order(scores)
    random_order = removal_order(scores, seed=seed)
    reverse_order = removal_order(scores, reverse=True)
    n_max = len(order)
    sweep = sorted(set(range(0, n_max, step)) | {n_max})
    orders = {"importance": order, "random": random_order, "reverse": reverse_order}
    pruned = {key: copy.deepcopy(encoder) for key in orders}
    removed = dict.fromkeys(orders, 0)
    steps: list[PruneStep] = []
    for i, n in enumerate(sweep):
        accs = {}
        for key, heads in orders.items():
            check(cancel)
            chosen: dict[int, list[int]] = {}
            for l_, h in heads[removed[key]:n]:
                chosen.setdefault(l_, []).append(h)
            prune_heads(pruned[key], chosen)
            removed[key] = n
            accs[key] = _accuracy(_logits(pruned[key], head, val_b, pooling), y_val)
        params = sum(p.numel() for p in pruned["importance"].parameters())
        steps.append(PruneStep(n, sum(counts) - n, params, accs["importance"], accs["random"], accs["reverse"]))
        progress(0.3 + 0.6 * (i + 1) / len(sweep),
                 f"{n} heads removed: accuracy {accs['importance']:.0%} (random order {accs['random']:.0%}, most "
                 f"important first {accs['reverse']:.0%})")
    result = PruneResult(
        model=lm.name, data=data_spec, train_rows=len(data.train), val_rows=len(data.val), layers=len(counts),
        heads_per_layer=max(counts), pooling=pooling, rule=RULE, importance=scores.tolist(),
        order=[tuple(o) for o in order], random_order=[tuple(o) for o in random_order],
        reverse_order=[tuple(o) for o in reverse_order], steps=steps, majority_baseline=data.majority_baseline(),
    )
    result.check = _gate_check(encoder, pruned["importance"], head, val_b, pooling, order, counts)
    result.seconds = time.perf_counter() - start
    progress(1.0, f"{n_max} heads removed: held-out accuracy {steps[-1].accuracy:.0%} "
                  f"(all heads {steps[0].accuracy:.0%})")
    return result


def _gate_check(encoder: Any, pruned: Any, head: Any, val_b: list[dict], pooling: str,
                order: list[tuple[int, int]], counts: list[int]) -> dict[str, float]:
    """The pruned model against the unpruned one with the same heads gated to 0: their logits must agree."""
    import torch

    gates = torch.ones(len(counts), max(counts))
    for l_, h in order:
        gates[l_, h] = 0.0
    handles = gate_heads(encoder, gates)
    try:
        gated = _logits(encoder, head, val_b, pooling)
    finally:
        for hd in handles:
            hd.remove()
    cut = _logits(pruned, head, val_b, pooling)
    return {"removed": float(len(order)), "max_logit_difference": float((gated - cut).abs().max()),
            "argmax_agreement": float((gated.argmax(-1) == cut.argmax(-1)).double().mean())}


def prune_chart(result: PruneResult) -> ChartSpec:
    """Held-out accuracy against heads removed: by importance, at random, and the majority-class baseline."""
    x = [s.removed for s in result.steps]
    return ChartSpec(
        title=f"{result.model}: accuracy against attention heads removed ({result.data})",
        x_label="heads removed",
        y_label="held-out accuracy",
        series=[
            Series("least important first (Michel et al.)", x, [s.accuracy for s in result.steps]),
            Series("random order", x, [s.random_accuracy for s in result.steps], dashed=True),
            Series("most important first", x, [s.reverse_accuracy for s in result.steps]),
            Series("majority class", [x[0], x[-1]], [result.majority_baseline] * 2, dashed=True, width=1.0),
        ],
        y_range=(0.0, 1.05),
        whole_x=True,
        note=f"{result.layers}×{result.heads_per_layer} heads, {result.val_rows} held-out rows; {result.rule}.",
        meta={"result": result.to_dict()},
    )
