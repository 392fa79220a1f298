"""Loading models (eager attention, GGUF de-quantised once and cached) and describing them (model card).

torch and transformers are imported inside functions so the window can paint first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from explorer.core import catalog, paths
from explorer.core.catalog import ModelEntry
from explorer.core.errors import ModelError
from explorer.core.progress import Progress, check, no_progress

log = logging.getLogger(__name__)

# Suffix of a transformers architecture name -> the head it carries.
_HEAD_SUFFIXES = [
    ("ForMaskedLM", "mlm"),
    ("ForPreTraining", "mlm"),
    ("ForCausalLM", "causal-lm"),
    ("LMHeadModel", "causal-lm"),
    ("ForConditionalGeneration", "seq2seq-lm"),
    ("ForSequenceClassification", "sequence-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForMultipleChoice", "multiple-choice"),
    ("ForNextSentencePrediction", "next-sentence"),
]
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


@dataclass
class ModelCard:
    """What a model is, for the Models panel and ``lm-explorer info``."""

    name: str
    kind: str
    architecture: str
    model_type: str
    num_layers: int
    num_heads: int
    hidden_size: int
    num_parameters: int
    vocab_size: int
    tokenizer_kind: str
    max_positions: int | None
    heads: list[str]
    dtype: str
    bytes_on_disk: int
    bytes_in_memory: int
    source: str
    location: str
    license: str = ""
    description: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LoadedModel:
    """A model ready for analysis: the torch module (eval mode, eager attention) and its tokenizer."""

    name: str
    entry: ModelEntry
    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers PreTrainedTokenizerBase
    card: ModelCard
    load_seconds: float
    # A masked-LM head attached to an encoder that ships without one (the bundled MiniLM): see core/mlm_head.py.
    mlm_head: Any = field(default=None, repr=False)
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


# ---------------------------------------------------------------- describing


def heads_from_architectures(architectures: list[str] | None) -> list[str]:
    out: list[str] = []
    for arch in architectures or []:
        for suffix, head in _HEAD_SUFFIXES:
            if arch.endswith(suffix) and head not in out:
                out.append(head)
    return out


def kind_from_config(config: Any) -> str:
    """encoder / decoder / encoder-decoder, from the config alone."""
    if getattr(config, "is_encoder_decoder", False):
        return "encoder-decoder"
    heads = heads_from_architectures(getattr(config, "architectures", None))
    if "causal-lm" in heads:
        return "decoder"
    if {"mlm", "sequence-classification", "token-classification", "question-answering"} & set(heads):
        return "encoder"
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", "")
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "encoder"
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "decoder"
    return "encoder"


def _text_config(config: Any) -> Any:
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


def _first_attr(config: Any, *names: str, default: Any = 0) -> Any:
    for n in names:
        value = getattr(config, n, None)
        if value is not None:
            return value
    return default


def tokenizer_kind(tokenizer: Any) -> str:
    """WordPiece / byte-level BPE / SentencePiece (BPE or Unigram), read from the fast tokenizer's JSON."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        name = type(tokenizer).__name__
        return "SentencePiece" if "SentencePiece" in name or hasattr(tokenizer, "sp_model") else name
    # Read the component types directly: serialising the whole tokenizer (vocabulary and merges) to JSON
    # took most of a second on large vocabularies.
    model_type = type(backend.model).__name__
    dump = " ".join(
        repr(part) for part in (backend.pre_tokenizer, backend.decoder, backend.normalizer) if part is not None
    )
    if model_type == "WordPiece":
        return "WordPiece"
    if model_type == "Unigram":
        return "SentencePiece (Unigram)"
    if model_type == "BPE":
        if "ByteLevel" in dump:
            return "byte-level BPE"
        if "Metaspace" in dump or "\u2581" in dump:
            return "SentencePiece (BPE)"
        return "BPE"
    return model_type or "unknown"


def _folder_bytes(folder: Path, gguf_file: str | None = None) -> int:
    if gguf_file:
        p = folder / gguf_file
        return p.stat().st_size if p.exists() else 0
    total = 0
    for p in folder.iterdir():
        if p.is_file() and p.suffix in (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".gguf"):
            total += p.stat().st_size
    return total


def build_card(entry: ModelEntry, config: Any, tokenizer: Any, model: Any | None = None) -> ModelCard:
    """Model card from config + tokenizer, counting parameters on the real model or a meta-device copy."""
    import torch

    text = _text_config(config)
    if model is None:
        from transformers import AutoModel

        with torch.device("meta"):
            model_for_count = AutoModel.from_config(config)
    else:
        model_for_count = model
    num_params = sum(p.numel() for p in model_for_count.parameters())
    dtype = next(model_for_count.parameters()).dtype
    mem = sum(p.numel() * p.element_size() for p in model_for_count.parameters())
    if model is not None:
        mem += sum(b.numel() * b.element_size() for b in model.buffers())
    heads = heads_from_architectures(getattr(config, "architectures", None))
    if model is not None:
        heads = heads_from_architectures([type(model).__name__]) or heads
    max_pos = _first_attr(text, "max_position_embeddings", "n_positions", "max_seq_len", default=None)
    return ModelCard(
        name=entry.name,
        kind=kind_from_config(config),
        architecture=(config.architectures or [type(model_for_count).__name__])[0]
        if getattr(config, "architectures", None)
        else type(model_for_count).__name__,
        model_type=getattr(config, "model_type", ""),
        num_layers=int(_first_attr(text, "num_hidden_layers", "n_layer", "num_layers")),
        num_heads=int(_first_attr(text, "num_attention_heads", "n_head", "num_heads")),
        hidden_size=int(_first_attr(text, "hidden_size", "n_embd", "d_model")),
        num_parameters=int(num_params),
        vocab_size=int(_first_attr(text, "vocab_size")),
        tokenizer_kind=tokenizer_kind(tokenizer),
        max_positions=int(max_pos) if max_pos else None,
        heads=heads,
        dtype=str(dtype).replace("torch.", ""),
        bytes_on_disk=_folder_bytes(Path(entry.location), entry.gguf_file),
        bytes_in_memory=int(mem),
        source=entry.source,
        location=entry.location,
        license=entry.license,
        description=entry.description,
        extra={
            "kv_heads": getattr(text, "num_key_value_heads", None),
            "intermediate_size": getattr(text, "intermediate_size", None),
            "tied_embeddings": getattr(config, "tie_word_embeddings", None),
        },
    )


# ---------------------------------------------------------------- loading


def _hub_kwargs(entry: ModelEntry, trust_remote_code: bool = False) -> dict:
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
                data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
                if isinstance(data, dict) and data.get("auto_map"):
                    found.append(name)
        except (OSError, ValueError):
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


def _friendly_load_error(entry: ModelEntry, err: Exception) -> ModelError:
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


def _gguf_load_error(entry: ModelEntry, err: Exception) -> ModelError:
    """Say which architecture the GGUF holds and whether transformers can read it at all."""
    import transformers

    msg = str(err).splitlines()[0] if str(err) else type(err).__name__
    file = entry.gguf_file or ""
    try:
        arch = gguf_summary(Path(entry.location) / file)[0] or "unknown"
    except (OSError, ValueError, struct.error, ModelError):
        arch = "unknown"
    if "architecture" in msg and "not supported" in msg:
        return ModelError(
            f"{file} holds a '{arch}' model, an architecture that transformers {transformers.__version__} "
            "cannot read from GGUF files (it reads Llama, Mistral, Qwen, Gemma, Phi-3, GPT-2 and a few more). "
            "Open a Hugging Face folder of this model instead, or choose another model."
        )
    return ModelError(f"Could not read the GGUF file {file} (a '{arch}' model): {msg}")


def _gguf_cache_folder(entry: ModelEntry) -> Path:
    import transformers

    gguf = Path(entry.location) / (entry.gguf_file or "")
    st = gguf.stat()
    key = hashlib.sha1(f"{gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}|{transformers.__version__}".encode())
    return paths.cache_dir() / "converted" / f"{gguf.stem}-{key.hexdigest()[:12]}"


def converted_folder(entry: ModelEntry) -> Path | None:
    """The cached float32 conversion of a GGUF entry, if it was made before."""
    if not entry.gguf_file:
        return None
    folder = _gguf_cache_folder(entry)
    return folder if (folder / "config.json").is_file() else None


def _convert_gguf(entry: ModelEntry, progress: Progress, cancel: threading.Event | None) -> Path:
    """De-quantise a GGUF once and save it as safetensors in the cache; later loads read that."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = _gguf_cache_folder(entry)
    progress(0.05, "De-quantising the GGUF file (first time only, about half a minute)…")
    try:
        tokenizer = AutoTokenizer.from_pretrained(entry.location, gguf_file=entry.gguf_file, trust_remote_code=False)
        check(cancel)
        loaded = AutoModelForCausalLM.from_pretrained(entry.location, gguf_file=entry.gguf_file, trust_remote_code=False)
    except Exception as err:  # transformers raises ValueError/RuntimeError/OSError here
        if isinstance(err, ModelError):
            raise
        raise _gguf_load_error(entry, err) from err
    check(cancel)
    progress(0.7, "Saving the converted model to the cache…")
    # A model loaded from GGUF refuses save_pretrained; a fresh one from the same config does not.
    fresh = AutoModelForCausalLM.from_config(loaded.config)
    fresh.load_state_dict(loaded.state_dict())
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    fresh.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "explorer-source.json").write_text(json.dumps({"gguf": str(Path(entry.location) / entry.gguf_file)}))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    del loaded, fresh
    return target


# ---------------------------------------------------------------- memory


class TooBigError(ModelError):
    """The model would need more memory than the computer has free; the user may load it anyway."""

    def __init__(self, name: str, estimate: int, available: int) -> None:
        self.name, self.estimate, self.available = name, estimate, available
        super().__init__(
            f"'{name}' needs about {_gb(estimate)} of memory to load, but only {_gb(available)} is free. "
            "Loading it anyway may slow the computer down badly or make the app close. Close other programs or "
            "choose a smaller model."
        )


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


_GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # value type -> bytes


def gguf_summary(path: str | os.PathLike) -> tuple[str, int]:
    """(architecture, parameter count) read from a GGUF header without de-quantising anything.

    A direct header walk: the gguf package's reader parses every tokenizer array and takes seconds.
    """
    import mmap

    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if mm[:4] != b"GGUF":
            raise ModelError(f"{Path(path).name} is not a GGUF file (it does not start with 'GGUF').")
        version, n_tensors, n_kv = struct.unpack_from("<IQQ", mm, 4)
        if version < 2:
            raise ModelError(f"{Path(path).name} is a GGUF version {version} file, too old to read.")
        pos = 24

        def string() -> str:
            nonlocal pos
            (length,) = struct.unpack_from("<Q", mm, pos)
            pos += 8 + length
            return mm[pos - length : pos].decode("utf-8", errors="replace")

        def skip(vtype: int) -> None:
            nonlocal pos
            if vtype in _GGUF_FIXED:
                pos += _GGUF_FIXED[vtype]
            elif vtype == 8:
                string()
            elif vtype == 9:
                etype, count = struct.unpack_from("<IQ", mm, pos)
                pos += 12
                if etype in _GGUF_FIXED:
                    pos += _GGUF_FIXED[etype] * count
                else:
                    for _ in range(count):
                        skip(etype)
            else:
                raise ValueError(f"unknown GGUF value type {vtype}")

        arch = ""
        for _ in range(n_kv):
            key = string()
            (vtype,) = struct.unpack_from("<I", mm, pos)
            pos += 4
            if key == "general.architecture" and vtype == 8:
                arch = string()
            else:
                skip(vtype)
        params = 0
        for _ in range(n_tensors):
            string()
            (n_dims,) = struct.unpack_from("<I", mm, pos)
            dims = struct.unpack_from(f"<{n_dims}Q", mm, pos + 4)
            pos += 4 + 8 * n_dims + 4 + 8
            count = 1
            for d in dims:
                count *= d
            params += count
    return arch, params


def _safetensors_params(files: list[Path]) -> int:
    """Parameter count from safetensors headers (8-byte length + JSON), without reading the weights."""
    total = 0
    for f in files:
        with f.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > min(f.stat().st_size - 8, 100_000_000):
                raise ValueError(f"{f.name} is not a safetensors file")  # a corrupt file: no estimate
            header = json.loads(fh.read(length))
        if not isinstance(header, dict):
            raise ValueError(f"{f.name} is not a safetensors file")
        for name, info in header.items():
            if name != "__metadata__" and isinstance(info, dict):
                count = 1
                for d in info.get("shape", []):
                    count *= d
                total += count
    return total


def estimate_load_bytes(entry_or_spec: str | ModelEntry) -> int:
    """Memory a load will take, in bytes (float32 weights); 0 when nothing can be known before loading.

    From the parameter count: GGUF header (de-quantising a GGUF holds two float32 copies at once),
    safetensors headers, else the config on the meta device, else the weight files' sizes. Never runs
    a model's own code.
    """
    entry = entry_or_spec if isinstance(entry_or_spec, ModelEntry) else catalog.resolve(entry_or_spec)
    if entry.source == "hub":
        return 0
    folder = Path(entry.location)
    try:
        if entry.gguf_file:
            cached = converted_folder(entry)
            if cached is not None:
                return 4 * _safetensors_params(sorted(cached.glob("*.safetensors")))
            return 2 * 4 * gguf_summary(folder / entry.gguf_file)[1]
        if not (folder / "config.json").is_file():
            return 0
        files = sorted(folder.glob("*.safetensors"))
        if files:
            return 4 * _safetensors_params(files)
        try:
            import torch
            from transformers import AutoConfig, AutoModel

            config = AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
            with torch.device("meta"):
                meta = AutoModel.from_config(config)
            return 4 * sum(p.numel() for p in meta.parameters())
        except Exception:  # custom code or an odd config: fall back to what is on disk
            half = any(t in (folder / "config.json").read_text() for t in ('"float16"', '"bfloat16"'))
            return _folder_bytes(folder) * (2 if half else 1)  # half-precision files double in float32
    except (OSError, ValueError, TypeError, AttributeError, struct.error) as err:  # damaged files: no estimate
        log.debug("no memory estimate for %s: %s", entry.name, err)
        return 0


def check_memory(entry: ModelEntry, available: int | None = None) -> int:
    """Raise TooBigError when the estimate exceeds the free memory; returns the estimate."""
    estimate = estimate_load_bytes(entry)
    if available is None:
        import psutil

        available = int(psutil.virtual_memory().available)
    if estimate > available:
        raise TooBigError(entry.name, estimate, available)
    return estimate


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
    with _LOAD_LOCK:
        check(cancel)
        return _load_model(spec, progress, cancel, trust_remote_code, allow_big)


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
    from transformers import AutoConfig, AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # Timed from here: the libraries' one-time import is not the model's load time.
    start = time.perf_counter()
    check(cancel)
    folder: str = entry.location
    if entry.gguf_file:
        cached = converted_folder(entry)
        folder = str(cached if cached is not None else _convert_gguf(entry, progress, cancel))
        check(cancel)
    elif entry.source != "hub" and not (Path(folder) / "config.json").is_file():
        if (Path(folder) / "adapter_config.json").is_file():
            return _load_adapter_folder(entry, progress, cancel, start)
        raise ModelError(f"{folder} is not a model folder: it has no config.json.")
    refuse_custom_code(entry, folder, trust_remote_code)
    kwargs = _hub_kwargs(entry, trust_remote_code)
    try:
        config = AutoConfig.from_pretrained(folder, **kwargs)
        progress(0.3, "Loading the tokenizer…")
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        check(cancel)
        heads = heads_from_architectures(getattr(config, "architectures", None))
        auto_name = next((_AUTO_CLASS[h] for h in heads if h in _AUTO_CLASS), "AutoModel")
        auto_cls = getattr(transformers, auto_name)
        progress(0.45, f"Loading weights ({auto_name.removeprefix('AutoModel') or 'base model'})…")
        model = auto_cls.from_pretrained(
            folder, attn_implementation="eager", dtype=torch.float32, use_safetensors=None, **kwargs
        )
    except ModelError:
        raise
    except Exception as err:
        raise _friendly_load_error(entry, err) from err
    model.eval()
    check(cancel)
    if getattr(model.config, "pad_token_id", None) is None and tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    progress(0.95, "Reading the model card…")
    card = build_card(entry, config, tokenizer, model)
    if entry.gguf_file:
        card.extra["converted_cache"] = folder
    mlm = _attach_mlm_head(entry, model, card)
    elapsed = time.perf_counter() - start
    progress(1.0, f"Loaded {entry.name} in {elapsed:.1f} s")
    return LoadedModel(name=entry.name, entry=entry, model=model, tokenizer=tokenizer, card=card,
                       load_seconds=elapsed, mlm_head=mlm)


def _attach_mlm_head(entry: ModelEntry, model: Any, card: ModelCard) -> Any:
    """The project's trained MLM head for the bundled MiniLM (None for every other model); the card says so."""
    if entry.name != catalog.MINILM or entry.source != "bundled" or "mlm" in card.heads:
        return None
    from explorer.core import mlm_head

    head = mlm_head.load_head(model)
    meta = mlm_head.head_metadata()
    card.heads = [*card.heads, "mlm"]
    card.extra["mlm_head"] = mlm_head.card_text(meta)
    card.extra["mlm_head_accuracy"] = mlm_head.accuracy_summary(meta)
    return head


def _load_adapter_folder(
    entry: ModelEntry, progress: Progress, cancel: threading.Event | None, start: float
) -> LoadedModel:
    """A peft adapter folder (adapter_config.json, no config.json): load the base model it names with the
    head described in head_config.json (label names), apply the adapter and merge it into the weights."""
    import torch
    import transformers
    from peft import PeftModel
    from transformers import AutoConfig, AutoTokenizer

    folder = Path(entry.location)
    refuse_custom_code(entry, folder, False)
    try:
        adapter_cfg = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(f"{folder}/adapter_config.json cannot be read: {err}") from err
    base = adapter_cfg.get("base_model_name_or_path")
    if not base:
        raise ModelError(f"The adapter in {folder} does not name its base model (base_model_name_or_path).")
    known = {str(Path(e.location).resolve()): e for e in catalog.bundled_entries() + catalog.user_entries()}
    base_entry = known.get(str(Path(base).expanduser().resolve())) if not _looks_like_id(base) else None
    base_entry = base_entry or catalog.resolve(base)
    base_folder = str(converted_folder(base_entry) or base_entry.location)
    refuse_custom_code(base_entry, base_folder, False)
    kwargs = _hub_kwargs(base_entry)
    try:
        progress(0.2, f"Loading the base model {base_entry.name} of the adapter…")
        config = AutoConfig.from_pretrained(base_folder, **kwargs)
        head_file = folder / "head_config.json"
        if head_file.is_file():
            config = type(config).from_dict(json.loads(head_file.read_text(encoding="utf-8")))
        heads = heads_from_architectures(getattr(config, "architectures", None))
        auto_cls = getattr(transformers, next((_AUTO_CLASS[h] for h in heads if h in _AUTO_CLASS), "AutoModel"))
        tok_folder = folder if (folder / "tokenizer_config.json").is_file() else Path(base_folder)
        tokenizer = AutoTokenizer.from_pretrained(str(tok_folder), **kwargs)
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
        raise _friendly_load_error(entry, err) from err
    model.eval()
    card = build_card(entry, config, tokenizer, model)
    card.extra["adapter_base"] = base_entry.name
    card.extra["adapter_type"] = adapter_cfg.get("peft_type", "")
    elapsed = time.perf_counter() - start
    progress(1.0, f"Loaded {entry.name} (adapter on {base_entry.name}) in {elapsed:.1f} s")
    return LoadedModel(name=entry.name, entry=entry, model=model, tokenizer=tokenizer, card=card, load_seconds=elapsed)


def _looks_like_id(spec: str) -> bool:
    return "/" in spec and not spec.startswith((".", "/", "~")) and not Path(spec).exists()


def describe(
    spec: str | ModelEntry, progress: Progress = no_progress, cancel: threading.Event | None = None
) -> ModelCard:
    """Model card without loading the weights (parameters counted on the meta device)."""
    with _LOAD_LOCK:
        return _describe(spec, progress, cancel)


def _describe(spec: str | ModelEntry, progress: Progress, cancel: threading.Event | None) -> ModelCard:
    entry = spec if isinstance(spec, ModelEntry) else catalog.resolve(spec)
    from transformers import AutoConfig, AutoTokenizer

    folder = entry.location
    if entry.gguf_file:
        cached = converted_folder(entry)
        if cached is None:
            return load_model(entry, progress=progress, cancel=cancel).card
        folder = str(cached)
    elif entry.source != "hub" and (Path(folder) / "adapter_config.json").is_file() and not (
        Path(folder) / "config.json"
    ).is_file():
        return load_model(entry, progress=progress, cancel=cancel).card
    refuse_custom_code(entry, folder, False)
    kwargs = _hub_kwargs(entry)
    try:
        config = AutoConfig.from_pretrained(folder, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    except Exception as err:
        raise _friendly_load_error(entry, err) from err
    return build_card(entry, config, tokenizer)
