"""The lecture's three ways to fine-tune a pre-trained encoder for a task, on CPU in minutes:

- ``frozen``: the encoder stays fixed; only the task head learns (its input features are computed once
  and cached, so every epoch after the first costs almost nothing); per task you store just the head.
- ``full``: every parameter learns; per task you store a whole copy of the model.
- ``adapter``: small LoRA matrices (peft) inside the attention layers plus the head learn; per task you
  store only those. (peft has no Houlsby-style bottleneck adapter; LoRA is its adapter method.)

The figures in :func:`plan` are computed before any training, from the real model built on the meta device.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from explorer.core.charts import ChartSpec, Series
from explorer.core.datasets import Example, TaskData
from explorer.core.errors import InputError, ModelError
from explorer.core.progress import Progress, check, no_progress

MODES = ("frozen", "full", "adapter")
MODE_TITLES = {
    "frozen": "Frozen encoder + trained head",
    "full": "Full fine-tune (every weight)",
    "adapter": "Adapters (LoRA) + head",
}
_AUTO = {
    "classify": "AutoModelForSequenceClassification",
    "pair": "AutoModelForSequenceClassification",
    "tokens": "AutoModelForTokenClassification",
}
_HEAD_MODULES = ("classifier", "score", "qa_outputs")
DEFAULT_EPOCHS = {"frozen": 20, "full": 3, "adapter": 3}
DEFAULT_LR = {"frozen": 5e-3, "full": 1e-4, "adapter": 1e-3}
MAX_TOKENS = 128
META_FILE = "finetune.json"
BYTES_PER_PARAM = 4  # float32, as the app trains and saves


@dataclass
class ModeCost:
    """What one mode trains and what must be stored per task, before training."""

    mode: str
    trainable_parameters: int
    total_parameters: int
    stored_parameters: int
    stored_bytes: int
    note: str = ""

    @property
    def trainable_fraction(self) -> float:
        return self.trainable_parameters / self.total_parameters if self.total_parameters else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "trainable_fraction": self.trainable_fraction}


@dataclass
class EpochReport:
    """One finished epoch: mean training loss and validation accuracy."""

    epoch: int
    loss: float
    val_accuracy: float
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainUpdate:
    """What the ``partial`` callback receives after every batch (live loss chart)."""

    epoch: int  # 1-based
    step: int  # 1-based within the epoch
    steps: int
    batch_loss: float
    history: list[EpochReport]
    initial_val_accuracy: float
    epoch_done: bool = False

    @property
    def x(self) -> float:
        """Position on an epoch axis: epoch 1 runs from 0 to 1."""
        return self.epoch - 1 + self.step / max(1, self.steps)


@dataclass
class FinetuneResult:
    """A finished fine-tune: figures, per-epoch history and where the model was saved."""

    model: str
    task: str
    mode: str
    labels: list[str]
    trainable_parameters: int
    total_parameters: int
    stored_bytes: int
    history: list[EpochReport]
    val_accuracy: float
    initial_val_accuracy: float
    majority_baseline: float
    train_rows: int
    val_rows: int
    epochs: int
    learning_rate: float
    seed: int
    seconds: float
    out_dir: str | None = None
    saved_bytes: int = 0
    costs: list[ModeCost] = field(default_factory=list)
    batch_losses: list[tuple[float, float]] = field(default_factory=list)  # (epoch position, loss)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "task": self.task,
            "mode": self.mode,
            "labels": self.labels,
            "trainable_parameters": self.trainable_parameters,
            "total_parameters": self.total_parameters,
            "stored_bytes": self.stored_bytes,
            "history": [{"epoch": h.epoch, "loss": h.loss, "val_accuracy": h.val_accuracy} for h in self.history],
            "val_accuracy": self.val_accuracy,
            "initial_val_accuracy": self.initial_val_accuracy,
            "majority_baseline": self.majority_baseline,
            "train_rows": self.train_rows,
            "val_rows": self.val_rows,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
            "seconds": round(self.seconds, 2),
            "out_dir": self.out_dir,
            "saved_bytes": self.saved_bytes,
            "costs": {c.mode: c.to_dict() for c in self.costs},
        }


# ---------------------------------------------------------------- building the task model


def base_folder(lm: Any) -> str:
    """The folder the loaded model's weights come from (the converted cache for a GGUF)."""
    extra = getattr(lm.card, "extra", {}) or {}
    if extra.get("adapter_base"):
        raise InputError(
            f"'{lm.name}' is itself an adapter fine-tune. Fine-tune its base model ({extra['adapter_base']}) instead."
        )
    if lm.entry.source == "hub":
        return lm.entry.location
    return str(extra.get("converted_cache") or lm.entry.location)


def _check_model(lm: Any, task: str) -> None:
    if task not in _AUTO:
        raise InputError(f"Fine-tuning supports the tasks {', '.join(_AUTO)} (got '{task}').")
    if lm.kind != "encoder":
        raise ModelError(
            f"'{lm.name}' is a {lm.kind}. The fine-tune lab trains task heads on an encoder (BERT-style) model "
            "such as the bundled MiniLM."
        )


def _head_config(lm: Any, task: str, labels: list[str]) -> Any:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(
        base_folder(lm), local_files_only=lm.entry.source != "hub", trust_remote_code=False
    )
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    config.problem_type = "single_label_classification" if task != "tokens" else None
    return config


def _lora_config(task: str, r: int) -> Any:
    import peft

    task_type = peft.TaskType.TOKEN_CLS if task == "tokens" else peft.TaskType.SEQ_CLS
    return peft.LoraConfig(task_type=task_type, r=r, lora_alpha=2 * r, lora_dropout=0.1)


def head_names(model: Any) -> list[str]:
    """The task-head modules of a transformers model (what ``frozen`` trains)."""
    names = [n for n in _HEAD_MODULES if hasattr(model, n)]
    if not names:
        raise ModelError(f"Cannot find the task head of {type(model).__name__} (looked for {', '.join(_HEAD_MODULES)}).")
    return names[:1]


def _apply_mode(model: Any, mode: str, task: str, lora_r: int, base: str) -> Any:
    """Set requires_grad for the mode; for ``adapter`` wrap the model with LoRA (peft)."""
    if mode == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if mode == "frozen":
        for p in model.parameters():
            p.requires_grad_(False)
        for name in head_names(model):
            for p in getattr(model, name).parameters():
                p.requires_grad_(True)
        return model
    if mode == "adapter":
        import peft

        cfg = _lora_config(task, lora_r)
        cfg.base_model_name_or_path = base
        try:
            return peft.get_peft_model(model, cfg)
        except ValueError:
            cfg = _lora_config(task, lora_r)
            cfg.target_modules = "all-linear"
            cfg.base_model_name_or_path = base
            return peft.get_peft_model(model, cfg)
    raise InputError(f"Unknown mode '{mode}'. Choose one of: {', '.join(MODES)}.")


def _count(model: Any, mode: str) -> ModeCost:
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    if mode == "adapter":
        # peft keeps the original head next to its trainable copy (modules_to_save): count the model once.
        head = sum(p.numel() for n, p in model.named_parameters() if "original_module" in n)
        total -= sum(p.numel() for n, p in model.named_parameters() if "lora_" in n) + head
    stored = total if mode == "full" else trainable
    notes = {
        "frozen": "store only the head per task; the encoder is shared",
        "full": "store a whole copy of the model per task",
        "adapter": "store only the LoRA matrices and the head per task",
    }
    return ModeCost(mode, trainable, total, stored, stored * BYTES_PER_PARAM, notes[mode])


def plan(
    lm: Any,
    task: str,
    labels: list[str] | int,
    lora_r: int = 8,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> list[ModeCost]:
    """Trainable parameters and bytes stored per task for each mode, counted on meta-device models (no training)."""
    import torch
    import transformers

    check(cancel)

    _check_model(lm, task)
    if isinstance(labels, int):
        labels = [f"LABEL_{i}" for i in range(labels)]
    config = _head_config(lm, task, labels)
    auto = getattr(transformers, _AUTO[task])
    out = []
    for mode in MODES:
        with torch.device("meta"):
            model = auto.from_config(config)
            model = _apply_mode(model, mode, task, lora_r, base_folder(lm))
        out.append(_count(model, mode))
    return out


def build_task_model(lm: Any, task: str, labels: list[str], mode: str, lora_r: int = 8, seed: int = 0) -> Any:
    """The pre-trained weights with a fresh, seeded task head, prepared for ``mode``."""
    import torch
    import transformers

    _check_model(lm, task)
    config = _head_config(lm, task, labels)
    auto = getattr(transformers, _AUTO[task])
    torch.manual_seed(seed)
    try:
        model = auto.from_pretrained(
            base_folder(lm), config=config, attn_implementation="eager", dtype=torch.float32,
            ignore_mismatched_sizes=True, local_files_only=lm.entry.source != "hub",
            trust_remote_code=False,
        )
    except Exception as err:  # transformers raises many types here
        raise ModelError(f"Could not build a {task} model on '{lm.name}': {str(err).splitlines()[0]}") from err
    return _apply_mode(model, mode, task, lora_r, base_folder(lm))


# ---------------------------------------------------------------- encoding the data


def _encode(tokenizer: Any, task: str, examples: list[Example], label2id: dict[str, int],
            max_length: int = MAX_TOKENS) -> list[dict]:
    """One dict of token ids (+ labels) per example; tag labels sit on each word's first sub-token."""
    out = []
    for ex in examples:
        if task == "tokens":
            try:
                enc = tokenizer(ex.tokens, is_split_into_words=True, truncation=True, max_length=max_length)
            except Exception as err:
                raise InputError(f"The tokenizer cannot take pre-split words ({err}).") from err
            labels, prev = [], None
            for w in enc.word_ids():
                labels.append(-100 if w is None or w == prev else label2id[ex.tags[w]])
                prev = w
            enc = dict(enc)
            enc["labels"] = labels
        else:
            enc = dict(tokenizer(ex.text, ex.text_pair, truncation=True, max_length=max_length))
            enc["labels"] = label2id[ex.label]
        out.append(enc)
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


def _batches(n: int, batch_size: int, generator: Any | None) -> list[list[int]]:
    import torch

    order = torch.randperm(n, generator=generator).tolist() if generator is not None else list(range(n))
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def _accuracy(logits: Any, labels: Any) -> tuple[int, int]:
    pred = logits.argmax(-1)
    mask = labels != -100
    return int((pred[mask] == labels[mask]).sum()), int(mask.sum())


# ---------------------------------------------------------------- training


def _cache_features(model: Any, tokenizer: Any, items: list[dict], batch_size: int,
                    progress: Progress, cancel: threading.Event | None, frac: tuple[float, float]) -> list[Any]:
    """Run the frozen encoder once and keep what the head receives, one tensor per example."""
    import torch

    head = getattr(model, head_names(model)[0])
    captured: list[Any] = []
    hook = head.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach()))
    feats: list[Any] = []
    model.eval()
    try:
        batches = _batches(len(items), batch_size, None)
        for b, idx in enumerate(batches):
            check(cancel)
            batch = _collate(tokenizer, [items[i] for i in idx])
            batch.pop("labels")
            captured.clear()
            with torch.no_grad():
                model(**batch)
            x = captured[-1]  # [batch, hidden] or [batch, token, hidden]
            lengths = batch["attention_mask"].sum(-1).tolist()
            for row, length in enumerate(lengths):
                feats.append(x[row] if x.dim() == 2 else x[row, : int(length)])
            progress(frac[0] + (frac[1] - frac[0]) * (b + 1) / len(batches), "Encoding the data once (frozen encoder)…")
    finally:
        hook.remove()
    return feats


def _pad_feats(feats: list[Any], labels: list[Any]) -> tuple[Any, Any]:
    import torch

    if feats[0].dim() == 1:
        return torch.stack(feats), torch.tensor(labels)  # [batch, hidden], [batch]
    width = max(f.shape[0] for f in feats)
    x = torch.zeros(len(feats), width, feats[0].shape[-1])  # [batch, token, hidden]
    for i, f in enumerate(feats):
        x[i, : f.shape[0]] = f
    if isinstance(labels[0], list):
        y = torch.tensor([lab[:width] + [-100] * (width - len(lab[:width])) for lab in labels])  # [batch, token]
    else:
        y = torch.tensor(labels)
    return x, y


def finetune(
    lm: Any,
    data: TaskData,
    mode: str = "frozen",
    epochs: int | None = None,
    learning_rate: float | None = None,
    batch_size: int = 16,
    seed: int = 0,
    lora_r: int = 8,
    out_dir: str | os.PathLike | None = None,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
    partial: Callable[[TrainUpdate], None] | None = None,
) -> FinetuneResult:
    """Fine-tune ``lm`` on ``data`` in ``mode``; report every batch through ``partial``; save to ``out_dir``."""
    import torch

    if mode not in MODES:
        raise InputError(f"Unknown mode '{mode}'. Choose one of: {', '.join(MODES)}.")
    epochs = DEFAULT_EPOCHS[mode] if epochs is None else int(epochs)
    lr = DEFAULT_LR[mode] if learning_rate is None else float(learning_rate)
    if epochs < 1:
        raise InputError("Train for at least one epoch.")
    if batch_size < 1:
        raise InputError("The batch size must be at least 1.")
    if out_dir is not None:
        _check_out_dir(Path(out_dir))
    start = time.perf_counter()
    task = data.task
    progress(0.0, f"Building the {task} model ({mode})…")
    costs = plan(lm, task, data.labels, lora_r)
    model = build_task_model(lm, task, data.labels, mode, lora_r, seed)
    check(cancel)
    tok = lm.tokenizer
    label2id = data.label2id
    max_length = int(min(MAX_TOKENS, lm.max_length, getattr(tok, "model_max_length", MAX_TOKENS) or MAX_TOKENS))
    train_items = _encode(tok, task, data.train, label2id, max_length)
    val_items = _encode(tok, task, data.val, label2id, max_length)
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0 if mode == "frozen" else 0.01)
    history: list[EpochReport] = []
    batch_losses: list[tuple[float, float]] = []
    steps = math.ceil(len(train_items) / batch_size)
    train_frac = (0.1, 0.95)

    if mode == "frozen":
        # The encoder never changes: compute the head's input once, then train the head on the cache.
        feats = _cache_features(model, tok, train_items + val_items, 32, progress, cancel, (0.02, 0.3))
        train_x, val_x = feats[: len(train_items)], feats[len(train_items):]
        train_y = [it["labels"] for it in train_items]
        val_y = [it["labels"] for it in val_items]
        head = getattr(model, head_names(model)[0])
        train_frac = (0.3, 0.95)

        def evaluate() -> float:
            head.eval()
            correct = total = 0
            with torch.no_grad():
                for idx in _batches(len(val_x), 64, None):
                    x, y = _pad_feats([val_x[i] for i in idx], [val_y[i] for i in idx])
                    c, t = _accuracy(head(x), y)
                    correct, total = correct + c, total + t
            return correct / total if total else 0.0

        def train_step(idx: list[int]) -> float:
            head.train()
            x, y = _pad_feats([train_x[i] for i in idx], [train_y[i] for i in idx])
            logits = head(x)
            return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                                     ignore_index=-100)
    else:

        def evaluate() -> float:
            model.eval()
            correct = total = 0
            with torch.no_grad():
                for idx in _batches(len(val_items), 32, None):
                    check(cancel)
                    batch = _collate(tok, [val_items[i] for i in idx])
                    y = batch.pop("labels")
                    c, t = _accuracy(model(**batch).logits, y)
                    correct, total = correct + c, total + t
            return correct / total if total else 0.0

        def train_step(idx: list[int]) -> float:
            model.train()
            batch = _collate(tok, [train_items[i] for i in idx])
            return model(**batch).loss

    initial = evaluate()
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        losses = []
        for step, idx in enumerate(_batches(len(train_items), batch_size, gen), 1):
            check(cancel)
            loss = train_step(idx)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            batch_losses.append((epoch - 1 + step / steps, losses[-1]))
            done = ((epoch - 1) * steps + step) / (epochs * steps)
            progress(train_frac[0] + (train_frac[1] - train_frac[0]) * done,
                     f"Epoch {epoch}/{epochs}, batch {step}/{steps}: loss {losses[-1]:.3f}")
            if partial is not None:
                partial(TrainUpdate(epoch, step, steps, losses[-1], list(history), initial))
        check(cancel)
        acc = evaluate()
        history.append(EpochReport(epoch, sum(losses) / len(losses), acc, time.perf_counter() - t0))
        if partial is not None:
            partial(TrainUpdate(epoch, steps, steps, losses[-1], list(history), initial, epoch_done=True))
    cost = next(c for c in costs if c.mode == mode)
    result = FinetuneResult(
        model=lm.name, task=task, mode=mode, labels=list(data.labels),
        trainable_parameters=cost.trainable_parameters, total_parameters=cost.total_parameters,
        stored_bytes=cost.stored_bytes, history=history, val_accuracy=history[-1].val_accuracy,
        initial_val_accuracy=initial, majority_baseline=data.majority_baseline(),
        train_rows=len(data.train), val_rows=len(data.val), epochs=epochs, learning_rate=lr, seed=seed,
        seconds=0.0, costs=costs, batch_losses=batch_losses,
    )
    if out_dir is not None:
        check(cancel)
        progress(0.96, "Saving…")
        result.out_dir = str(Path(out_dir).resolve())
        result.saved_bytes = save(model, lm, result, data, Path(out_dir))
    result.seconds = time.perf_counter() - start
    if out_dir is not None:
        _write_meta(Path(out_dir), lm, result, data)
    progress(1.0, f"Validation accuracy {result.val_accuracy:.0%} after {epochs} epoch(s)")
    return result


# ---------------------------------------------------------------- saving


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; give a folder to save the fine-tuned model in.")
    if out.is_dir() and any(out.iterdir()) and not (out / META_FILE).is_file():
        raise InputError(f"{out} is not empty and is not an earlier fine-tune. Choose a new or empty folder.")


def _weights_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))


def save(model: Any, lm: Any, result: FinetuneResult, data: TaskData, out: Path) -> int:
    """Save as an HF folder (adapter-only for ``adapter``) next to a temp copy first; returns weight bytes."""
    _check_out_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if result.mode == "adapter":
            model.save_pretrained(tmp)  # adapter_config.json + adapter_model.safetensors (LoRA + head)
            inner = model.get_base_model()
            config = inner.config
            config.architectures = [type(inner).__name__]
            (tmp / "head_config.json").write_text(config.to_json_string(), encoding="utf-8")
        else:
            model.save_pretrained(tmp)
        lm.tokenizer.save_pretrained(tmp)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"Could not save to {out}: {err.strerror or err}") from err
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return _weights_bytes(out)


def _write_meta(out: Path, lm: Any, result: FinetuneResult, data: TaskData) -> None:
    from explorer.core.fileio import atomic_write_text

    meta = {"base_model": lm.name, "base_folder": base_folder(lm), "data": data.path, **result.to_dict()}
    atomic_write_text(out / META_FILE, json.dumps(meta, indent=1, ensure_ascii=False))


def read_meta(folder: str | os.PathLike) -> dict | None:
    """The fine-tune record saved beside a model folder, if it has one."""
    try:
        return json.loads((Path(folder) / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- charts


def history_chart(history: list[EpochReport], initial_val_accuracy: float | None = None,
                  batch_losses: list[tuple[float, float]] | None = None, baseline: float | None = None,
                  meta: dict | None = None) -> ChartSpec:
    """Training loss (per batch and per epoch) and validation accuracy against epochs."""
    series = []
    if batch_losses:
        series.append(Series("batch loss", [x for x, _ in batch_losses], [y for _, y in batch_losses],
                             color="#aec7e8", width=1.0))
    if history:
        series.append(Series("epoch loss", [float(h.epoch) for h in history], [h.loss for h in history],
                             style="line", color="#1f77b4"))
    acc_x = ([0.0] if initial_val_accuracy is not None else []) + [float(h.epoch) for h in history]
    acc_y = ([initial_val_accuracy] if initial_val_accuracy is not None else []) + [h.val_accuracy for h in history]
    if acc_x:
        series.append(Series("validation accuracy", acc_x, acc_y, style="line", color="#2ca02c"))
    if baseline is not None and acc_x:
        last = max([1.0] + acc_x + [x for x, _ in batch_losses or []])
        series.append(Series("majority baseline", [0.0, last], [baseline, baseline], color="#7f7f7f", dashed=True,
                             width=1.0))
    return ChartSpec(title="Fine-tuning: loss and validation accuracy", x_label="epoch", y_label="loss / accuracy",
                     series=series, meta=meta or {})


def costs_chart(costs: list[ModeCost]) -> ChartSpec:
    """Megabytes stored per task in each mode (the lecture's point about adapters)."""
    return ChartSpec(
        title="Stored per task (MB)", x_label="mode", y_label="MB",
        series=[Series("MB per task", list(range(len(costs))), [c.stored_bytes / 1e6 for c in costs], style="bar",
                       color="#9467bd", hover=[f"{c.mode}: {c.stored_bytes / 1e6:.2f} MB" for c in costs])],
        x_ticks=[(float(i), c.mode) for i, c in enumerate(costs)], legend=False,
        meta={"costs": [c.to_dict() for c in costs]},
    )
