"""The masked-LM head the project trained for the bundled MiniLM (which ships without one).

It is BERT's own prediction head (transformers' ``BertOnlyMLMHead``: dense + GELU + LayerNorm, a decoder whose
weight is the encoder's input word embeddings, and a per-token bias), trained on the FROZEN encoder by
``scripts/train_mlm_head.py``. The file stores only what is not MiniLM's: dense, LayerNorm and the bias (float16);
the decoder is tied. ``minilm-mlm-head.json`` next to it records corpus, licence, steps, time, seed and accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from explorer.core.io.errors import ModelError
from explorer.core.io.paths import resources_dir

HEAD_FILE = "minilm-mlm-head.safetensors"
META_FILE = "minilm-mlm-head.json"
# Keys stored in the file, named as in transformers' BertForMaskedLM (prefix "cls.").
STORED_KEYS = (
    "predictions.transform.dense.weight",
    "predictions.transform.dense.bias",
    "predictions.transform.LayerNorm.weight",
    "predictions.transform.LayerNorm.bias",
    "predictions.bias",
)


def head_dir() -> Path:
    """Folder of the shipped head (package data)."""
    return resources_dir() / "mlm"


def head_metadata(folder: Path | None = None) -> dict:
    """Training record of the shipped head (corpus, licence, steps, seconds, seed, held-out accuracy)."""
    path = (folder or head_dir()) / META_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def build_head(encoder: Any) -> Any:
    """A fresh BERT MLM head for ``encoder`` (a BertModel), its decoder tied to the encoder's word embeddings."""
    from transformers.models.bert.modeling_bert import BertOnlyMLMHead

    head = BertOnlyMLMHead(encoder.config)
    head.predictions.decoder.weight = encoder.embeddings.word_embeddings.weight  # [vocab, hidden], tied
    head.predictions.decoder.bias = head.predictions.bias  # [vocab], as BertForMaskedLM ties it
    return head


def head_state(head: Any) -> dict:
    """The stored part of ``head`` as float16 tensors (the decoder weight is MiniLM's own)."""
    state = head.state_dict()
    return {k: state[k].detach().to("cpu").half().contiguous() for k in STORED_KEYS}


def load_head(encoder: Any, path: Path | None = None) -> Any:
    """The shipped head attached to ``encoder``; float32, eval mode."""
    import torch
    from safetensors.torch import load_file

    path = path or head_dir() / HEAD_FILE
    if not path.is_file():
        raise ModelError(f"The MiniLM masked-LM head is missing ({path}); reinstall the app.")
    head = build_head(encoder)
    stored = load_file(str(path))
    missing = set(STORED_KEYS) - set(stored)
    if missing:
        raise ModelError(f"{path.name} lacks {', '.join(sorted(missing))}: not a head for this model.")
    if stored["predictions.bias"].shape[0] != encoder.config.vocab_size:
        raise ModelError(f"{path.name} was trained for a vocabulary of {stored['predictions.bias'].shape[0]}, "
                         f"not {encoder.config.vocab_size}.")
    with torch.no_grad():
        params = dict(head.named_parameters())
        for key in STORED_KEYS:
            params[key].copy_(stored[key].float())
    head.eval()
    return head


def mlm_logits(lm: Any, input_ids: Any, attention_mask: Any | None = None) -> Any:
    """Masked-LM logits ``[batch, seq, vocab]`` from a loaded model: its own MLM head, or the attached one."""
    import torch

    with lm.lock, torch.no_grad():
        head = getattr(lm, "mlm_head", None)
        if head is not None:
            hidden = lm.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return head(hidden)  # [batch, seq, vocab]
        return lm.model(input_ids=input_ids, attention_mask=attention_mask).logits


def accuracy_summary(meta: dict) -> dict:
    """Held-out top-1 / top-5 of the shipped head, per held-out source."""
    return {name: {"top1": round(v["top1"], 4), "top5": round(v["top5"], 4), "masked_tokens": v["masked_tokens"]}
            for name, v in (meta.get("heldout") or {}).items()}


def card_text(meta: dict) -> str:
    """One paragraph for the model card: where the head came from and how good it is."""
    if not meta:
        return "Masked-LM head trained by the project on the frozen encoder (scripts/train_mlm_head.py)."
    acc = meta.get("heldout", {}).get("project_text", {})
    return (
        "Masked-LM head added by this project (MiniLM ships without one): BERT's prediction head trained on the "
        f"frozen encoder by scripts/train_mlm_head.py on {meta['corpus']} ({meta['corpus_licence']}); "
        f"{meta['steps']} steps of {meta['batch_size']} masked positions, {meta['wall_seconds'] / 60:.0f} min, "
        f"seed {meta['seed']}. Held-out masked tokens (text it never saw): top-1 {acc.get('top1', 0):.1%}, "
        f"top-5 {acc.get('top5', 0):.1%}{_against_frequency(meta)}. It has learnt little context: the frozen "
        "sentence encoder's vector at a [MASK] carries little about the hidden word, so its guesses lean to "
        "frequent words."
    )


def _against_frequency(meta: dict) -> str:
    ref = (meta.get("reference_frequency_only") or {}).get("project_text")
    return f" (naming the 5 most frequent tokens, ignoring context: {ref['top1']:.1%} / {ref['top5']:.1%})" if ref else ""
