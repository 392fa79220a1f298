"""Scoring a fixed set of answers (label words, options): the log-probability of each after the prompt.

This is how GPT-3 was evaluated on multiple choice: no generation, the model's likelihood of each option as a
continuation, summed over its tokens and per token (length-normalised); the best one is the prediction.
The prompt and each option are tokenised separately and joined (as lm-evaluation-harness does), so an option's
tokens are exactly the tokens it is scored on.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

from explorer.core.io.errors import InputError, ModelError
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.models.loading import require_finite

NORMALIZATIONS = ("mean", "sum")


@dataclass
class OptionScore:
    """One option's log-probability: summed, per token, and the tokens it was made of."""

    option: str
    logprob: float  # sum over its tokens
    tokens: list[str]
    token_logprobs: list[float]

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def mean_logprob(self) -> float:
        return self.logprob / max(1, self.n_tokens)

    def to_dict(self) -> dict:
        return {
            "option": self.option,
            "logprob": self.logprob,
            "mean_logprob": self.mean_logprob,
            "tokens": self.tokens,
            "token_logprobs": self.token_logprobs,
        }


@dataclass
class ScoreResult:
    """All options scored; ``best`` is the index chosen by ``normalize`` ("mean" per token or "sum")."""

    options: list[OptionScore]
    normalize: str
    best: int

    @property
    def prediction(self) -> str:
        return self.options[self.best].option

    def probabilities(self) -> list[float]:
        """Softmax over the options' scores (the model's choice among only these options)."""
        values = [o.mean_logprob if self.normalize == "mean" else o.logprob for o in self.options]
        top = max(values)
        exps = [math.exp(v - top) for v in values]
        total = sum(exps)
        return [e / total for e in exps]

    def to_dict(self) -> dict:
        probs = self.probabilities()
        return {
            "prediction": self.prediction,
            "normalize": self.normalize,
            "options": [dict(o.to_dict(), choice_prob=p) for o, p in zip(self.options, probs, strict=True)],
        }


def pick_best(options: list[OptionScore], normalize: str = "mean") -> int:
    """Index of the option with the highest (per-token or summed) log-probability; ties go to the first."""
    if normalize not in NORMALIZATIONS:
        raise InputError(f"Unknown normalisation '{normalize}': use one of {', '.join(NORMALIZATIONS)}.")
    key = (lambda o: o.mean_logprob) if normalize == "mean" else (lambda o: o.logprob)
    values = [key(o) for o in options]
    bad = [o.option for o, v in zip(options, values, strict=True) if not math.isfinite(v)]
    if bad:  # NaN compares false with everything, so max() would pick an arbitrary option
        raise ModelError(f"The score of {', '.join(repr(t) for t in bad[:3])} is not a finite number (NaN or "
                         "infinite): no option can be picked from it. The model or the server is broken.")
    return values.index(max(values))


def score_options(
    lm: Any,
    prompt: str,
    options: list[str],
    normalize: str = "mean",
    add_special_tokens: bool = True,
    batch_size: int = 8,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> ScoreResult:
    """Log-probability of each option as the continuation of ``prompt`` under the local causal LM ``lm``."""
    import torch

    if not options:
        raise InputError("There are no options to score.")
    if any(not o for o in options):
        raise InputError("An option is empty; every option needs at least one character.")
    tok = lm.tokenizer
    ctx = tok(prompt, add_special_tokens=add_special_tokens)["input_ids"] if prompt else []
    conts = [tok(o, add_special_tokens=False)["input_ids"] for o in options]
    if not ctx:
        # Nothing to condition on: start from BOS (or EOS, as GPT-2 does) so the first token has a probability.
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        ctx = [start]
    longest = len(ctx) + max(len(c) for c in conts)
    if longest > lm.max_length:
        raise InputError(f"Prompt plus option is {longest} tokens, more than the model's context of {lm.max_length}.")
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    scores: list[OptionScore] = []
    with lm.lock, torch.inference_mode():
        for b in range(0, len(conts), batch_size):
            check(cancel)
            chunk = conts[b : b + batch_size]
            width = len(ctx) + max(len(c) for c in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)  # [option, position], right-padded
            mask = torch.zeros((len(chunk), width), dtype=torch.long)  # [option, position]
            for r, c in enumerate(chunk):
                seq = ctx + c
                ids[r, : len(seq)] = torch.tensor(seq)
                mask[r, : len(seq)] = 1
            logits = lm.model(input_ids=ids, attention_mask=mask).logits.float()  # [option, position, vocab]
            require_finite(logits, lm.name, "log-probabilities")
            logprobs = torch.log_softmax(logits, dim=-1)  # [option, position, vocab]
            for r, c in enumerate(chunk):
                # Token t of the option sits at position len(ctx)+t and is predicted at position len(ctx)+t-1.
                pos = torch.arange(len(ctx) - 1, len(ctx) - 1 + len(c))
                lps = logprobs[r, pos, torch.tensor(c)].tolist()
                scores.append(OptionScore(options[b + r], float(sum(lps)), [tok.decode([t]) for t in c], lps))
            progress(min(1.0, (b + len(chunk)) / len(conts)), "scoring options")
    return ScoreResult(scores, normalize, pick_best(scores, normalize))


def score_chart(result: ScoreResult) -> Any:
    """Bar chart of each option's choice probability (softmax over the options' scores)."""
    from explorer.core.io.charts import ChartSpec, Series

    probs = result.probabilities()
    labels = [o.option.strip() or repr(o.option) for o in result.options]
    hover = [
        f"{o.option!r}: log p = {o.logprob:.3f} (sum), {o.mean_logprob:.3f} per token over {o.n_tokens} tokens"
        for o in result.options
    ]
    return ChartSpec(
        title=f"Option scores (picked: {result.prediction.strip()!r}, by {result.normalize} log-prob)",
        x_label="option",
        y_label="probability among the options",
        series=[Series("choice probability", list(range(len(probs))), probs, style="bar", hover=hover)],
        x_ticks=list(zip(range(len(labels)), labels, strict=True)),
        y_range=(0.0, 1.0),
        legend=False,
        meta={"normalize": result.normalize, "options": [o.to_dict() for o in result.options]},
    )
