"""The model a fine-tune trains: the base with a new task head, set up for one of the four modes (frozen,
full, adapter, scratch), and what each mode trains and stores."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

from explorer.core.io.errors import InputError, ModelError
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.tuning.finetune_results import ModeCost

MODES = ("frozen", "full", "adapter", "scratch")
_AUTO = {
    "classify": "AutoModelForSequenceClassification",
    "pair": "AutoModelForSequenceClassification",
    "tokens": "AutoModelForTokenClassification",
}
_HEAD_MODULES = ("classifier", "score", "qa_outputs")
BYTES_PER_PARAM = 4  # float32, as the app trains and saves


def base_folder(lm: Any) -> str:
    """The folder the loaded model's weights come from (the converted cache for a GGUF)."""
    extra = getattr(lm.card, "extra", {}) or {}
    base = extra.get("adapter_base") or extra.get("finetune_base")
    if base:
        raise InputError(f"'{lm.name}' is itself a fine-tune. Fine-tune its base model ({base}) instead.")
    if lm.entry.source == "hub":
        return lm.entry.location
    return str(extra.get("converted_cache") or lm.entry.location)


def model_pooling(lm: Any) -> tuple[str, str]:
    """The encoder's own sentence pooling and where it was read from (see :func:`probe.default_pooling`)."""
    from explorer.core.tuning.probe import default_pooling

    folder = base_folder(lm)
    return default_pooling(folder if Path(folder).is_dir() else None)


def check_model(lm: Any, task: str) -> None:
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
    """The task-head modules of a transformers model."""
    names = [n for n in _HEAD_MODULES if hasattr(model, n)]
    if not names:
        raise ModelError(f"Cannot find the task head of {type(model).__name__} (looked for {', '.join(_HEAD_MODULES)}).")
    return names[:1]


def _apply_mode(model: Any, mode: str, task: str, lora_r: int, base: str) -> Any:
    """Set requires_grad for the mode; for ``adapter`` wrap the model with LoRA (peft)."""
    if mode in ("full", "scratch"):
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if mode == "adapter":
        import warnings

        import peft

        cfg = _lora_config(task, lora_r)
        cfg.base_model_name_or_path = base
        with warnings.catch_warnings():  # peft calls a transformers method deprecated in 5.x
            warnings.simplefilter("ignore", FutureWarning)
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
    stored = total if mode in ("full", "scratch") else trainable
    notes = {
        "full": "store a whole copy of the model per task",
        "adapter": "store only the LoRA matrices and the head per task",
        "scratch": "a whole model per task, trained from random weights",
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
    check_model(lm, task)
    if isinstance(labels, int):
        labels = [f"LABEL_{i}" for i in range(labels)]
    config = _head_config(lm, task, labels)
    key = (config.to_json_string(), task, tuple(labels), lora_r, base_folder(lm))
    with _PLAN_LOCK:
        known = _PLAN_CACHE.get(key)
    if known is not None:
        return [replace(c) for c in known]
    auto = getattr(transformers, _AUTO[task])
    out = []
    with torch.device("meta"):
        bare = transformers.AutoModel.from_config(config)
    encoder_total = sum(p.numel() for p in bare.parameters())
    hidden = int(config.hidden_size)
    head = hidden * len(labels) + len(labels)  # the linear head on the pooled (or per-token) vector
    out.append(ModeCost("frozen", head, encoder_total + head, head, head * BYTES_PER_PARAM,
                        "store only the head per task; the encoder is shared"))
    for mode in MODES[1:]:
        with torch.device("meta"):
            model = auto.from_config(config)
            model = _apply_mode(model, mode, task, lora_r, base_folder(lm))
        out.append(_count(model, mode))
    with _PLAN_LOCK:
        _PLAN_CACHE[key] = out
        while len(_PLAN_CACHE) > 16:
            _PLAN_CACHE.popitem(last=False)
    return [replace(c) for c in out]


# plan()'s figures by (config, task, labels, LoRA rank, base folder): building its four meta-device models takes
# ~0.1 s, and the lab asks before training and again inside finetune().
_PLAN_CACHE: OrderedDict[tuple, list[ModeCost]] = OrderedDict()
_PLAN_LOCK = threading.Lock()


def build_task_model(lm: Any, task: str, labels: list[str], mode: str, lora_r: int = 8, seed: int = 0) -> Any:
    """The pre-trained weights (``scratch``: random weights, same architecture) with a fresh, seeded task
    head, prepared for ``mode``."""
    import torch
    import transformers

    check_model(lm, task)
    config = _head_config(lm, task, labels)
    auto = getattr(transformers, _AUTO[task])
    torch.manual_seed(seed)
    try:
        if mode == "scratch":
            config._attn_implementation = "eager"
            model = auto.from_config(config)
        else:
            model = auto.from_pretrained(
                base_folder(lm), config=config, attn_implementation="eager", dtype=torch.float32,
                ignore_mismatched_sizes=True, local_files_only=lm.entry.source != "hub",
                trust_remote_code=False,
            )
    except Exception as err:  # transformers raises many types here
        raise ModelError(f"Could not build a {task} model on '{lm.name}': {str(err).splitlines()[0]}") from err
    return _apply_mode(model, mode, task, lora_r, base_folder(lm))
