"""The lecture's task ⑤, a general sequence out, in its two designs trained on the same pairs:

- ``v1``: the pre-trained encoder (MiniLM) with a small decoder trained from scratch that reads it through
  cross-attention (transformers' ``EncoderDecoderModel`` with a 2-layer ``BertLMHeadModel``);
- ``v2``: a pre-trained decoder (SmolLM2) fine-tuned with a LoRA adapter (peft) on "input → output" text, the
  loss on the output tokens only.

Both are scored on held-out pairs while they train (greedy generation; exact match and chrF, sacrebleu's
corpus chrF), so the lecture's claim that v1's decoder is poorly trained on little data is a measured curve.
"""

from __future__ import annotations

import math
import os
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from explorer.core.io.charts import ChartSpec, Series
from explorer.core.io.errors import InputError, ModelError
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.tuning.pairs import (  # noqa: F401  (the seq2seq API in one place)
    Pair,
    PairData,
    chrf,
    load_pairs,
    looks_like_pairs,
    read_pairs,
    score,
)

DESIGNS = ("v1", "v2")
DESIGN_TITLES = {
    "v1": "v1: MiniLM encoder + small decoder from scratch (cross-attention)",
    "v2": "v2: SmolLM2 (pre-trained decoder) + LoRA on 'input → output'",
}
DEFAULT_MODELS = {"v1": "minilm", "v2": "smollm2"}
ARROW = " →"
DEFAULT_STEPS = {"v1": 400, "v2": 150}
DEFAULT_LR = {"v1": 1e-3, "v2": 2e-3}
ENCODER_LR = 5e-5  # v1: the pre-trained encoder moves slowly; the new decoder and cross-attention at the full rate
EVAL_EVERY = 25
MAX_INPUT_TOKENS = 64
MAX_NEW_TOKENS = 16
DECODER = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256}
META_FILE = "finetune.json"


# ---------------------------------------------------------------- the two designs


def _wordpiece_text(tokens: list[str]) -> str:
    """WordPiece tokens back to text: '##' pieces join their word, punctuation joins the word before it, and the
    connectors - / : ' the word after too (BERT's pre-tokenizer split '1992-03-14' at the hyphens; transformers'
    decode would write '1992 - 03 - 14')."""
    out = ""
    glue = True  # no space before the next token
    for t in tokens:
        if t.startswith("##"):
            out += t[2:]
            glue = False
        elif len(t) == 1 and not t.isalnum():
            out += t
            glue = t in "-/:'"
        else:
            out += ("" if glue else " ") + t
            glue = False
    return out.strip()


class Design:
    """One design's model, how it turns a batch of pairs into a loss, and how it generates."""

    def __init__(self, design: str, lm: Any, seed: int, lora_r: int = 8) -> None:
        import torch

        self.design, self.lm, self.tok = design, lm, lm.tokenizer
        torch.manual_seed(seed)
        if design == "v1":
            self.model = self._build_v1(lm)
        elif design == "v2":
            self.model = self._build_v2(lm, lora_r)
        else:
            raise InputError(f"Unknown design '{design}'. Choose one of: {', '.join(DESIGNS)}.")

    # v1 ----------------------------------------------------------------
    @staticmethod
    def _build_v1(lm: Any) -> Any:
        import torch
        from transformers import AutoModel, BertConfig, BertLMHeadModel, EncoderDecoderModel

        from explorer.core.tuning.task_model import base_folder

        if lm.kind != "encoder":
            raise ModelError(f"v1 needs a pre-trained encoder such as MiniLM; '{lm.name}' is a {lm.kind}.")
        tok = lm.tokenizer
        if tok.cls_token_id is None or tok.sep_token_id is None:
            raise ModelError(f"v1 needs a BERT-style tokenizer with [CLS] and [SEP]; '{lm.name}' has none.")
        encoder = AutoModel.from_pretrained(base_folder(lm), attn_implementation="eager", dtype=torch.float32,
                                            local_files_only=lm.entry.source != "hub")
        config = BertConfig(vocab_size=len(tok), max_position_embeddings=MAX_NEW_TOKENS * 4, is_decoder=True,
                            add_cross_attention=True, pad_token_id=tok.pad_token_id, **DECODER)
        config._attn_implementation = "eager"
        model = EncoderDecoderModel(encoder=encoder, decoder=BertLMHeadModel(config))
        for cfg in (model.config, model.generation_config):
            cfg.decoder_start_token_id = tok.cls_token_id
            cfg.eos_token_id = tok.sep_token_id
            cfg.pad_token_id = tok.pad_token_id
        return model

    # v2 ----------------------------------------------------------------
    @staticmethod
    def _build_v2(lm: Any, lora_r: int) -> Any:
        import warnings

        import peft
        import torch
        from transformers import AutoModelForCausalLM

        from explorer.core.tuning.task_model import base_folder

        if lm.kind != "decoder":
            raise ModelError(f"v2 needs a pre-trained decoder such as SmolLM2; '{lm.name}' is a {lm.kind}.")
        model = AutoModelForCausalLM.from_pretrained(base_folder(lm), attn_implementation="eager",
                                                     dtype=torch.float32, local_files_only=lm.entry.source != "hub")
        cfg = peft.LoraConfig(task_type=peft.TaskType.CAUSAL_LM, r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.05)
        cfg.base_model_name_or_path = base_folder(lm)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            try:
                return peft.get_peft_model(model, cfg)
            except ValueError:
                cfg.target_modules = "all-linear"
                return peft.get_peft_model(model, cfg)

    def prompt(self, source: str) -> str:
        return source + ARROW

    def _eos(self) -> int:
        eos = self.tok.eos_token_id
        if eos is None:  # the model's own end token (a tokenizer that names none)
            eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
            eos = eos[0] if isinstance(eos, list) and eos else eos
        if eos is None:
            raise ModelError(f"'{self.lm.name}' has no end-of-text token to stop its output.")
        return int(eos)

    def batch(self, pairs: list[Pair]) -> dict:
        """Model inputs with labels (-100 where no loss is taken)."""
        import torch

        tok = self.tok
        if self.design == "v1":
            enc = tok([p.source for p in pairs], truncation=True, max_length=MAX_INPUT_TOKENS, padding=True,
                      return_tensors="pt")
            targets = [tok(p.target, add_special_tokens=False)["input_ids"][:MAX_NEW_TOKENS - 1] + [tok.sep_token_id]
                       for p in pairs]
            width = max(map(len, targets))
            labels = torch.tensor([t + [-100] * (width - len(t)) for t in targets])  # [batch, target token]
            return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}
        eos = self._eos()
        rows, labels = [], []
        for p in pairs:
            prompt = tok(self.prompt(p.source), add_special_tokens=False)["input_ids"][-MAX_INPUT_TOKENS:]
            answer = tok(" " + p.target, add_special_tokens=False)["input_ids"][:MAX_NEW_TOKENS - 1] + [eos]
            rows.append(prompt + answer)
            labels.append([-100] * len(prompt) + answer)
        width = max(map(len, rows))
        pad = tok.pad_token_id if tok.pad_token_id is not None else eos
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])  # [batch, token]
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        lab = torch.tensor([lb + [-100] * (width - len(lb)) for lb in labels])
        return {"input_ids": ids, "attention_mask": mask, "labels": lab}

    def generate(self, sources: list[str], batch_size: int = 32, cancel: threading.Event | None = None) -> list[str]:
        """Greedy outputs for many inputs (v2: left-padded prompts, cut at the end-of-text token or a newline)."""
        import torch

        tok, out = self.tok, []
        self.model.eval()
        for lo in range(0, len(sources), batch_size):
            check(cancel)
            chunk = sources[lo:lo + batch_size]
            with torch.no_grad():
                if self.design == "v1":
                    enc = tok(chunk, truncation=True, max_length=MAX_INPUT_TOKENS, padding=True, return_tensors="pt")
                    gen = self.model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                              max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                                              decoder_start_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                                              pad_token_id=tok.pad_token_id)
                    special = set(tok.all_special_ids)
                    for row in gen.tolist():
                        ids = [i for i in row[1:] if i not in special or i == tok.sep_token_id]
                        ids = ids[:ids.index(tok.sep_token_id)] if tok.sep_token_id in ids else ids
                        out.append(_wordpiece_text(tok.convert_ids_to_tokens(ids)))
                else:
                    eos = self._eos()
                    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
                    rows = [tok(self.prompt(s), add_special_tokens=False)["input_ids"][-MAX_INPUT_TOKENS:] for s in chunk]
                    width = max(map(len, rows))
                    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])  # [batch, token], left-padded
                    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
                    gen = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=MAX_NEW_TOKENS,
                                              do_sample=False, eos_token_id=eos, pad_token_id=pad,
                                              temperature=None, top_p=None, top_k=None)
                    for row in gen[:, width:].tolist():
                        row = row[:row.index(eos)] if eos in row else row
                        out.append(tok.decode(row, skip_special_tokens=True).split("\n")[0].strip())
        return out

    def counts(self) -> tuple[int, int]:
        """(trainable, total) parameters (v2: LoRA's matrices not counted in the total)."""
        total = trainable = 0
        for n, p in self.model.named_parameters():
            if "lora_" not in n:
                total += p.numel()
            if p.requires_grad:
                trainable += p.numel()
        return trainable, total

    def optimizer(self, lr: float) -> Any:
        import torch

        if self.design == "v1":
            enc = list(self.model.encoder.parameters())
            ids = {id(p) for p in enc}
            rest = [p for p in self.model.parameters() if id(p) not in ids]
            return torch.optim.AdamW([{"params": enc, "lr": ENCODER_LR}, {"params": rest, "lr": lr}],
                                     weight_decay=0.01)
        return torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)


# ---------------------------------------------------------------- training


@dataclass
class CurvePoint:
    """Held-out scores after ``step`` optimiser steps, and the mean training loss since the last point."""

    step: int
    loss: float | None
    exact_match: float
    chrf: float
    seconds: float


@dataclass
class Seq2SeqResult:
    """One design trained on a pairs file: its held-out curve and final scores."""

    design: str
    model: str
    steps: int
    learning_rate: float
    batch_size: int
    seed: int
    train_rows: int
    val_rows: int
    trainable_parameters: int
    total_parameters: int
    curve: list[CurvePoint]
    exact_match: float
    chrf: float
    examples: list[dict]  # a few held-out inputs with the prediction and the reference
    seconds: float = 0.0
    out_dir: str | None = None
    stored_bytes: int = 0
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: str = ""
    task: str = "seq2seq"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["title"] = DESIGN_TITLES[self.design]
        out["seconds"] = round(self.seconds, 2)
        return out


@dataclass
class Seq2SeqUpdate:
    """What ``partial`` receives: the design, the step, the batch loss and the curve so far."""

    design: str
    step: int
    steps: int
    loss: float
    curve: list[CurvePoint]


def finetune_seq2seq(
    lm: Any,
    data: PairData,
    design: str,
    steps: int | None = None,
    learning_rate: float | None = None,
    batch_size: int = 16,
    seed: int = 0,
    lora_r: int = 8,
    eval_every: int = EVAL_EVERY,
    out_dir: str | os.PathLike | None = None,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
    partial: Callable[[Seq2SeqUpdate], None] | None = None,
) -> Seq2SeqResult:
    """Train ``design`` (v1 on an encoder, v2 on a decoder) for ``steps`` AdamW steps; every ``eval_every`` steps
    generate the held-out outputs and score exact match and chrF; save the result to ``out_dir``."""
    import torch

    from explorer.core.tuning.taskstore import check_out_dir

    if design not in DESIGNS:
        raise InputError(f"Unknown design '{design}'. Choose one of: {', '.join(DESIGNS)}.")
    steps = DEFAULT_STEPS[design] if steps is None else int(steps)
    lr = DEFAULT_LR[design] if learning_rate is None else float(learning_rate)
    if not 1 <= steps <= 100_000:
        raise InputError(f"--steps must be between 1 and 100,000 (got {steps}).")
    if not (math.isfinite(lr) and 0 < lr <= 1):
        raise InputError(f"--lr must be above 0 and at most 1 (got {learning_rate}).")
    if not 1 <= batch_size <= 4096 or not 1 <= eval_every:
        raise InputError("--batch-size must be between 1 and 4096 and the evaluation interval at least 1.")
    if out_dir is not None:
        out_dir = check_out_dir(out_dir)
    start = time.perf_counter()
    progress(0.0, f"Building {DESIGN_TITLES[design]}…")
    d = Design(design, lm, seed, lora_r)
    check(cancel)
    opt = d.optimizer(lr)
    rng = random.Random(seed)
    refs = [p.target for p in data.val]
    curve: list[CurvePoint] = []
    t0 = time.perf_counter()

    def evaluate(step: int, loss: float | None) -> None:
        nonlocal t0
        preds = d.generate([p.source for p in data.val], cancel=cancel)
        s = score(preds, refs)
        curve.append(CurvePoint(step, loss, s["exact_match"], s["chrf"], time.perf_counter() - t0))
        t0 = time.perf_counter()

    evaluate(0, None)
    order: list[int] = []
    losses: list[float] = []
    for step in range(1, steps + 1):
        check(cancel)
        if len(order) < batch_size:
            more = list(range(len(data.train)))
            rng.shuffle(more)
            order += more
        idx, order = order[:batch_size], order[batch_size:]
        d.model.train()
        loss = d.model(**d.batch([data.train[i] for i in idx])).loss
        if not torch.isfinite(loss):
            raise InputError(f"Training diverged (the loss became {float(loss)}) at step {step}; nothing was saved. "
                             "Lower the learning rate (--lr).")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        progress(0.02 + 0.93 * step / steps, f"{design}: step {step}/{steps}, loss {losses[-1]:.3f}")
        if step % eval_every == 0 or step == steps:
            evaluate(step, sum(losses) / len(losses))
            losses = []
        if partial is not None:
            partial(Seq2SeqUpdate(design, step, steps, float(loss.detach()), list(curve)))
    preds = d.generate([p.source for p in data.val[:8]], cancel=cancel)
    trainable, total = d.counts()
    result = Seq2SeqResult(
        design=design, model=lm.name, steps=steps, learning_rate=lr, batch_size=batch_size, seed=seed,
        train_rows=len(data.train), val_rows=len(data.val), trainable_parameters=trainable, total_parameters=total,
        curve=curve, exact_match=curve[-1].exact_match, chrf=curve[-1].chrf,
        examples=[{"input": p.source, "prediction": q, "reference": p.target} for p, q in zip(data.val, preds,
                                                                                             strict=False)],
        data=data.path,
    )
    if out_dir is not None:
        check(cancel)
        progress(0.97, "Saving…")
        save(d, result, Path(out_dir))
    result.seconds = time.perf_counter() - start
    progress(1.0, f"{design}: held-out exact match {result.exact_match:.0%}, chrF {result.chrf:.2f}")
    return result


def compare_designs(encoder: Any, decoder: Any, data: PairData, steps: dict[str, int] | None = None,
                    batch_size: int = 16, seed: int = 0, eval_every: int = EVAL_EVERY,
                    out_dirs: dict[str, str | os.PathLike] | None = None, progress: Progress = no_progress,
                    cancel: threading.Event | None = None,
                    partial: Callable[[Seq2SeqUpdate], None] | None = None) -> tuple[Seq2SeqResult, Seq2SeqResult]:
    """v1 on ``encoder`` and v2 on ``decoder``, the same pairs, batch size, seed and evaluation points."""
    steps = steps or {}
    out_dirs = out_dirs or {}
    r1 = finetune_seq2seq(encoder, data, "v1", steps.get("v1"), batch_size=batch_size, seed=seed,
                          eval_every=eval_every, out_dir=out_dirs.get("v1"),
                          progress=lambda f, m: progress(0.5 * f, m), cancel=cancel, partial=partial)
    r2 = finetune_seq2seq(decoder, data, "v2", steps.get("v2"), batch_size=batch_size, seed=seed,
                          eval_every=eval_every, out_dir=out_dirs.get("v2"),
                          progress=lambda f, m: progress(0.5 + 0.5 * f, m), cancel=cancel, partial=partial)
    return r1, r2


# ---------------------------------------------------------------- saving and loading


def save(d: Design, result: Seq2SeqResult, out: Path) -> int:
    """v1: the whole encoder-decoder and its tokenizer; v2: the LoRA adapter only (the base decoder is shared)."""
    from explorer.core.tuning.task_model import base_folder
    from explorer.core.tuning.taskstore import weights_sha256, write_folder

    base = base_folder(d.lm)

    def write(tmp: Path) -> None:
        d.model.save_pretrained(tmp)
        if d.design == "v1":
            d.tok.save_pretrained(tmp)

    meta = {**result.to_dict(), "storage": "model" if d.design == "v1" else "adapter", "base_model": d.lm.name,
            "base_folder": base, "prompt_suffix": ARROW if d.design == "v2" else None}
    if d.design == "v2":
        meta["base_sha256"] = weights_sha256(base) if Path(base).is_dir() else None
    result.out_dir = str(out.expanduser().resolve())
    meta["out_dir"] = result.out_dir
    files, size = write_folder(out, write, meta)
    result.files, result.stored_bytes = files, size
    return size


def is_seq2seq_folder(folder: str | os.PathLike) -> bool:
    from explorer.core.tuning.taskstore import read_meta

    meta = read_meta(folder) if Path(folder).is_dir() else None
    return bool(meta and meta.get("task") == "seq2seq" and meta.get("design") in DESIGNS)


class Finetuned:
    """A saved seq2seq fine-tune loaded back: generates as it did while training."""

    def __init__(self, folder: str | os.PathLike, progress: Progress = no_progress,
                 cancel: threading.Event | None = None) -> None:
        import torch

        from explorer.core.models.loading import load_model
        from explorer.core.tuning.taskstore import read_meta, resolve_base

        folder = Path(folder)
        meta = read_meta(folder)
        if not meta or meta.get("task") != "seq2seq":
            raise ModelError(f"{folder} is not a seq2seq fine-tune (no finetune.json with task 'seq2seq').")
        self.meta, self.design, self.name = meta, str(meta["design"]), folder.name
        try:
            if self.design == "v1":
                from transformers import AutoTokenizer, EncoderDecoderModel

                progress(0.2, "Loading the encoder-decoder…")
                model = EncoderDecoderModel.from_pretrained(str(folder), dtype=torch.float32)
                tok = AutoTokenizer.from_pretrained(str(folder))
                lm = _Loaded(self.name, model, tok, "encoder")
            else:
                from peft import PeftModel

                base = load_model(resolve_base(folder, meta), progress=lambda f, m: progress(0.8 * f, m),
                                  cancel=cancel)
                check(cancel)
                progress(0.85, "Applying the adapter…")
                model = PeftModel.from_pretrained(base.model, str(folder)).merge_and_unload()
                lm = _Loaded(self.name, model, base.tokenizer, "decoder")
        except (ModelError, InputError):
            raise
        except Exception as err:  # transformers / peft raise many types
            raise ModelError(f"Could not load the seq2seq fine-tune in {folder}: {str(err).splitlines()[0]}") from err
        self.runner = Design.__new__(Design)
        self.runner.design, self.runner.lm, self.runner.tok, self.runner.model = self.design, lm, lm.tokenizer, model
        model.eval()
        progress(1.0, f"Loaded {self.name} ({DESIGN_TITLES[self.design]})")

    def generate(self, sources: list[str], cancel: threading.Event | None = None) -> list[str]:
        for s in sources:
            if not s or not s.strip():
                raise InputError("The input is empty.")
        return self.runner.generate([s.strip() for s in sources], cancel=cancel)


@dataclass
class _Loaded:
    name: str
    model: Any
    tokenizer: Any
    kind: str


@dataclass
class Seq2SeqEval:
    """Exact match and chrF of a seq2seq fine-tune on a pairs file, with every prediction."""

    model: str
    design: str
    path: str
    n: int
    exact_match: float
    chrf: float
    predictions: list[dict]
    seconds: float = 0.0

    def to_dict(self, predictions: bool = False) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "predictions"}
        out["task"] = "seq2seq"
        if predictions:
            out["predictions"] = self.predictions
        return out


def evaluate_seq2seq(ft: Finetuned, path: str | os.PathLike, progress: Progress = no_progress,
                     cancel: threading.Event | None = None) -> Seq2SeqEval:
    start = time.perf_counter()
    pairs = read_pairs(path)
    progress(0.1, f"Generating {len(pairs)} outputs…")
    preds = ft.generate([p.source for p in pairs], cancel=cancel)
    s = score(preds, [p.target for p in pairs])
    rows = [{"input": p.source, "prediction": q, "reference": p.target, "exact": q.strip() == p.target.strip()}
            for p, q in zip(pairs, preds, strict=True)]
    return Seq2SeqEval(model=ft.name, design=ft.design, path=str(path), n=len(pairs), exact_match=s["exact_match"],
                       chrf=s["chrf"], predictions=rows, seconds=time.perf_counter() - start)


# ---------------------------------------------------------------- charts

_COLORS = {"v1": "#d62728", "v2": "#1f77b4"}


def designs_chart(results: list[Seq2SeqResult]) -> ChartSpec:
    """Held-out exact match (solid) and chrF (dashed) against training steps, one colour per design."""
    series = []
    for r in results:
        x = [float(p.step) for p in r.curve]
        series.append(Series(f"{r.design} exact match", x, [p.exact_match for p in r.curve], style="line",
                             color=_COLORS[r.design], width=2.5))
        series.append(Series(f"{r.design} chrF", x, [p.chrf for p in r.curve], style="line", color=_COLORS[r.design],
                             dashed=True, width=1.5))
    return ChartSpec(title="Seq2seq: held-out exact match and chrF against steps (v1 vs v2)", x_label="step",
                     y_label="exact match / chrF", series=series, y_range=(0.0, 1.0),
                     meta={r.design: r.to_dict() for r in results}, whole_x=True)


def clean_text(text: str) -> str:
    """One line of input for the run view (a pasted block keeps its first non-empty line)."""
    lines = [ln.strip() for ln in re.split(r"[\r\n]+", text or "") if ln.strip()]
    if not lines:
        raise InputError("The input is empty.")
    return lines[0]
