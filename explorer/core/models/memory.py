"""How much memory a load will take, estimated from headers before any weight is read, and the refusal
when it will not fit."""

from __future__ import annotations

import json
import logging
import os
import stat
import struct
from pathlib import Path

from explorer.core.io.errors import InputError, ModelError
from explorer.core.io.limits import (
    MAX_CONFIG_BYTES,
    check_model_dimensions,
    check_regular_file,
    read_json_file,
)
from explorer.core.models import catalog
from explorer.core.models.card import folder_bytes
from explorer.core.models.catalog import ModelEntry
from explorer.core.models.gguf import converted_folder, first_chunk, gguf_summary

log = logging.getLogger(__name__)


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
            gguf = folder / entry.gguf_file
            whole = True
            if not gguf.is_file() and entry.assemble_from:
                chunk = first_chunk(entry)  # the header (and so the tensor list) sits in the first chunk
                gguf, whole = (chunk, False) if chunk is not None else (gguf, True)
            return 2 * 4 * gguf_summary(gguf, whole)[1]
        if not (folder / "config.json").is_file():
            return 0
        check_config_file(folder, entry.name)  # 10^9 layers would be built on the meta device below
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
            return folder_bytes(folder) * (2 if half else 1)  # half-precision files double in float32
    except (OSError, ValueError, TypeError, AttributeError, struct.error) as err:  # damaged files: no estimate
        log.debug("no memory estimate for %s: %s", entry.name, err)
        return 0


def check_config_file(folder: Path, name: str) -> None:
    """A local folder's config.json through the limits (size, depth, no NaN) and a plausibility check of its layers,
    vocabulary and hidden size, before transformers builds anything from it."""
    path = folder / "config.json"
    if not path.exists():
        return
    data = read_json_file(path, MAX_CONFIG_BYTES, f"{name}'s config.json", ModelError)
    if not isinstance(data, dict):
        raise ModelError(f"{name}'s config.json is not a JSON object.")
    check_model_dimensions(data, name)


def check_model_files(entry: ModelEntry) -> None:
    """Every file directly in a local model's folder must be a regular file: a named pipe given as its weights,
    config or tokenizer blocks the first read forever, and a device never ends. Refused before anything reads it."""
    if entry.source == "hub":
        return
    try:
        items = list(os.scandir(entry.location))
    except OSError:  # a missing or unreadable folder: what reads it says so
        return
    for item in items:
        try:
            mode = os.stat(item.path).st_mode  # through a link, as a reader would open it
        except OSError:  # a dangling link: nothing to block on
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            try:
                check_regular_file(item.path, f"{entry.name}'s {item.name}")
            except InputError as err:
                raise ModelError(str(err).replace("it is not read", "the model is not loaded")) from None


def check_memory(entry: ModelEntry, available: int | None = None) -> int:
    """Raise TooBigError when the estimate exceeds the free memory; returns the estimate."""
    estimate = estimate_load_bytes(entry)
    if available is None:
        import psutil

        available = int(psutil.virtual_memory().available)
    if estimate > available:
        raise TooBigError(entry.name, estimate, available)
    return estimate
