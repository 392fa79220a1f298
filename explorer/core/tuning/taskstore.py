"""Fine-tune folders: what each mode stores per task, written without ever deleting a user's files, and loaded
back onto the base model they were trained on.

- frozen: ``head.safetensors`` (the linear head) + ``finetune.json`` naming the base model and the sha256 of
  its weights; the encoder is shared.
- adapter: the peft adapter (LoRA matrices + the head) + ``head_config.json`` + ``finetune.json``.
- full / scratch: the whole model and its tokenizer (it opens on its own).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from explorer.core.io.errors import InputError, ModelError
from explorer.core.io.fileio import remembered_sha256
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.models import folders

META_FILE = "finetune.json"
HEAD_FILE = "head.safetensors"
# What earlier versions of the app wrote into a fine-tune folder (manifests without a "files" list).
LEGACY_FILES = (
    "config.json", "model.safetensors", "pytorch_model.bin", "generation_config.json", "adapter_config.json",
    "adapter_model.safetensors", "head_config.json", HEAD_FILE, "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "vocab.txt", "merges.txt", "vocab.json", "added_tokens.json",
    "chat_template.jinja", META_FILE,
)


def weights_sha256(folder: str | os.PathLike) -> str:
    """sha256 over the weight files of a model folder (sorted by name); cached per file size and mtime."""
    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if not files:
        raise ModelError(f"{folder} holds no weight files (*.safetensors or *.bin).")
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + remembered_sha256(f).encode())
    return digest.hexdigest()


def read_meta(folder: str | os.PathLike) -> dict | None:
    """The fine-tune manifest of a folder, if it has one."""
    try:
        meta = json.loads((Path(folder) / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def app_files(folder: Path, meta: dict) -> list[str]:
    """The files the app wrote into an earlier fine-tune folder (never anything else)."""
    listed = meta.get("files")
    names = [str(n) for n in listed] if isinstance(listed, list) else list(LEGACY_FILES)
    return [n for n in names if "/" not in n and "\\" not in n and (folder / n).is_file()]


def _writable_ancestor(path: Path) -> Path:
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    return p


def check_out_dir(out: str | os.PathLike) -> Path:
    """Refuse a folder the fine-tune must not write to, before any work: a file, a non-empty folder that is
    not an earlier fine-tune, or a place that cannot be written. Returns the resolved path."""
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; give a folder to save the fine-tuned model in.")
    if out.is_dir() and any(out.iterdir()) and read_meta(out) is None:
        raise InputError(f"{out} is not empty and is not an earlier fine-tune. Choose a new or empty folder.")
    where = _writable_ancestor(out)
    if not where.is_dir():
        raise InputError(f"Cannot save to {out}: {where} is not a folder.")
    try:
        probe = tempfile.mkdtemp(prefix=".lmx-write-check-", dir=where)
    except OSError as err:
        raise InputError(f"Cannot save to {out}: {where} is not writable ({err.strerror or err}).") from err
    os.rmdir(probe)
    return out


def is_earlier_finetune(out: str | os.PathLike) -> bool:
    """True when the folder exists, is not empty and holds an earlier fine-tune (the window asks first)."""
    p = Path(out).expanduser()
    return p.is_dir() and any(p.iterdir()) and read_meta(p) is not None


def write_folder(out: Path, write: Any, meta: dict) -> tuple[list[str], int]:
    """Write a fine-tune into ``out``: ``write(tmp)`` fills a temporary folder inside ``out``; its files then
    replace the app's own files one by one. Files the app did not write are never touched. The manifest
    ``meta`` (with the file list and bytes) is written last. Returns (files, bytes written)."""
    out = check_out_dir(out)
    previous = app_files(out, read_meta(out) or {}) if out.is_dir() else []
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".lmx-saving-", dir=out))
    try:
        write(tmp)
        (tmp / "README.md").unlink(missing_ok=True)  # peft's model-card stub: a user's README.md stays theirs
        names = sorted(p.name for p in tmp.iterdir() if p.is_file())
        mode = 0o644
        for name in names:
            os.chmod(tmp / name, mode)  # normal permissions, not the temporary folder's private ones
            os.replace(tmp / name, out / name)
    except OSError as err:
        raise InputError(f"Could not save to {out}: {err.strerror or err}") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # our own temporary folder only
    for name in previous:
        if name not in names and name != META_FILE:
            (out / name).unlink(missing_ok=True)
    files = names + [META_FILE]
    size = sum((out / n).stat().st_size for n in names)
    meta = {**meta, "files": files}
    body = ""
    for _ in range(3):  # the manifest counts its own bytes: settle the number
        meta["stored_bytes"] = size + len(body.encode("utf-8"))
        body = json.dumps(meta, indent=1, ensure_ascii=False)
    from explorer.core.io.fileio import atomic_write_text

    atomic_write_text(out / META_FILE, body)
    return files, size + (out / META_FILE).stat().st_size


# ---------------------------------------------------------------- loading


def _weights_folder(entry: Any) -> str:
    from explorer.core.models.gguf import converted_folder

    return str(converted_folder(entry) or entry.location) if entry.gguf_file else entry.location


def resolve_base(folder: str | os.PathLike, meta: dict) -> Any:
    """The catalog entry of the base model a fine-tune names, checked against the sha256 of its weights."""
    from explorer.core.models import catalog

    name, path, want = meta.get("base_model"), meta.get("base_folder"), meta.get("base_sha256")
    tried: list[str] = []
    found_other = None
    for spec in [s for s in (name, path) if s]:
        try:
            entry = catalog.resolve(str(spec))
        except ModelError:
            tried.append(str(spec))
            continue
        if entry.source == "hub" and not Path(str(spec)).exists() and spec == path:
            tried.append(str(spec))
            continue
        weights = _weights_folder(entry)
        if not want or entry.source == "hub":
            return entry
        try:
            got = weights_sha256(weights)
        except (OSError, ModelError):
            tried.append(str(spec))
            continue
        if got == want:
            return entry
        found_other = (spec, got)
    if found_other is not None:
        raise ModelError(
            f"The base model '{found_other[0]}' of the fine-tune in {folder} has different weights from the ones it "
            f"was trained on (sha256 {found_other[1][:12]}…, expected {str(want)[:12]}…). Load the same base model.")
    raise ModelError(
        f"The fine-tune in {folder} needs its base model '{name or path}', which is not available "
        f"(looked for: {', '.join(tried) or 'nothing named'}). Install or add that model, then load this folder again.")


def load_frozen_folder(entry: Any, progress: Progress = no_progress, cancel: threading.Event | None = None,
                       start: float | None = None) -> Any:
    """A frozen fine-tune (head.safetensors + finetune.json): load the base encoder and attach the head."""
    import copy
    import time

    import torch
    from safetensors.torch import load_file

    from explorer.core.models.card import build_card
    from explorer.core.models.loading import LoadedModel, load_model
    from explorer.core.tuning.probe import check_pooling, encoder_of, frozen_model

    start = time.perf_counter() if start is None else start
    folder = Path(entry.location)
    meta = read_meta(folder)
    if meta is None or meta.get("storage") != "head":
        raise ModelError(f"{folder} has {HEAD_FILE} but no readable {META_FILE} describing it.")
    base_entry = resolve_base(folder, meta)
    progress(0.1, f"Loading the base model {base_entry.name}…")
    base = load_model(base_entry, cancel=cancel)
    check(cancel)
    try:
        state = load_file(str(folder / HEAD_FILE))
        weight, bias = state["weight"], state["bias"]  # [label, hidden], [label]
        labels = [str(x) for x in meta["labels"]]
        task = str(meta["task"])
        pooling = check_pooling(str(meta.get("pooling", "mean")))
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise ModelError(f"The head in {folder} cannot be read: {err}") from err
    if weight.shape != (len(labels), base.card.hidden_size) or bias.shape != (len(labels),):
        raise ModelError(f"The head in {folder} does not fit {base_entry.name} (shape {tuple(weight.shape)}).")
    head = torch.nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        head.weight.copy_(weight.float())
        head.bias.copy_(bias.float())
    config = copy.deepcopy(base.model.config)
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {lab: i for i, lab in enumerate(labels)}
    config.problem_type = "single_label_classification" if task != "tokens" else None
    model = frozen_model(encoder_of(base.model), head, pooling, task, config)
    config.architectures = [type(model).__name__]
    card = build_card(entry, config, base.tokenizer, model)
    card.extra.update(finetune_base=base_entry.name, pooling=pooling, storage="head")
    elapsed = time.perf_counter() - start
    progress(1.0, f"Loaded {entry.name} (a {task} head on {base_entry.name}) in {elapsed:.1f} s")
    return LoadedModel(name=entry.name, entry=entry, model=model, tokenizer=base.tokenizer, card=card,
                       load_seconds=elapsed)


def load_adapter_folder(entry: Any, progress: Progress, cancel: threading.Event | None, start: float) -> Any:
    """A peft adapter folder (adapter_config.json, no config.json): load the base model it names with the
    head described in head_config.json (label names), apply the adapter and merge it into the weights."""
    import time

    import torch
    import transformers
    from peft import PeftModel
    from transformers import AutoConfig

    from explorer.core.models import catalog
    from explorer.core.models.card import build_card, heads_from_architectures
    from explorer.core.models.gguf import converted_folder
    from explorer.core.models.loading import (
        LoadedModel,
        auto_class_name,
        friendly_load_error,
        hub_kwargs,
        load_tokenizer,
        refuse_custom_code,
    )

    folder = Path(entry.location)
    refuse_custom_code(entry, folder, False)
    try:
        adapter_cfg = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(f"{folder}/adapter_config.json cannot be read: {err}") from err
    base = adapter_cfg.get("base_model_name_or_path")
    if not base:
        raise ModelError(f"The adapter in {folder} does not name its base model (base_model_name_or_path).")
    meta = read_meta(folder)
    if meta is not None and (meta.get("base_model") or meta.get("base_folder")):
        base_entry = resolve_base(folder, meta)  # the named base model, its weights' hash checked
    else:
        known = {str(Path(e.location).resolve()): e for e in catalog.bundled_entries() + catalog.user_entries()}
        base_entry = known.get(str(Path(base).expanduser().resolve())) if not _looks_like_id(base) else None
        base_entry = base_entry or catalog.resolve(base)
    base_converted = converted_folder(base_entry)
    base_folder = str(base_converted or base_entry.location)
    refuse_custom_code(base_entry, base_folder, False)
    kwargs = hub_kwargs(base_entry)
    try:
        progress(0.2, f"Loading the base model {base_entry.name} of the adapter…")
        config = AutoConfig.from_pretrained(base_folder, **kwargs)
        head_file = folder / "head_config.json"
        if head_file.is_file():
            config = type(config).from_dict(json.loads(head_file.read_text(encoding="utf-8")))
        heads = heads_from_architectures(getattr(config, "architectures", None))
        auto_cls = getattr(transformers, auto_class_name(heads))
        own = (folder / "tokenizer_config.json").is_file()
        tokenizer = load_tokenizer(str(folder if own else base_folder), not own and base_converted is not None, kwargs)
        check(cancel)
        model = auto_cls.from_pretrained(
            base_folder, config=config, attn_implementation="eager", dtype=torch.float32,
            ignore_mismatched_sizes=True, **kwargs,
        )
        progress(0.7, "Applying the adapter…")
        model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    except ModelError:
        raise
    except Exception as err:
        raise friendly_load_error(entry, err) from err
    model.eval()
    card = build_card(entry, config, tokenizer, model)
    card.extra["adapter_base"] = base_entry.name
    card.extra["adapter_type"] = adapter_cfg.get("peft_type", "")
    elapsed = time.perf_counter() - start
    progress(1.0, f"Loaded {entry.name} (adapter on {base_entry.name}) in {elapsed:.1f} s")
    return LoadedModel(name=entry.name, entry=entry, model=model, tokenizer=tokenizer, card=card, load_seconds=elapsed)


def _looks_like_id(spec: str) -> bool:
    return "/" in spec and not spec.startswith((".", "/", "~")) and not Path(spec).exists()


# The model loader opens these folders through models' registry: it does not import tuning.
folders.register("adapter_config.json", load_adapter_folder)
folders.register(HEAD_FILE, load_frozen_folder)
