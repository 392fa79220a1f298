"""The model card: what a loaded or described model is (kind, heads, sizes, tokenizer), read from its
config, tokenizer and weights."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from explorer.core.models.catalog import ModelEntry

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


def folder_bytes(folder: Path, gguf_file: str | None = None) -> int:
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
            model_for_count = AutoModel.from_config(config, dtype=torch.float32)  # as load_model loads it
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
        bytes_on_disk=folder_bytes(Path(entry.location), entry.gguf_file) or _chunk_bytes(entry),
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


def _chunk_bytes(entry: ModelEntry) -> int:
    """A GGUF shipped in chunk packages, as installed: its joined copy is deleted once converted."""
    from explorer.core.models.gguf import chunk_bytes

    return chunk_bytes(entry)
