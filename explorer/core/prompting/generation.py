"""Text generation with a local causal LM, token by token through the KV cache: greedy or sampling
(temperature, top-k, top-p), max tokens, stop sequences, cancellable, and the next-token distribution at each step.

One loop serves the streamed and the plain call (``partial`` is only a callback), so both give the same text;
greedy output equals ``model.generate(do_sample=False)``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from explorer.core.io.charts import ChartSpec, Series
from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.models.loading import require_finite
from explorer.core.models.tokens import show_token


@dataclass
class GenerationSettings:
    """Decoding settings; ``do_sample=False`` is greedy (the others are then ignored)."""

    max_new_tokens: int = 32
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    stop: list[str] = field(default_factory=list)
    seed: int = 0
    top_n: int = 10  # alternatives recorded per step

    def validate(self) -> None:
        if self.max_new_tokens < 1:
            raise InputError("Max new tokens must be at least 1.")
        if self.do_sample and self.temperature <= 0:
            raise InputError("Temperature must be above 0 when sampling (use greedy for temperature 0).")
        if not 0 < self.top_p <= 1:
            raise InputError("Top-p must be in (0, 1].")
        if self.top_k < 0:
            raise InputError("Top-k must be 0 (off) or positive.")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StepInfo:
    """One generated token: its id and text, its probability, and the most likely alternatives (raw softmax)."""

    token_id: int
    token: str
    prob: float
    logprob: float
    top: list[tuple[str, float]]  # (token text, probability), best first

    def to_dict(self) -> dict:
        return {
            "token_id": self.token_id,
            "token": self.token,
            "prob": self.prob,
            "logprob": self.logprob,
            "top": [{"token": t, "prob": p} for t, p in self.top],
        }


@dataclass
class GenerationResult:
    """The generated text (stop sequence cut off), the steps, and why it stopped."""

    text: str
    steps: list[StepInfo]
    stop_reason: str  # "eos" | "stop" | "max_tokens"
    n_prompt_tokens: int
    seconds: float
    settings: dict = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return len(self.steps) / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "stop_reason": self.stop_reason,
            "n_prompt_tokens": self.n_prompt_tokens,
            "n_new_tokens": len(self.steps),
            "seconds": self.seconds,
            "tokens_per_second": self.tokens_per_second,
            "steps": [s.to_dict() for s in self.steps],
        }


def eos_ids(lm: Any) -> set[int]:
    """Token ids that end generation: the generation config's and the tokenizer's end-of-sequence tokens."""
    ids: set[int] = set()
    gc = getattr(lm.model, "generation_config", None)
    for value in (getattr(gc, "eos_token_id", None), lm.tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


def cache_arg(model: Any) -> str:
    """Name of the KV-cache argument of ``model.forward`` (``cache`` in transformers 5.2x, ``past_key_values`` before)."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def output_cache(out: Any) -> Any:
    """The KV cache a forward returned, under either name."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def _choose(logits: Any, settings: GenerationSettings, generator: Any) -> int:
    """Pick the next token id from ``logits`` [vocab]: argmax, or a sample after temperature, top-k and top-p."""
    import torch

    if not settings.do_sample:
        return int(torch.argmax(logits))
    scores = logits / settings.temperature  # [vocab]
    if settings.top_k > 0:
        k = min(settings.top_k, scores.shape[-1])
        kth = torch.topk(scores, k).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if settings.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=True)
        cum = torch.softmax(sorted_scores, dim=-1).cumsum(dim=-1)
        # Drop tokens once the mass before them already reaches top_p (the best token always stays).
        drop_sorted = (cum - torch.softmax(sorted_scores, dim=-1)) >= settings.top_p
        drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
        scores = scores.masked_fill(drop, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def _held_back(text: str, stops: list[str]) -> int:
    """How many trailing characters could be the start of a stop sequence (kept back while streaming)."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:n]):
                best = max(best, n)
                break
    return best


def generate(
    lm: Any,
    prompt: str,
    settings: GenerationSettings | None = None,
    add_special_tokens: bool = True,
    partial: Callable[[dict], None] | None = None,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> GenerationResult:
    """Continue ``prompt`` with ``lm``; ``partial({"delta", "step", "index"})`` is called for each new token.

    The deltas joined equal the returned text (text that might start a stop sequence is held back until known).
    """
    import torch

    settings = settings or GenerationSettings()
    settings.validate()
    if not prompt:
        raise InputError("The prompt is empty.")
    tok = lm.tokenizer
    ids = tok(prompt, return_tensors="pt", add_special_tokens=add_special_tokens)["input_ids"]  # [1, prompt]
    n_prompt = int(ids.shape[1])
    if n_prompt + settings.max_new_tokens > lm.max_length:
        raise InputError(
            f"The prompt has {n_prompt} tokens; with {settings.max_new_tokens} new tokens that exceeds the model's "
            f"context of {lm.max_length}. Use fewer examples or fewer new tokens."
        )
    stops = [s for s in settings.stop if s]
    ends = eos_ids(lm)
    generator = torch.Generator().manual_seed(int(settings.seed)) if settings.do_sample else None
    top_n = max(1, int(settings.top_n))
    steps: list[StepInfo] = []
    new_ids: list[int] = []
    text = ""
    emitted = 0
    stop_reason = "max_tokens"
    start = time.perf_counter()
    with lm.lock, torch.inference_mode():
        out = lm.model(input_ids=ids, use_cache=True, logits_to_keep=1)
        past = output_cache(out)
        cache_kw = cache_arg(lm.model)
        logits = out.logits[0, -1].float()  # [vocab]
        require_finite(logits, lm.name, "next-token scores")
        for i in range(settings.max_new_tokens):
            check(cancel)
            logprobs = torch.log_softmax(logits, dim=-1)  # [vocab]
            next_id = _choose(logits, settings, generator)
            top_lp, top_ids = torch.topk(logprobs, top_n)  # [top_n]
            top = [(tok.decode([int(t)]), float(p)) for t, p in zip(top_ids.tolist(), top_lp.exp().tolist(), strict=True)]
            lp = float(logprobs[next_id])
            if next_id in ends:
                steps.append(StepInfo(next_id, tok.decode([next_id]), float(torch.exp(logprobs[next_id])), lp, top))
                stop_reason = "eos"
                break
            new_ids.append(next_id)
            steps.append(StepInfo(next_id, tok.decode([next_id]), float(torch.exp(logprobs[next_id])), lp, top))
            text = tok.decode(new_ids, skip_special_tokens=True)
            hit = min((text.find(s) for s in stops if s in text), default=-1)
            if hit >= 0:
                text = text[:hit]
                stop_reason = "stop"
                break
            # A byte-level token may end inside a multi-byte character: wait for the rest.
            safe = len(text) - _held_back(text, stops)
            if text.endswith("\ufffd"):
                safe = min(safe, len(text.rstrip("\ufffd")))
            if partial is not None and safe > emitted:
                partial({"delta": text[emitted:safe], "step": steps[-1], "index": i})
                emitted = safe
            elif partial is not None:
                partial({"delta": "", "step": steps[-1], "index": i})
            progress((i + 1) / settings.max_new_tokens, f"{i + 1} tokens")
            if i + 1 < settings.max_new_tokens:
                out = lm.model(input_ids=torch.tensor([[next_id]]), use_cache=True, **{cache_kw: past})
                past = output_cache(out)
                logits = out.logits[0, -1].float()  # [vocab]
                require_finite(logits, lm.name, "next-token scores")
    if partial is not None and len(text) > emitted:
        partial({"delta": text[emitted:], "step": None, "index": len(steps) - 1})
    seconds = time.perf_counter() - start
    return GenerationResult(text, steps, stop_reason, n_prompt, seconds, settings.to_dict())


def step_chart(result: GenerationResult, index: int) -> ChartSpec:
    """Bar chart of the next-token distribution at generated step ``index`` (the chosen token first in its rank)."""
    if not result.steps:
        raise InputError("Nothing was generated yet.")
    index = max(0, min(index, len(result.steps) - 1))
    step = result.steps[index]
    labels = [show_token(t) or "∅" for t, _ in step.top]  # a space reads ␣, as in the Steps list
    probs = [p for _, p in step.top]
    hover = [
        f"{lab}: p = {p:.4f}" + ("  ← chosen" if t == step.token else "")
        for lab, (t, p) in zip(labels, step.top, strict=True)
    ]
    spec = ChartSpec(
        title=f"Next-token distribution at step {index + 1} (chosen: {show_token(step.token) or '∅'}, p = {step.prob:.3f})",
        x_label="candidate token",
        y_label="probability",
        series=[Series("probability", list(range(len(probs))), probs, style="bar", hover=hover)],
        x_ticks=list(zip(range(len(labels)), labels, strict=True)),
        y_range=(0.0, max(probs + [0.05]) * 1.05),
        legend=False,
        meta={"step": index + 1, "chosen": step.token, "chosen_prob": step.prob, **{"settings": result.settings}},
    )
    return spec
