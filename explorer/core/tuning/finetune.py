"""The lecture's ways to fine-tune a pre-trained encoder for a task, on CPU in minutes, and "why pre-train":

- ``frozen``: the encoder stays fixed; its own sentence representation (see :mod:`explorer.core.tuning.probe`) is
  computed once and a linear head is fitted exactly (L-BFGS, scikit-learn's objective); per task you store
  the head and a manifest naming the encoder.
- ``adapter``: small LoRA matrices (peft) inside the attention layers plus the head learn; per task you
  store only those. (peft has no Houlsby-style bottleneck adapter; LoRA is its adapter method.)
- ``full``: every parameter learns; per task you store a whole copy of the model.
- ``scratch``: the same architecture and training as ``full`` but from random weights: the lecture's
  figure of why pre-training matters (see :func:`compare_scratch`).

The figures in :func:`plan` are computed before any training, from the real model built on the meta device;
the bytes a run stores are measured on the folder it wrote (:mod:`explorer.core.tuning.taskstore`).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from explorer.core.io.charts import ChartSpec, Series
from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.tuning.datasets import Example, TaskData
from explorer.core.tuning.finetune_results import EpochReport, FinetuneResult, ModeCost, TrainUpdate
from explorer.core.tuning.task_model import (
    MODES,
    base_folder,
    build_task_model,
    check_model,
    model_pooling,
    plan,
)
from explorer.core.tuning.taskstore import (
    META_FILE,
    check_out_dir,
    out_lock,
    read_meta,
    weights_sha256,
    write_folder,
)

__all__ = ["META_FILE", "read_meta"]
MODE_TITLES = {
    "frozen": "Frozen encoder + trained head",
    "full": "Full fine-tune (every weight)",
    "adapter": "Adapters (LoRA) + head",
    "scratch": "Same architecture from random weights",
}


# frozen: the most L-BFGS rounds (10 iterations each); it stops earlier when converged.
DEFAULT_EPOCHS = {"frozen": 50, "full": 3, "adapter": 3, "scratch": 3}
DEFAULT_LR = {"frozen": None, "full": 1e-4, "adapter": 1e-3, "scratch": 1e-4}
MAX_EPOCHS = 10_000
MAX_LR = 1.0
MAX_BATCH = 4096
MAX_LORA_R = 1024
MAX_TOKENS = 128
ENCODE_CHUNK = 1000


STORAGE = {"frozen": "head", "adapter": "adapter", "full": "model", "scratch": "model"}


def validate(mode: str = "frozen", epochs: int | None = None, learning_rate: float | None = None,
             batch_size: int = 16, lora_r: int = 8, seed: int = 0, pooling: str | None = None) -> None:
    """Refuse bad settings with one clear line, before any data or model is loaded."""
    if mode not in MODES:
        raise InputError(f"Unknown mode '{mode}'. Choose one of: {', '.join(MODES)}.")
    if epochs is not None and not 1 <= epochs <= MAX_EPOCHS:
        raise InputError(f"--epochs must be between 1 and {MAX_EPOCHS:,} (got {epochs}).")
    if learning_rate is not None:
        lr = float(learning_rate)
        if not math.isfinite(lr) or not 0.0 < lr <= MAX_LR:
            raise InputError(f"--lr must be a number above 0 and at most {MAX_LR:g} (got {learning_rate}).")
    if not 1 <= batch_size <= MAX_BATCH:
        raise InputError(f"--batch-size must be between 1 and {MAX_BATCH} (got {batch_size}).")
    if not 1 <= lora_r <= MAX_LORA_R:
        raise InputError(f"--lora-r must be between 1 and {MAX_LORA_R} (got {lora_r}).")
    if not 0 <= seed < 2**32:
        raise InputError(f"--seed must be between 0 and {2**32 - 1} (got {seed}).")
    if pooling is not None:
        from explorer.core.tuning.probe import check_pooling

        check_pooling(pooling)


# ---------------------------------------------------------------- encoding the data


def _encode(tokenizer: Any, task: str, examples: list[Example], label2id: dict[str, int],
            max_length: int = MAX_TOKENS, progress: Progress = no_progress,
            cancel: threading.Event | None = None, frac: tuple[float, float] = (0.0, 1.0),
            what: str = "rows") -> list[dict]:
    """One dict of token ids (+ labels) per example, tokenized in chunks (progress after each); tag labels
    sit on each word's first sub-token."""
    out: list[dict] = []
    n = len(examples)
    for lo in range(0, n, ENCODE_CHUNK):
        check(cancel)
        chunk = examples[lo:lo + ENCODE_CHUNK]
        if task == "tokens":
            try:
                enc = tokenizer([ex.tokens for ex in chunk], is_split_into_words=True, truncation=True,
                                max_length=max_length)
            except Exception as err:
                raise InputError(f"The tokenizer cannot take pre-split words ({err}).") from err
            for i, ex in enumerate(chunk):
                labels, prev = [], None
                for w in enc.word_ids(i):
                    labels.append(-100 if w is None or w == prev else label2id.get(ex.tags[w], -100))
                    prev = w
                item = {k: enc[k][i] for k in enc.keys()}
                item["labels"] = labels
                out.append(item)
        else:
            pairs = [ex.text_pair for ex in chunk]
            enc = tokenizer([ex.text for ex in chunk], pairs if task == "pair" else None, truncation=True,
                            max_length=max_length)
            for i, ex in enumerate(chunk):
                item = {k: enc[k][i] for k in enc.keys()}
                item["labels"] = label2id.get(ex.label, -100)
                out.append(item)
        done = min(n, lo + ENCODE_CHUNK)
        progress(frac[0] + (frac[1] - frac[0]) * done / max(1, n), f"Tokenizing {what}: {done:,}/{n:,}")
    return out


def _collate(tokenizer: Any, items: list[dict]) -> dict:
    import torch

    feats = [{k: v for k, v in it.items() if k != "labels"} for it in items]
    batch = tokenizer.pad(feats, return_tensors="pt")
    labels = [it["labels"] for it in items]
    if isinstance(labels[0], list):
        width = batch["input_ids"].shape[1]
        batch["labels"] = torch.tensor([lab + [-100] * (width - len(lab)) for lab in labels])  # [batch, token]
    else:
        batch["labels"] = torch.tensor(labels)  # [batch]
    return dict(batch)


def train_epoch(model: Any, collate: Callable[[list[int]], dict], batches: list[list[int]], optimizer: Any,
                epoch: int, epochs: int, batch_losses: list[tuple[float, float]],
                on_batch: Callable[[int, int, float], Any], progress: Progress = no_progress,
                cancel: threading.Event | None = None) -> list[float]:
    """One epoch of gradient steps (the batches' losses, appended to ``batch_losses`` at fractional epochs too);
    a loss that is not finite stops with a message before anything is saved."""
    import torch

    losses: list[float] = []
    steps = len(batches)
    for step, idx in enumerate(batches, 1):
        check(cancel)
        model.train()
        loss = model(**collate(idx)).loss
        if not torch.isfinite(loss):
            raise InputError(f"Training diverged (the loss became {float(loss)}) at epoch {epoch}, batch {step}; "
                             "nothing was saved. Lower the learning rate (--lr).")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        batch_losses.append((epoch - 1 + step / steps, losses[-1]))
        done = ((epoch - 1) * steps + step) / (epochs * steps)
        progress(0.1 + 0.85 * done, f"Epoch {epoch}/{epochs}, batch {step}/{steps}: loss {losses[-1]:.3f}")
        on_batch(epoch, step, losses[-1])
    return losses


def _batches(n: int, batch_size: int, generator: Any | None) -> list[list[int]]:
    import torch

    order = torch.randperm(n, generator=generator).tolist() if generator is not None else list(range(n))
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def _accuracy(logits: Any, labels: Any) -> tuple[int, int]:
    pred = logits.argmax(-1)
    mask = labels != -100
    return int((pred[mask] == labels[mask]).sum()), int(mask.sum())


def _max_length(lm: Any) -> int:
    tok = lm.tokenizer
    return int(min(MAX_TOKENS, lm.max_length, getattr(tok, "model_max_length", MAX_TOKENS) or MAX_TOKENS))


# ---------------------------------------------------------------- training


def finetune(
    lm: Any,
    data: TaskData,
    mode: str = "frozen",
    epochs: int | None = None,
    learning_rate: float | None = None,
    batch_size: int = 16,
    seed: int = 0,
    lora_r: int = 8,
    pooling: str | None = None,
    out_dir: str | os.PathLike | None = None,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
    partial: Callable[[TrainUpdate], None] | None = None,
) -> FinetuneResult:
    """Fine-tune ``lm`` on ``data`` in ``mode``; report every batch (frozen: every L-BFGS round) through
    ``partial``; save to ``out_dir`` (only what the mode stores per task)."""
    validate(mode, epochs, learning_rate, batch_size, lora_r, seed, pooling)
    if mode == "frozen" and learning_rate is not None:
        note = "The learning rate does not apply to the frozen head: L-BFGS picks its own steps (line search)."
    else:
        note = ""
    epochs = DEFAULT_EPOCHS[mode] if epochs is None else int(epochs)
    lr = DEFAULT_LR[mode] if learning_rate is None or mode == "frozen" else float(learning_rate)
    if out_dir is None:
        return _finetune(lm, data, mode, epochs, lr, batch_size, seed, lora_r, pooling, None, note, progress, cancel,
                         partial)
    out_dir = check_out_dir(out_dir, base_folders(lm))
    with out_lock(out_dir):  # held from the first step to the save: a second run into this folder is refused
        return _finetune(lm, data, mode, epochs, lr, batch_size, seed, lora_r, pooling, out_dir, note, progress,
                         cancel, partial)


def base_folders(lm: Any) -> list[str]:
    """Every folder the run's base model is read from: a fine-tune saved into one of them would replace it."""
    extra = getattr(lm.card, "extra", {}) or {}
    found = [getattr(lm.entry, "location", ""), extra.get("converted_cache") or ""]
    return [f for f in found if f and getattr(lm.entry, "source", "") != "hub"]


def _finetune(lm: Any, data: TaskData, mode: str, epochs: int, lr: float, batch_size: int, seed: int, lora_r: int,
              pooling: str | None, out_dir: Path | None, note: str, progress: Progress,
              cancel: threading.Event | None, partial: Callable[[TrainUpdate], None] | None) -> FinetuneResult:
    check_model(lm, data.task)
    start = time.perf_counter()
    progress(0.0, f"Building the {data.task} model ({mode})…")
    costs = plan(lm, data.task, data.labels, lora_r)
    if mode == "frozen":
        result, model = _train_frozen(lm, data, epochs, seed, pooling, costs, progress, cancel, partial)
    else:
        result, model = _train_weights(lm, data, mode, epochs, lr, batch_size, seed, lora_r, costs, progress,
                                       cancel, partial)
    if note:
        result.notes.append(note)
    if out_dir is not None:
        check(cancel)
        progress(0.96, "Saving…")
        result.seconds = time.perf_counter() - start
        save(model, lm, result, data, Path(out_dir))
    result.seconds = time.perf_counter() - start
    progress(1.0, f"Validation accuracy {result.val_accuracy:.0%} after {len(result.history)} "
                  f"{'round(s)' if mode == 'frozen' else 'epoch(s)'}")
    return result


def _result(lm: Any, data: TaskData, mode: str, costs: list[ModeCost], history: list[EpochReport],
            initial: float, epochs: int, lr: float | None, seed: int, **kw: Any) -> FinetuneResult:
    cost = next(c for c in costs if c.mode == mode)
    return FinetuneResult(
        model=lm.name, task=data.task, mode=mode, labels=list(data.labels),
        trainable_parameters=cost.trainable_parameters, total_parameters=cost.total_parameters,
        weight_bytes=cost.stored_bytes, history=history, val_accuracy=history[-1].val_accuracy if history else initial,
        initial_val_accuracy=initial, majority_baseline=data.majority_baseline(),
        train_rows=len(data.train), val_rows=len(data.val), epochs=epochs, learning_rate=lr, seed=seed,
        seconds=0.0, costs=costs, **kw,
    )


def _train_frozen(lm: Any, data: TaskData, rounds: int, seed: int, pooling: str | None, costs: list[ModeCost],
                  progress: Progress, cancel: threading.Event | None,
                  partial: Callable[[TrainUpdate], None] | None) -> tuple[FinetuneResult, Any]:
    """Cache the encoder's features once, then fit the linear head exactly (see :mod:`probe`)."""
    import copy

    import torch

    from explorer.core.tuning import probe

    task, tok = data.task, lm.tokenizer
    if pooling is None:
        pooling, source = model_pooling(lm)
    else:
        source = "chosen by the user (the model's own: {} — {})".format(*model_pooling(lm))
    encoder = probe.encoder_of(lm.model)
    if pooling == "pooler" and getattr(encoder, "pooler", None) is None:
        raise InputError(f"'{lm.name}' has no pooler; choose mean, cls or max pooling.")
    label2id = data.label2id
    max_length = _max_length(lm)
    n_train = len(data.train)
    items = _encode(tok, task, data.train + data.val, label2id, max_length, progress, cancel, (0.0, 0.1))
    batch_idx = _batches(len(items), 32, None)
    if task == "tokens":
        batches, ys = [], []
        for idx in batch_idx:
            batch = _collate(tok, [items[i] for i in idx])
            labels = batch.pop("labels")  # [batch, token]
            positions = [[j for j, lab in enumerate(row) if lab != -100] for row in labels.tolist()]
            batches.append((batch, positions))
            ys.append(labels[labels != -100])
        x = probe.word_features(encoder, batches, lm.lock, progress, cancel, (0.1, 0.6))
        y = torch.cat(ys)
        n_train_feats = sum(int((torch.tensor(items[i]["labels"]) != -100).sum()) for i in range(n_train))
    else:
        batches = []
        for idx in batch_idx:
            batch = _collate(tok, [items[i] for i in idx])
            batch.pop("labels")
            batches.append(batch)
        x = probe.sentence_features(encoder, batches, pooling, lm.lock, progress, cancel, (0.1, 0.6))
        y = torch.tensor([it["labels"] for it in items])
        n_train_feats = n_train
    keep_train = y[:n_train_feats] != -100
    keep_val = y[n_train_feats:] != -100
    x_train, y_train = x[:n_train_feats][keep_train], y[:n_train_feats][keep_train]
    x_val, y_val = x[n_train_feats:][keep_val], y[n_train_feats:][keep_val]
    initial = float((y_val == 0).double().mean()) if len(y_val) else 0.0  # the zero head answers label 0
    history: list[EpochReport] = []
    t0 = [time.perf_counter()]

    def on_round(r: probe.ProbeRound) -> None:
        history.append(EpochReport(r.round, r.loss, r.val_accuracy, time.perf_counter() - t0[0]))
        t0[0] = time.perf_counter()
        progress(0.6 + 0.35 * r.round / rounds,
                 f"L-BFGS round {r.round}/{rounds} ({r.iterations} iterations): loss {r.loss:.4f}")
        if partial is not None:
            partial(TrainUpdate(r.round, 1, 1, r.loss, list(history), initial, epoch_done=True, mode="frozen"))

    torch.manual_seed(seed)
    head, _rounds, converged = probe.fit_probe(x_train, y_train, len(data.labels), x_val, y_val, rounds, cancel,
                                               on_round)
    config = copy.deepcopy(lm.model.config)
    config.num_labels = len(data.labels)
    config.id2label = dict(enumerate(data.labels))
    config.label2id = dict(label2id)
    model = probe.frozen_model(encoder, head, pooling, task, config)
    result = _result(lm, data, "frozen", costs, history, initial, rounds, None, seed,
                     stopping_rule=probe.STOPPING_RULE, converged=converged, pooling=pooling,
                     pooling_source=source,
                     batch_losses=[(float(h.epoch), h.loss) for h in history])
    if not converged:
        result.notes.append(f"Not converged after {rounds} rounds: give more rounds (--epochs).")
    return result, model


def _train_weights(lm: Any, data: TaskData, mode: str, epochs: int, lr: float, batch_size: int, seed: int,
                   lora_r: int, costs: list[ModeCost], progress: Progress, cancel: threading.Event | None,
                   partial: Callable[[TrainUpdate], None] | None) -> tuple[FinetuneResult, Any]:
    """Gradient training of the whole model (full / scratch) or of LoRA + head (adapter), AdamW."""
    import torch

    task, tok = data.task, lm.tokenizer
    max_length = _max_length(lm)
    train_items = _encode(tok, task, data.train, data.label2id, max_length, progress, cancel, (0.0, 0.05),
                          "training rows")
    val_items = _encode(tok, task, data.val, data.label2id, max_length, progress, cancel, (0.05, 0.07),
                        "validation rows")
    model = build_task_model(lm, task, data.labels, mode, lora_r, seed)
    check(cancel)
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    history: list[EpochReport] = []
    batch_losses: list[tuple[float, float]] = []
    steps = math.ceil(len(train_items) / batch_size)

    def evaluate(frac: tuple[float, float] | None = None) -> float:
        model.eval()
        correct = total = 0
        idxs = _batches(len(val_items), 32, None)
        with torch.no_grad():
            for b, idx in enumerate(idxs):
                check(cancel)
                batch = _collate(tok, [val_items[i] for i in idx])
                y = batch.pop("labels")
                c, t = _accuracy(model(**batch).logits, y)
                correct, total = correct + c, total + t
                if frac is not None:
                    progress(frac[0] + (frac[1] - frac[0]) * (b + 1) / len(idxs),
                             f"Validation before training: batch {b + 1}/{len(idxs)}")
        return correct / total if total else 0.0

    initial = evaluate((0.07, 0.1))
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        losses = train_epoch(model, lambda idx: _collate(tok, [train_items[i] for i in idx]),
                             _batches(len(train_items), batch_size, gen), optimizer, epoch, epochs, batch_losses,
                             lambda e, step, loss: partial and partial(
                                 TrainUpdate(e, step, steps, loss, list(history), initial, mode=mode)),
                             progress, cancel)
        check(cancel)
        acc = evaluate()
        history.append(EpochReport(epoch, sum(losses) / len(losses), acc, time.perf_counter() - t0))
        if partial is not None:
            partial(TrainUpdate(epoch, steps, steps, losses[-1], list(history), initial, epoch_done=True, mode=mode))
    rule = f"{epochs} epoch(s) of AdamW (lr {lr:g}, batch {batch_size}); the last epoch's weights are kept"
    result = _result(lm, data, mode, costs, history, initial, epochs, lr, seed, stopping_rule=rule,
                     batch_losses=batch_losses)
    return result, model


def compare_scratch(
    lm: Any,
    data: TaskData,
    epochs: int | None = None,
    learning_rate: float | None = None,
    batch_size: int = 16,
    seed: int = 0,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
    partial: Callable[[TrainUpdate], None] | None = None,
) -> tuple[FinetuneResult, FinetuneResult]:
    """"Why pre-train": a full fine-tune from the pre-trained weights and the same architecture from random
    weights, on the same data, with the same steps, learning rate and seed. Returns (pre-trained, scratch)."""
    validate("full", epochs, learning_rate, batch_size, 8, seed)

    def part(lo: float, hi: float) -> Progress:
        return lambda f, m: progress(lo + (hi - lo) * f, m)

    pre = finetune(lm, data, "full", epochs, learning_rate, batch_size, seed, progress=part(0.0, 0.5),
                   cancel=cancel, partial=partial)
    scratch = finetune(lm, data, "scratch", pre.epochs, pre.learning_rate, batch_size, seed,
                       progress=part(0.5, 1.0), cancel=cancel, partial=partial)
    return pre, scratch


# ---------------------------------------------------------------- saving


def save(model: Any, lm: Any, result: FinetuneResult, data: TaskData, out: Path) -> int:
    """Write what the mode stores per task into ``out`` (files the app did not write are kept); fills
    ``result.out_dir``, ``files`` and ``stored_bytes`` and returns the bytes written."""
    base = base_folder(lm)
    meta = {"storage": STORAGE[result.mode], "base_model": lm.name, "base_folder": base, "data": data.path}
    if result.mode in ("frozen", "adapter"):
        meta["base_sha256"] = weights_sha256(base) if Path(base).is_dir() else None

    def write(tmp: Path) -> None:
        if result.mode == "frozen":
            from safetensors.torch import save_file

            head = model.classifier
            save_file({"weight": head.weight.detach().contiguous(), "bias": head.bias.detach().contiguous()},
                      str(tmp / "head.safetensors"))  # [label, hidden], [label]
        elif result.mode == "adapter":
            model.save_pretrained(tmp)  # adapter_config.json + adapter_model.safetensors (LoRA + head)
            inner = model.get_base_model()
            config = inner.config
            config.architectures = [type(inner).__name__]
            (tmp / "head_config.json").write_text(config.to_json_string(), encoding="utf-8")
        else:
            model.save_pretrained(tmp)
            lm.tokenizer.save_pretrained(tmp)

    result.out_dir = str(out.expanduser().resolve())
    files, size = write_folder(out, write, {**meta, **result.to_dict(), "out_dir": result.out_dir},
                               base_folders(lm))
    result.files, result.stored_bytes = files, size
    return size


# ---------------------------------------------------------------- charts


def axis_label(mode: str) -> str:
    """What the fine-tune charts count along x: L-BFGS rounds for a frozen head, epochs otherwise."""
    return "L-BFGS round" if mode == "frozen" else "epoch"


def history_chart(history: list[EpochReport], initial_val_accuracy: float | None = None,
                  batch_losses: list[tuple[float, float]] | None = None, baseline: float | None = None,
                  meta: dict | None = None, x_label: str = "epoch") -> ChartSpec:
    """Training loss (per batch and per epoch) and validation accuracy against epochs (frozen: L-BFGS rounds)."""
    series = []
    if batch_losses and x_label == "epoch":
        series.append(Series("batch loss", [x for x, _ in batch_losses], [y for _, y in batch_losses],
                             color="#aec7e8", width=1.0))
    if history:
        series.append(Series("epoch loss" if x_label == "epoch" else "loss", [float(h.epoch) for h in history],
                             [h.loss for h in history], style="line", color="#1f77b4"))
    acc_x = ([0.0] if initial_val_accuracy is not None else []) + [float(h.epoch) for h in history]
    acc_y = ([initial_val_accuracy] if initial_val_accuracy is not None else []) + [h.val_accuracy for h in history]
    if acc_x:
        series.append(Series("validation accuracy", acc_x, acc_y, style="line", color="#2ca02c"))
    if baseline is not None and acc_x:
        last = max([1.0] + acc_x + [x for x, _ in batch_losses or []])
        series.append(Series("majority baseline", [0.0, last], [baseline, baseline], color="#7f7f7f", dashed=True,
                             width=1.0))
    return ChartSpec(title="Fine-tuning: loss and validation accuracy", x_label=x_label, y_label="loss / accuracy",
                     series=series, meta=meta or {}, whole_x=True)


def result_chart(result: FinetuneResult) -> ChartSpec:
    """The history chart of a finished run (frozen: loss and accuracy per L-BFGS round)."""
    return history_chart(result.history, result.initial_val_accuracy, result.batch_losses, result.majority_baseline,
                         meta=result.to_dict(), x_label=axis_label(result.mode))


def scratch_chart(pre: FinetuneResult, scratch: FinetuneResult) -> ChartSpec:
    """The lecture's "why pre-train" figure: training loss and validation accuracy of the same architecture
    fine-tuned from pre-trained and from random weights (same data, steps and seed)."""
    return comparison_chart(
        [(pre.batch_losses, pre.history, pre.initial_val_accuracy),
         (scratch.batch_losses, scratch.history, scratch.initial_val_accuracy)],
        pre.majority_baseline, pre.epochs,
        meta={"pretrained": pre.to_dict(), "scratch": scratch.to_dict(),
              "same": {"epochs": pre.epochs, "learning_rate": pre.learning_rate, "seed": pre.seed,
                       "train_rows": pre.train_rows}},
    )


def comparison_chart(runs: list[tuple[list[tuple[float, float]], list[EpochReport], float | None]],
                     baseline: float | None, epochs: int, meta: dict | None = None) -> ChartSpec:
    """Pre-trained (first run) against from-scratch (second run, if any) curves; also drawn while they train."""
    series = []
    for (losses, history, initial), name, color in zip(runs, ("pre-trained", "scratch"),
                                                       ("#1f77b4", "#d62728"), strict=False):
        if losses:
            series.append(Series(f"{name} loss", [x for x, _ in losses], [y for _, y in losses],
                                 color=color, width=1.0))
        if initial is not None:
            series.append(Series(f"{name} accuracy", [0.0] + [float(h.epoch) for h in history],
                                 [initial] + [h.val_accuracy for h in history], style="line", color=color, width=2.5))
    if baseline is not None:
        series.append(Series("majority", [0.0, float(max(epochs, 1))], [baseline] * 2, color="#7f7f7f",
                             dashed=True, width=1.0))
    return ChartSpec(title="Why pre-train: the same model from pre-trained vs random weights", x_label="epoch",
                     y_label="loss / accuracy", series=series, meta=meta or {}, whole_x=True)


def costs_chart(costs: list[ModeCost]) -> ChartSpec:
    """Megabytes stored per task in each mode (the lecture's point about adapters)."""
    return ChartSpec(
        title="Stored per task (MB)", x_label="mode", y_label="MB",
        series=[Series("MB per task", list(range(len(costs))), [c.stored_bytes / 1e6 for c in costs], style="bar",
                       color="#9467bd", hover=[f"{c.mode}: {c.stored_bytes / 1e6:.2f} MB" for c in costs])],
        x_ticks=[(float(i), c.mode) for i, c in enumerate(costs)], legend=False,
        meta={"costs": [c.to_dict() for c in costs]},
    )
