"""Loading models by alias, folder, .gguf or hub id (eager attention, one load at a time) and describing them
(the model card without the weights); a folder's own code is refused unless the user trusts it.

torch and transformers are imported inside functions so the window can paint first.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explorer.core.io.errors import Cancelled, InputError, ModelError
from explorer.core.io.limits import MAX_CONFIG_BYTES, read_json_file
from explorer.core.io.progress import UNKNOWN, Progress, check, following, no_progress
from explorer.core.models import catalog, folders, prepared_tokenizer, warmup
from explorer.core.models.card import ModelCard, build_card, heads_from_architectures
from explorer.core.models.catalog import ModelEntry
from explorer.core.models.gguf import converted_folder, ensure_converted
from explorer.core.models.memory import check_config_file, check_memory, check_model_files

log = logging.getLogger(__name__)
_AUTO_CLASS = {
    "mlm": "AutoModelForMaskedLM",
    "causal-lm": "AutoModelForCausalLM",
    "seq2seq-lm": "AutoModelForSeq2SeqLM",
    "sequence-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "multiple-choice": "AutoModelForMultipleChoice",
    "next-sentence": "AutoModelForNextSentencePrediction",
}


def auto_class_name(heads: list[str]) -> str:
    """The transformers Auto class that loads a model with the first of ``heads`` it has a class for."""
    return next((_AUTO_CLASS[h] for h in heads if h in _AUTO_CLASS), "AutoModel")


@dataclass
class LoadedModel:
    """A model ready for analysis: the torch module (eval mode, eager attention) and its tokenizer."""

    name: str
    entry: ModelEntry
    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers PreTrainedTokenizerBase
    card: ModelCard
    load_seconds: float
    # One forward at a time per model: the job runner may run several jobs.
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def kind(self) -> str:
        return self.card.kind

    @property
    def heads(self) -> list[str]:
        return self.card.heads

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def max_length(self) -> int:
        """Longest input the model takes, in tokens."""
        return self.card.max_positions or 512


def hub_kwargs(entry: ModelEntry, trust_remote_code: bool = False) -> dict:
    """Keyword arguments for every ``from_pretrained`` call. ``trust_remote_code`` is always passed explicitly:
    left unset, transformers asks on standard input whether to run a folder's own code."""
    return {"local_files_only": entry.source != "hub", "trust_remote_code": bool(trust_remote_code)}


_CODE_FILES = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json")


def custom_code_files(folder: str | Path) -> list[str]:
    """Files of a local model folder that ask transformers to import the folder's own Python code (``auto_map``)."""
    root = Path(folder)
    found = []
    for name in _CODE_FILES:
        path = root / name
        try:
            if path.is_file() and path.stat().st_size < 5_000_000:
                data = read_json_file(path, MAX_CONFIG_BYTES, name)
                if isinstance(data, dict) and data.get("auto_map"):
                    found.append(name)
        except (OSError, InputError):
            continue
    return found


def refuse_custom_code(entry: ModelEntry, folder: str | Path, trusted: bool) -> None:
    """Raise a clear ModelError, before transformers is asked anything, when a local folder needs its own code
    and the user has not agreed to run it for this model (in the window's Models panel)."""
    if trusted or entry.source == "hub":
        return
    files = custom_code_files(folder)
    if files:
        raise ModelError(
            f"'{entry.name}' needs its own Python code ({', '.join(files)} name it in 'auto_map'), and that code "
            "would run with your permissions. It is not run: trusting remote code is off. In the window, tick "
            "'Trust remote code for this model' in the Models panel and confirm, only if you trust its author."
        )


def friendly_load_error(entry: ModelEntry, err: Exception) -> ModelError:
    msg = str(err).splitlines()[0] if str(err) else type(err).__name__
    if entry.source == "hub":
        return ModelError(
            f"Could not get '{entry.name}' from the Hugging Face hub ({msg}). It is not in the local cache and "
            "this machine may be offline: download it once on a connected machine, or open a local folder."
        )
    if "gguf" in msg.lower() and ("architecture" in msg.lower() or "not supported" in msg.lower()):
        return ModelError(
            f"The GGUF file in {entry.location} is of an architecture transformers cannot de-quantise ({msg})."
        )
    full = str(err)
    if "trust_remote_code" in full or "contains custom code" in full:
        return ModelError(
            f"'{entry.name}' needs its own Python code (shipped in its folder) to load, and that code would run "
            "with your permissions. Trusting remote code is off by default: turn on 'trust remote code' for this "
            "model only if you trust its author."
        )
    damaged = ("deserializing header", "invalid load key", "failed finding central directory", "Unsupported operand")
    if any(d in full for d in damaged):
        short = msg.split(". ")[0].removeprefix("Weights only load failed")
        if "Unsupported operand" in full or not short:
            short = "not a readable PyTorch checkpoint"
        return ModelError(
            f"Could not load '{entry.name}' from {entry.location}: its weights file is damaged or incomplete "
            f"({short}). Copy or download the model again."
        )
    if "Weights only load failed" in full:
        import re

        found = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", full)
        what = f" (it calls {found.group(1)})" if found else ""
        return ModelError(
            f"Refused to load '{entry.name}': its pickled weights file holds program code as well as tensors{what}, "
            "and loading it would run that code. Only plain tensors are loaded from pickle files. Use a "
            ".safetensors copy of this model, or one from an author you trust."
        )
    return ModelError(f"Could not load '{entry.name}' from {entry.location}: {msg}")


def require_finite(values: Any, name: str, what: str = "outputs") -> None:
    """Raise a clear ModelError when a model's outputs (tensor or array) hold NaN or infinity: printing them as
    probabilities would be nonsense (and NaN is not JSON)."""
    import numpy as np

    if hasattr(values, "detach"):
        import torch

        ok = bool(torch.isfinite(values.detach()).all())
    else:
        arr = np.asarray(values)
        if arr.dtype.kind not in "fc":  # lists, ints: floats for isfinite; float arrays are checked in place
            arr = arr.astype(np.float64)
        # In blocks of 4M values: a long input's hidden states are 0.3 GB, and a whole-array check (once a
        # float64 copy of them) would add that much again at the analysis's peak.
        flat = arr.reshape(-1)
        step = 1 << 22
        ok = all(bool(np.isfinite(flat[s:s + step]).all()) for s in range(0, flat.size, step))
    if not ok:
        raise ModelError(
            f"{name} produced NaN or infinite {what}: its weights are damaged or it cannot run this input in "
            "float32. Load the model again from a good copy, or choose another model."
        )


# transformers resolves its classes through lazy module imports that are not thread-safe ("module
# 'transformers' has no attribute 'AutoModel'" when two jobs load at once), so loads run one at a time.
_LOAD_LOCK = threading.RLock()


def load_model(
    spec: str | ModelEntry,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
    trust_remote_code: bool = False,
    allow_big: bool = False,
) -> LoadedModel:
    """Load a model by alias, folder, .gguf or hub id, with eager attention so attention weights are returned.

    Unless ``allow_big``, a model whose estimated size exceeds the free memory raises TooBigError first.
    Loads run one at a time (see ``_LOAD_LOCK``).
    """
    entry = spec if isinstance(spec, ModelEntry) else catalog.resolve(spec)
    check_model_files(entry)  # a named pipe as its weights would block the load forever
    if entry.source != "hub" and not entry.gguf_file:
        check_config_file(Path(entry.location), entry.name)  # before the libraries load: a refusal takes no time
    if not warmup.is_warm():
        progress(UNKNOWN, "Preparing the model libraries…")
    with _LOAD_LOCK:
        check(cancel)
        warmup.warm_up(lambda _f, message="": progress(UNKNOWN, message), cancel)
        # The tokenizer files and the model create many objects at once: paused, the collector cannot run a
        # full pass over them in the middle of the load (each one holds the GIL, so the window waits).
        with warmup.gc_paused():
            return _load_model(entry, progress, cancel, trust_remote_code, allow_big)


def _load_model(
    spec: str | ModelEntry,
    progress: Progress,
    cancel: threading.Event | None,
    trust_remote_code: bool,
    allow_big: bool,
) -> LoadedModel:
    entry = spec if isinstance(spec, ModelEntry) else catalog.resolve(spec)
    progress(0.0, f"Loading {entry.name}…")
    if not allow_big:
        check_memory(entry)
    import torch
    import transformers
    from transformers import AutoConfig

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # Timed from here: the libraries' one-time import is not the model's load time.
    start = time.perf_counter()
    check(cancel)
    folder: str = entry.location
    if entry.gguf_file:
        reached = [0.0]  # how far a first conversion took the bar; the load's own phases follow from there

        def converting(fraction: float, message: str = "") -> None:
            reached[0] = max(reached[0], fraction)
            progress(fraction, message)

        folder = str(ensure_converted(entry, converting, cancel))
        if reached[0] > 0:
            progress = following(progress, reached[0])
        check(cancel)
    elif entry.source != "hub" and not (Path(folder) / "config.json").is_file():
        task_loader = folders.loader_for(folder)  # a fine-tuned task folder: its loader is registered by tuning
        if task_loader is not None:
            return task_loader(entry, progress, cancel, start)
        raise ModelError(f"{folder} is not a model folder: it has no config.json.")
    refuse_custom_code(entry, folder, trust_remote_code)
    check_config_file(Path(folder), entry.name)
    kwargs = hub_kwargs(entry, trust_remote_code)
    for attempt in (0, 1):
        try:
            config = AutoConfig.from_pretrained(folder, **kwargs)
            progress(0.3, "Loading the tokenizer…")
            tokenizer = load_tokenizer(folder, bool(entry.gguf_file), kwargs)
            check(cancel)
            heads = heads_from_architectures(getattr(config, "architectures", None))
            auto_name = auto_class_name(heads)
            auto_cls = getattr(transformers, auto_name)
            progress(0.45, f"Loading weights ({auto_name.removeprefix('AutoModel') or 'base model'})…")
            model = auto_cls.from_pretrained(
                folder, attn_implementation="eager", dtype=torch.float32, use_safetensors=None, **kwargs
            )
            break
        except ModelError as err:
            if not entry.gguf_file or attempt or isinstance(err, Cancelled):
                raise
            problem = str(err)
        except Exception as err:
            if not entry.gguf_file or attempt:
                raise friendly_load_error(entry, err) from err
            problem = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        # The converted cache is the app's own copy: rebuild it from the GGUF once rather than blame the model.
        folder = str(ensure_converted(entry, progress, cancel, rebuild=f"loading it failed: {problem}"))
    model.eval()
    check(cancel)
    if getattr(model.config, "pad_token_id", None) is None and tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    progress(0.95, "Reading the model card…")
    card = build_card(entry, config, tokenizer, model)
    if entry.gguf_file:
        card.extra["converted_cache"] = folder
    _card_project_mlm(entry, card)
    elapsed = time.perf_counter() - start
    progress(1.0, f"Loaded {entry.name} in {elapsed:.1f} s")
    return LoadedModel(name=entry.name, entry=entry, model=model, tokenizer=tokenizer, card=card,
                       load_seconds=elapsed)


def load_tokenizer(folder: str, converted: bool, kwargs: dict) -> Any:
    """The tokenizer of a model folder; of the app's converted cache, from its prepared parts, which load without
    holding the GIL for long (see explorer.core.models.prepared_tokenizer)."""
    from transformers import AutoTokenizer

    tokenizer = prepared_tokenizer.load(folder, **kwargs) if converted else None
    tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(folder, **kwargs)
    check_tokenizer(tokenizer, folder)
    return tokenizer


PROBE_TEXT = "the cat sat on a mat. a dog ran to the park."


def check_tokenizer(tokenizer: Any, folder: str) -> None:
    """Refuse a tokenizer that cannot read plain text: without this, a folder whose vocabulary is missing or
    empty turns every word into the unknown token and every result into silent nonsense."""
    try:
        ids = list(tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"])
    except Exception as err:  # a tokenizer that raises on plain text is as unusable as one that returns nothing
        raise ModelError(f"The tokenizer of {folder} cannot read text ({type(err).__name__}); the folder's tokenizer "
                         "files are missing or damaged, so the model is not loaded.") from err
    unk = getattr(tokenizer, "unk_token_id", None)
    if not ids or (unk is not None and all(i == unk for i in ids)):
        raise ModelError(
            f"The tokenizer of {folder} is not usable: a plain English sentence became "
            f"{'nothing' if not ids else 'only ' + str(tokenizer.unk_token)}. Its vocabulary is missing or empty, "
            "so the model is not loaded (every result would be made of unknown tokens)."
        )


def _card_project_mlm(entry: ModelEntry, card: ModelCard) -> None:
    """The bundled minilm-mlm's card says how this project trained it and how good it is (core/models/minilm_mlm.py)."""
    if entry.name != catalog.MINILM_MLM or entry.source != "bundled":
        return
    from explorer.core.models import minilm_mlm

    meta = minilm_mlm.card_metadata(Path(entry.location))
    card.extra["mlm_pretraining"] = minilm_mlm.card_text(meta)
    card.extra["mlm_accuracy"] = minilm_mlm.accuracy_summary(meta)
    card.extra["mlm_frequency_only"] = meta.get("reference_frequency_only") or {}


def describe(
    spec: str | ModelEntry, progress: Progress = no_progress, cancel: threading.Event | None = None
) -> ModelCard:
    """Model card without loading the weights (parameters counted on the meta device)."""
    entry = spec if isinstance(spec, ModelEntry) else catalog.resolve(spec)
    check_model_files(entry)  # before the libraries load: a named pipe in the folder is refused at once
    with _LOAD_LOCK:
        warmup.warm_up(lambda _f, message="": progress(UNKNOWN, message), cancel)
        return _describe(entry, progress, cancel)


def _describe(spec: str | ModelEntry, progress: Progress, cancel: threading.Event | None) -> ModelCard:
    entry = spec if isinstance(spec, ModelEntry) else catalog.resolve(spec)
    from transformers import AutoConfig

    folder = entry.location
    if entry.gguf_file:
        cached = converted_folder(entry)
        if cached is None:
            return load_model(entry, progress=progress, cancel=cancel).card
        folder = str(cached)
    elif entry.source != "hub" and not (Path(folder) / "config.json").is_file() and folders.loader_for(folder):
        return load_model(entry, progress=progress, cancel=cancel).card
    refuse_custom_code(entry, folder, False)
    kwargs = hub_kwargs(entry)
    try:
        config = AutoConfig.from_pretrained(folder, **kwargs)
        tokenizer = load_tokenizer(folder, bool(entry.gguf_file), kwargs)
    except Exception as err:
        raise friendly_load_error(entry, err) from err
    card = build_card(entry, config, tokenizer)
    _card_project_mlm(entry, card)
    return card
