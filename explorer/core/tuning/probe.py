"""The frozen-encoder probe: the encoder's own sentence representation, and a linear head fitted exactly on it.

Features are what the encoder was trained to give: sentence-transformers' ``1_Pooling/config.json`` (mean, CLS
or max) where the folder has one, BERT's trained pooler where the checkpoint holds its weights, mean pooling
otherwise. The head is a multinomial logistic regression fitted by L-BFGS on the cached features with the
same objective as scikit-learn's ``LogisticRegression()`` (L2, C = 1.0, intercept not penalised), so a
converged scikit-learn fit is the yardstick.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress

POOLINGS = ("mean", "cls", "max", "pooler")
POOLING_TITLES = {
    "mean": "mean of the token vectors",
    "cls": "the [CLS] vector",
    "max": "max over the token vectors",
    "pooler": "BERT's trained pooler: tanh(dense([CLS]))",
}
C = 1.0  # scikit-learn's default inverse regularisation strength
ROUND_ITERATIONS = 10  # L-BFGS iterations between two progress / validation reports
TOLERANCE_GRAD = 1e-5
TOLERANCE_CHANGE = 1e-9
STOPPING_RULE = (
    f"L-BFGS on the cached features, L2 as scikit-learn's LogisticRegression(C={C}); stops when the largest "
    f"gradient entry is below {TOLERANCE_GRAD:g} or the loss changes less than {TOLERANCE_CHANGE:g} "
    f"(converged), or after the round limit ({ROUND_ITERATIONS} iterations per round)"
)


def _weight_keys(folder: Path) -> set[str]:
    from safetensors import safe_open

    keys: set[str] = set()
    for f in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(f), framework="pt") as fh:
                keys.update(fh.keys())
        except Exception:  # a damaged or foreign file: no pooler known
            continue
    return keys


def default_pooling(folder: str | Path | None) -> tuple[str, str]:
    """The model's own sentence pooling and where it was read from: (pooling, reason)."""
    if folder is None or not Path(folder).is_dir():
        return "mean", "no local folder to read a pooling from: mean pooling"
    folder = Path(folder)
    candidates = [folder / "1_Pooling" / "config.json"]
    modules = folder / "modules.json"
    try:
        for m in json.loads(modules.read_text(encoding="utf-8")) if modules.is_file() else []:
            if isinstance(m, dict) and str(m.get("type", "")).endswith("Pooling") and m.get("path"):
                candidates.insert(0, folder / str(m["path"]) / "config.json")
    except (OSError, ValueError):
        pass
    for cfg_file in candidates:
        try:
            cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for key, name in (("pooling_mode_mean_tokens", "mean"), ("pooling_mode_cls_token", "cls"),
                          ("pooling_mode_max_tokens", "max")):
            if cfg.get(key):
                return name, f"sentence-transformers {cfg_file.parent.name}/config.json says {name}"
    if any(k.endswith("pooler.dense.weight") for k in _weight_keys(folder)):
        return "pooler", "the checkpoint holds a trained pooler (pooler.dense)"
    return "mean", "no pooling config and no pooler weights: mean pooling"


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise InputError(f"Unknown pooling '{pooling}'. Choose one of: {', '.join(POOLINGS)}.")
    return pooling


def encoder_of(model: Any) -> Any:
    """The bare encoder inside a model with a head (BertForX.bert), or the model itself."""
    base = getattr(model, "base_model", None)
    return base if base is not None and base is not model else model


def sentence_reading(model: Any, tokenizer: Any = None) -> str:
    """What a sentence-classification head reads, in words, from the model itself: a frozen head's pooling, a
    decoder's last token, BERT's pooler on [CLS], or the first token's vector (the run view's hint)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a LoRA wrapper's model
    if isinstance(base, FrozenTaskModel):
        return POOLING_TITLES.get(base.pooling, base.pooling) + " (the frozen encoder's features)"
    if hasattr(base, "score") and not hasattr(base, "classifier"):  # transformers' decoder classifiers
        return "the last token's vector (a decoder sees only the left, so the last token has seen the whole text)"
    first = getattr(tokenizer, "cls_token", None) or getattr(tokenizer, "bos_token", None) or "first token"
    if getattr(encoder_of(base), "pooler", None) is not None:
        return f"the {first} position through BERT's pooler, tanh(dense({first}))"
    return f"the {first} position's vector"


def pool(out: Any, attention_mask: Any, pooling: str) -> Any:
    """One vector per sentence from an encoder output: [batch, hidden]."""
    import torch

    h = out.last_hidden_state  # [batch, token, hidden]
    mask = attention_mask.unsqueeze(-1).to(h.dtype)  # [batch, token, 1]
    if pooling == "mean":
        return (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    if pooling == "cls":
        return h[:, 0]
    if pooling == "max":
        return h.masked_fill(mask == 0, torch.finfo(h.dtype).min).max(1).values
    pooled = getattr(out, "pooler_output", None)
    if pooled is None:
        raise InputError("This encoder has no pooler; choose mean, cls or max pooling.")
    return pooled


class FrozenTaskModel:
    """Marker base for the frozen encoder + linear head models (see :func:`frozen_model`)."""


def frozen_model(encoder: Any, head: Any, pooling: str, task: str, config: Any) -> Any:
    """A torch module running the frozen encoder, the pooling and the linear head; returns ``.logits`` like a
    transformers model (plus the encoder's hidden states / attentions when asked)."""
    import torch
    from transformers.modeling_outputs import (
        QuestionAnsweringModelOutput,
        SequenceClassifierOutput,
        TokenClassifierOutput,
    )

    class _Frozen(torch.nn.Module, FrozenTaskModel):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.classifier = head
            self.pooling = pooling
            self.task = task
            self.config = config

        def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):  # noqa: ANN001, ANN201
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
            if self.task == "qa":  # a start and an end logit per token (extractive QA's span head)
                logits = self.classifier(out.last_hidden_state)  # [batch, token, 2]
                return QuestionAnsweringModelOutput(
                    start_logits=logits[..., 0], end_logits=logits[..., 1],
                    hidden_states=getattr(out, "hidden_states", None), attentions=getattr(out, "attentions", None))
            if self.task == "tokens":
                logits = self.classifier(out.last_hidden_state)  # [batch, token, label]
                cls = TokenClassifierOutput
            else:
                logits = self.classifier(pool(out, attention_mask, self.pooling))  # [batch, label]
                cls = SequenceClassifierOutput
            return cls(logits=logits, hidden_states=getattr(out, "hidden_states", None),
                       attentions=getattr(out, "attentions", None))

    suffix = {"tokens": "ForTokenClassification", "qa": "ForQuestionAnswering"}.get(task, "ForSequenceClassification")
    _Frozen.__name__ = _Frozen.__qualname__ = f"FrozenEncoder{suffix}"
    return _Frozen().eval()


def sentence_features(
    encoder: Any, batches: list[dict], pooling: str, lock: Any = None,
    progress: Progress = no_progress, cancel: threading.Event | None = None,
    frac: tuple[float, float] = (0.0, 1.0), message: str = "Encoding the data once (frozen encoder)…",
) -> Any:
    """Run the frozen encoder once over padded ``batches`` and pool: [row, hidden] (float32)."""
    import contextlib

    import torch

    feats = []
    for b, batch in enumerate(batches):
        check(cancel)
        with lock or contextlib.nullcontext(), torch.no_grad():
            out = encoder(**batch)
            feats.append(pool(out, batch["attention_mask"], pooling).float())
        progress(frac[0] + (frac[1] - frac[0]) * (b + 1) / len(batches), f"{message} batch {b + 1}/{len(batches)}")
    return torch.cat(feats) if feats else torch.zeros(0)


def word_features(
    encoder: Any, batches: list[tuple[dict, list[list[int]]]], lock: Any = None,
    progress: Progress = no_progress, cancel: threading.Event | None = None,
    frac: tuple[float, float] = (0.0, 1.0), message: str = "Encoding the data once (frozen encoder)…",
) -> Any:
    """The last hidden state at each word's first sub-token: [word, hidden]; ``batches`` pair a padded batch
    with, per row, the token positions to keep."""
    import contextlib

    import torch

    feats = []
    for b, (batch, positions) in enumerate(batches):
        check(cancel)
        with lock or contextlib.nullcontext(), torch.no_grad():
            h = encoder(**batch).last_hidden_state.float()  # [batch, token, hidden]
        for row, pos in enumerate(positions):
            if pos:
                feats.append(h[row, pos])
        progress(frac[0] + (frac[1] - frac[0]) * (b + 1) / len(batches), f"{message} batch {b + 1}/{len(batches)}")
    return torch.cat(feats) if feats else torch.zeros(0)


@dataclass
class ProbeRound:
    """One round of L-BFGS iterations: the regularised training loss and the validation accuracy."""

    round: int
    iterations: int
    loss: float
    val_accuracy: float


def fit_probe(
    x: Any, y: Any, n_labels: int, x_val: Any, y_val: Any, max_rounds: int = 50,
    cancel: threading.Event | None = None,
    on_round: Callable[[ProbeRound], None] | None = None,
) -> tuple[Any, list[ProbeRound], bool]:
    """Multinomial logistic regression by L-BFGS with scikit-learn's objective:
    C·Σ log-loss + ½‖W‖² (the intercept unpenalised; two classes penalised as scikit-learn's single binomial
    weight vector w = w₁ − w₀). Returns (Linear head, rounds, converged)."""
    import torch

    x64, y64 = x.double(), y.long()
    n, d = x64.shape
    w = torch.zeros(n_labels, d, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_labels, dtype=torch.float64, requires_grad=True)
    # A two-class softmax splits sklearn's w into (−w/2, +w/2): twice the penalty gives the same optimum.
    alpha = (2.0 if n_labels == 2 else 1.0) / (2.0 * C * n)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=ROUND_ITERATIONS, max_eval=ROUND_ITERATIONS * 5, history_size=20,
                            tolerance_grad=TOLERANCE_GRAD, tolerance_change=TOLERANCE_CHANGE,
                            line_search_fn="strong_wolfe")

    def objective() -> Any:
        return torch.nn.functional.cross_entropy(x64 @ w.T + b, y64) + alpha * (w * w).sum()

    def closure() -> Any:
        opt.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    def val_acc() -> float:
        if len(y_val) == 0:
            return 0.0
        with torch.no_grad():
            return float(((x_val.double() @ w.T + b).argmax(-1) == y_val).double().mean())

    rounds: list[ProbeRound] = []
    converged = False
    done_iter = 0
    for r in range(1, max_rounds + 1):
        check(cancel)
        opt.step(closure)
        state = opt.state[opt._params[0]]
        n_iter = int(state.get("n_iter", 0))
        with torch.no_grad():
            loss = float(objective())
        if not torch.isfinite(torch.tensor(loss)):
            raise InputError("The probe's loss is not finite: the features hold NaN or infinite values.")
        rounds.append(ProbeRound(r, n_iter, loss, val_acc()))
        if on_round is not None:
            on_round(rounds[-1])
        if n_iter - done_iter < ROUND_ITERATIONS:  # L-BFGS stopped early: a tolerance was met
            converged = True
            break
        done_iter = n_iter
    head = torch.nn.Linear(d, n_labels)
    with torch.no_grad():
        head.weight.copy_(w.detach().float())
        head.bias.copy_(b.detach().float())
    return head, rounds, converged
