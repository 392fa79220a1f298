"""The project's masked LM, ``minilm-mlm``: all-MiniLM-L6-v2 with masked-LM pre-training continued.

MiniLM as published ships no MLM head, and a head trained on its frozen sentence-tuned features cannot name a
hidden word; so ``scripts/pretrain_mlm.py`` continued BERT's own pre-training task on the whole encoder. The result
ships as its own model folder (float16 safetensors, config, tokenizer) with ``card.json``: corpus, licences, steps,
tokens, time, seed and held-out accuracy beside the frequency-only reference and the old frozen-encoder head.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from explorer.core.io.paths import resources_dir

MODEL_NAME = "minilm-mlm"
CARD_FILE = "card.json"


def model_dir() -> Path:
    """Folder of the shipped model (package data)."""
    return resources_dir() / "models" / MODEL_NAME


def card_metadata(folder: Path | None = None) -> dict:
    """The training record shipped beside the weights; {} when it is missing or unreadable."""
    try:
        meta = json.loads(((folder or model_dir()) / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def mlm_logits(lm: Any, input_ids: Any, attention_mask: Any | None = None) -> Any:
    """Masked-LM logits ``[batch, seq, vocab]`` of a loaded masked LM."""
    import torch

    with lm.lock, torch.no_grad():
        return lm.model(input_ids=input_ids, attention_mask=attention_mask).logits


def accuracy_summary(meta: dict) -> dict:
    """Held-out top-1 / top-5 per held-out source (text the training never saw)."""
    return {name: {"top1": round(v["top1"], 4), "top5": round(v["top5"], 4), "masked_tokens": v["masked_tokens"]}
            for name, v in (meta.get("heldout") or {}).items() if isinstance(v, dict) and "top1" in v}


def card_text(meta: dict) -> str:
    """One paragraph for the model card: what was done and how good it is, beside the trivial reference."""
    if not meta:
        return ("all-MiniLM-L6-v2 with masked-LM pre-training continued by this project (scripts/pretrain_mlm.py); "
                "its training record (card.json) is missing.")
    acc = (meta.get("heldout") or {}).get("project_text") or {}
    ref = (meta.get("reference_frequency_only") or {}).get("project_text") or {}
    cloze = (meta.get("heldout") or {}).get("everyday_cloze") or {}
    stages = [*(meta.get("earlier_stages") or []), meta]
    sources = {name: v for stage in stages for name, v in (stage.get("corpus") or {}).items()}
    corpus = "; ".join(f"{v['source']} ({v['licence']})" for v in sources.values())
    total = meta.get("all_stages") or meta
    against = (f" (naming the most frequent tokens whatever the context: {ref['top1']:.0%} / {ref['top5']:.0%})"
               if ref else "")
    everyday = (f"; {cloze['top5']} of {cloze['sentences']} everyday cloze sentences have the answer in the top 5"
                if cloze else "")
    return (
        f"all-MiniLM-L6-v2 with BERT's masked-LM pre-training continued on every weight by this project "
        f"(scripts/pretrain_mlm.py): {total.get('steps', 0):,} steps"
        + (f" in {len(stages)} stages" if len(stages) > 1 else "")
        + f", {total.get('tokens_seen', 0):,} tokens seen, "
        f"{total.get('train_minutes', 0):.0f} min, seed {meta.get('seed', 0)}, on {corpus}. Held-out masked tokens "
        f"(text it never saw): top-1 {acc.get('top1', 0):.1%}, top-5 {acc.get('top5', 0):.1%}{against}{everyday}. "
        "The published minilm stays the sentence encoder the embedding views were measured on."
    )
