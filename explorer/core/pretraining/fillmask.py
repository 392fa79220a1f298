"""Fill-mask as in pre-training: every masked position predicted in ONE forward pass (the transformers pipeline
takes one mask at a time: #3609, #10158), and the causal-LM contrast: a prediction from the left context only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from explorer.core.io.errors import InputError, ModelError
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.models.loading import require_finite


@dataclass
class Prediction:
    """Top-k guesses for one position."""

    position: int
    original: str
    shown: str  # what the model saw there (mask / random / the original)
    tokens: list[str]
    probs: list[float]
    original_prob: float
    original_rank: int  # 1 = the model's first guess
    context: str = "both sides"  # or "left only"
    texts: list[str] = field(default_factory=list)  # ``tokens`` as a person reads them ("Ġit" → "it")
    original_text: str = ""  # ``original`` likewise

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class FillResult:
    model: str
    mode: str  # "mlm" | "causal-left-context"
    predictions: list[Prediction] = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict:
        return {"model": self.model, "mode": self.mode, "message": self.message,
                "predictions": [p.to_dict() for p in self.predictions]}


def fill_message(lm: Any) -> str | None:
    """A plain sentence when ``lm`` cannot fill masks at all, else None."""
    heads = list(getattr(lm, "heads", []) or [])
    if "mlm" in heads or "causal-lm" in heads:
        return None
    return (
        f"{lm.name} has no masked-LM head: it was trained as a sentence encoder, so it cannot guess masked words. "
        "Use minilm-mlm (the same MiniLM with masked-LM pre-training continued by this project, so with an MLM "
        "head) to fill masks, or a causal LM (smollm2) to see what GPT predicts from the left context only."
    )


def filler_name(lm: Any) -> str | None:
    """The bundled model that fills ``lm``'s masks in its place: minilm-mlm for the published MiniLM (the same
    vocabulary; it has no MLM head), else None (``lm`` fills its own, or nothing can)."""
    from explorer.core.models import catalog

    if getattr(lm, "name", "") == catalog.MINILM and fill_message(lm) is not None:
        return catalog.MINILM_MLM
    return None


def head_note(lm: Any) -> str:
    """How good the project's masked LM is (its card), for the bundled minilm-mlm; else ''."""
    acc = (lm.card.extra.get("mlm_accuracy") or {}).get("project_text")
    if not acc:
        return ""
    ref = (lm.card.extra.get("mlm_frequency_only") or {}).get("project_text")
    against = (f"; the most frequent tokens, ignoring context, score {ref['top1']:.0%} / {ref['top5']:.0%}"
               if ref else "")
    return (f" {lm.name} is MiniLM with masked-LM pre-training continued by this project: on held-out text the "
            f"hidden token is its first guess {acc['top1']:.0%} of the time, in its top 5 {acc['top5']:.0%}{against}.")


def _readable(pred: Prediction, tokenizer: Any) -> Prediction:
    from explorer.core.pretraining.words import token_texts

    pred.texts = token_texts(tokenizer, pred.tokens)
    pred.original_text = token_texts(tokenizer, [pred.original])[0]
    return pred


def _topk(logits_row: Any, original_id: int, tokenizer: Any, k: int) -> tuple[list[str], list[float], float, int]:
    import torch

    probs = torch.softmax(logits_row.float(), dim=-1)  # [vocab]
    top = torch.topk(probs, k)
    p_orig = float(probs[original_id])
    rank = int((probs > probs[original_id]).sum()) + 1
    return tokenizer.convert_ids_to_tokens(top.indices.tolist()), [float(x) for x in top.values], p_orig, rank


def fill_masks(
    lm: Any,
    original_ids: list[int],
    input_ids: list[int],
    positions: list[int],
    top_k: int = 5,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> FillResult:
    """Predict every position in ``positions``: an MLM sees the corrupted ``input_ids`` on both sides, all
    masks at once; a causal LM (no mask token) sees the ORIGINAL tokens left of each position only."""
    msg = fill_message(lm)
    if msg:
        return FillResult(model=lm.name, mode="none", message=msg)
    import torch

    tok = lm.tokenizer
    heads = lm.heads
    check(cancel)
    progress(0.1, "Predicting the masked positions…")
    if "mlm" in heads:
        mask_id = tok.mask_token_id
        ids = [mask_id if i < 0 else i for i in input_ids]
        if mask_id is None and any(i < 0 for i in input_ids):
            raise ModelError(f"{lm.name} has an MLM head but its tokenizer has no mask token.")
        from explorer.core.models.minilm_mlm import mlm_logits

        logits = mlm_logits(lm, torch.tensor([ids]))[0]  # [seq, vocab]: every mask in this one pass
        require_finite(logits, lm.name, "predictions")
        preds = []
        for p in positions:
            toks, probs, p_orig, rank = _topk(logits[p], original_ids[p], tok, top_k)
            preds.append(_readable(Prediction(p, tok.convert_ids_to_tokens(original_ids[p]),
                                              tok.convert_ids_to_tokens(ids[p]) if ids[p] >= 0 else "<mask>",
                                              toks, probs, p_orig, rank), tok))
        progress(1.0, "Done")
        return FillResult(model=lm.name, mode="mlm", predictions=preds,
                          message=f"{len(preds)} masked positions predicted in one forward pass (both sides)."
                          + head_note(lm))
    with lm.lock, torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([original_ids])).logits[0]  # [seq, vocab]; row i predicts i+1
        require_finite(logits, lm.name, "predictions")
    preds = []
    skipped = 0
    for p in positions:
        if p == 0:
            skipped += 1
            continue
        toks, probs, p_orig, rank = _topk(logits[p - 1], original_ids[p], tok, top_k)
        preds.append(_readable(Prediction(p, tok.convert_ids_to_tokens(original_ids[p]), "(not seen yet)", toks,
                                          probs, p_orig, rank, context="left only"), tok))
    progress(1.0, "Done")
    message = (f"{lm.name} is a causal LM: each guess sees only the tokens to its left — what GPT sees, "
               "unlike BERT, which sees both sides.")
    if skipped:
        message += " The first token has no left context and is not predicted."
    return FillResult(model=lm.name, mode="causal-left-context", predictions=preds, message=message)



def fill_text(
    lm: Any,
    text: str,
    top_k: int = 5,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> dict:
    """Fill every ``[MASK]`` of ``text`` in one forward pass of a masked LM (``heads.fill_mask``), as the CLI's
    ``fill`` prints it: ``{"model", "text", "filled", "tokens", "masks": [{"position", "candidates":
    [{"token", "probability"}]}], "message"}``. ``[MASK]`` is mapped to the model's own mask token."""
    from explorer.core.tuning.heads import fill_mask

    res = fill_mask(lm, text, top_k=top_k, progress=progress, cancel=cancel)
    masks = [{"position": m.position, "candidates": [{"token": t, "probability": p} for t, p in m.candidates]}
             for m in res.masks]
    message = f"{len(masks)} mask(s) filled in one forward pass." + head_note(lm)
    if res.truncated:
        message += " The text was cut to the model's length limit."
    return {"model": lm.name, "text": res.text, "filled": res.filled, "tokens": res.tokens, "masks": masks,
            "message": message}


@dataclass
class BlankGuesses:
    """One model's guesses for the blank: both sides (a masked LM) or the left context only (a causal LM)."""

    model: str
    context: str  # "both sides" | "left only"
    candidates: list[tuple[str, float]]  # (the word as a person reads it, probability)
    seen: str = ""  # what the model was given: the text with its [MASK], or the words left of the blank
    note: str = ""

    def to_dict(self) -> dict:
        return {"model": self.model, "context": self.context, "seen": self.seen, "note": self.note,
                "candidates": [{"token": t, "probability": p} for t, p in self.candidates]}


def left_context_guesses(lm: Any, left: str, top_k: int = 5) -> BlankGuesses:
    """A causal LM's next-token distribution after ``left`` (the words before the blank): what GPT predicts
    there, seeing only the left context. Trailing spaces are dropped so the guess carries its own space."""
    import torch

    from explorer.core.models.loading import require_finite
    from explorer.core.pretraining.words import token_texts

    if "causal-lm" not in (getattr(lm, "heads", []) or []):
        raise ModelError(f"{lm.name} is not a causal LM: it cannot predict from the left context alone.")
    left = left.rstrip()
    tok = lm.tokenizer
    ids = tok(left, add_special_tokens=True)["input_ids"] if left else []
    if not ids:
        bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        if bos is None:
            return BlankGuesses(lm.name, "left only", [], left, "Nothing stands left of the blank, and the model "
                                "has no start token: a causal LM has nothing to predict from.")
        ids = [bos]
    ids = ids[-lm.max_length:] if getattr(lm, "max_length", None) else ids
    with lm.lock, torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0, -1]  # [vocab]: the token after the left context
    require_finite(logits, lm.name, "predictions")
    probs = torch.softmax(logits.float(), dim=-1)
    top = torch.topk(probs, top_k)
    texts = token_texts(tok, tok.convert_ids_to_tokens(top.indices.tolist()))
    return BlankGuesses(lm.name, "left only", [(t, float(p)) for t, p in zip(texts, top.values, strict=True)], left,
                        "sees only the words before the blank, as GPT does")


def compare_blank(mlm: Any, causal: list[Any], text: str, top_k: int = 5, progress: Progress = no_progress,
                  cancel: threading.Event | None = None) -> dict:
    """The lecture's contrast for a text with one blank: the masked LM's guesses (both sides, one pass) beside
    each causal LM's next-token guesses after the words before the blank (left only)."""
    from explorer.core.models.tokens import MASK_SPELLINGS

    found = MASK_SPELLINGS.search(text)
    if found is None:
        raise InputError("Put [MASK] where a word is missing, e.g. 'The capital of France is [MASK].'")
    filled = fill_text(mlm, text, top_k=top_k, progress=progress, cancel=cancel)
    first = filled["masks"][0]["candidates"]
    rows = [BlankGuesses(mlm.name, "both sides", [(c["token"], c["probability"]) for c in first], text,
                         "sees the words on both sides of the blank at once, as BERT does")]
    for i, lm in enumerate(causal):
        check(cancel)
        progress(0.5 + 0.5 * i / max(1, len(causal)), f"Left-context guesses of {lm.name}…")
        rows.append(left_context_guesses(lm, text[:found.start()], top_k=top_k))
    note = "Only the first blank is compared." if len(filled["masks"]) > 1 else ""
    return {"text": text, "blank_at": found.start(), "rows": [r.to_dict() for r in rows], "note": note,
            "fill": filled}
