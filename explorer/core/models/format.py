"""Human-readable numbers and model-card rows, shared by the Models panel and the CLI."""

from __future__ import annotations

from explorer.core.models.card import ModelCard


def human_count(n: int | float) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f} {unit}"
    return str(int(n))


def human_bytes(n: int | float) -> str:
    for unit, div in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if abs(n) >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)} B"


def card_lines(card: ModelCard) -> list[tuple[str, str]]:
    """(label, value) rows of a model card, in reading order."""
    rows = [
        ("Name", card.name),
        ("Kind", card.kind),
        ("Architecture", f"{card.architecture} ({card.model_type})"),
        ("Layers", str(card.num_layers)),
        ("Attention heads", str(card.num_heads) + (f" ({card.extra['kv_heads']} key/value)" if card.extra.get("kv_heads") and card.extra["kv_heads"] != card.num_heads else "")),
        ("Hidden size", str(card.hidden_size)),
        ("Parameters", f"{human_count(card.num_parameters)} ({card.num_parameters:,})"),
        ("Without embeddings", f"{human_count(card.num_parameters_non_embedding)} "
         f"({card.num_parameters_non_embedding:,}; Kaplan et al. 2020 count, embedding tables left out)"),
        ("Vocabulary", f"{card.vocab_size:,}"),
        ("Tokenizer", card.tokenizer_kind),
        ("Max positions", str(card.max_positions) if card.max_positions else "unknown"),
        ("Task heads", ", ".join(card.heads) if card.heads else "none (base model: hidden states only)"),
        ("Weights dtype", card.dtype),
        ("On disk", human_bytes(card.bytes_on_disk)),
        ("In memory", human_bytes(card.bytes_in_memory)),
        ("Source", f"{card.source}: {card.location}"),
        ("License", card.license or "see the model's folder"),
    ]
    if card.extra.get("mlm_pretraining"):
        rows.append(("Masked-LM pre-training", card.extra["mlm_pretraining"]))
    return rows
