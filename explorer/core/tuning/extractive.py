"""The lecture's task ④, output copied from the input: a start/end span head on an encoder, fine-tuned on
SQuAD-style data in the lab's modes (frozen encoder + head fitted exactly, full, adapter), and scored with
SQuAD v1.1 exact match / F1.

Contexts longer than one window are cut into overlapping windows (``stride`` tokens shared), as transformers'
question-answering examples do (``prepare_train_features`` / ``postprocess_qa_predictions``): a window that
does not hold the whole answer is trained to point at [CLS]; a question's answer is the best-scoring valid
span (inside the context, start ≤ end, at most ``max_answer_len`` tokens) over all its windows.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.core.io.charts import ChartSpec, Series
from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.tuning import squad
from explorer.core.tuning.finetune import DEFAULT_LR, validate
from explorer.core.tuning.finetune_results import EpochReport, FinetuneResult, ModeCost, TrainUpdate
from explorer.core.tuning.task_model import base_folder
from explorer.core.tuning.taskstore import check_out_dir

MODES = ("frozen", "full", "adapter")
MAX_LENGTH = 128  # tokens per window (question + context + specials)
STRIDE = 48  # tokens two windows of one context share
MAX_ANSWER_TOKENS = 30
N_BEST = 20
DEFAULT_EPOCHS = {"frozen": 50, "full": 4, "adapter": 6}
LABELS = ["start", "end"]
C = 1.0  # the frozen head's L2 strength, as the sentence probe's (scikit-learn's default)


@dataclass
class Windows:
    """Tokenized windows of a set of questions: model inputs, which example each came from, the context
    tokens' character offsets (None outside the context), and the answer's token span (0, 0 = [CLS])."""

    items: list[dict]  # input_ids, token_type_ids, attention_mask (+ start_positions, end_positions)
    example: list[int]  # window -> index of its example
    offsets: list[list[tuple[int, int] | None]]


def _check_model(lm: Any) -> None:
    from explorer.core.io.errors import ModelError

    if lm.kind != "encoder":
        raise ModelError(f"'{lm.name}' is a {lm.kind}. Extractive QA trains a span head on an encoder (BERT-style) "
                         "model such as the bundled MiniLM.")


def window_size(lm: Any) -> tuple[int, int]:
    """Tokens per window and the stride for this model: MAX_LENGTH / STRIDE, within the model's own limit."""
    tok_max = getattr(lm.tokenizer, "model_max_length", None) or MAX_LENGTH
    length = int(min(MAX_LENGTH, lm.max_length, tok_max if tok_max < 100_000 else MAX_LENGTH))
    return length, min(STRIDE, length // 3)


def windows(tokenizer: Any, examples: list[squad.QAExample], max_length: int = MAX_LENGTH, stride: int = STRIDE,
            labels: bool = True) -> Windows:
    """Question + context windows with a stride; with ``labels`` each window gets the token span of the first
    gold answer, or (0, 0) when the answer is not wholly inside it."""
    if not examples:
        return Windows([], [], [])
    longest = max(len(q) for q in tokenizer([e.question for e in examples], add_special_tokens=False)["input_ids"])
    if longest + 3 >= max_length - stride:
        raise InputError(f"A question of {longest} tokens leaves no room for its context in a {max_length}-token "
                         "window. Shorten the question.")
    pad_right = getattr(tokenizer, "padding_side", "right") == "right"
    enc = tokenizer([e.question for e in examples], [e.context for e in examples],
                    truncation="only_second" if pad_right else "only_first", max_length=max_length, stride=stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True)
    keys = [k for k in enc.keys() if k not in ("offset_mapping", "overflow_to_sample_mapping")]
    items, owner, offsets = [], [], []
    for i, ex_i in enumerate(enc["overflow_to_sample_mapping"]):
        seq = enc.sequence_ids(i)
        offs = [tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][i], seq, strict=True)]
        item = {k: enc[k][i] for k in keys}
        if labels:
            ex = examples[ex_i]
            a_start = ex.starts[0]
            a_end = a_start + len(ex.answers[0])
            ctx = [t for t, o in enumerate(offs) if o is not None]
            s_tok = e_tok = 0
            if ctx and offs[ctx[0]][0] <= a_start and offs[ctx[-1]][1] >= a_end:
                s_tok = next(t for t in ctx if offs[t][1] > a_start)
                e_tok = next(t for t in reversed(ctx) if offs[t][0] < a_end)
            item["start_positions"], item["end_positions"] = s_tok, e_tok
        items.append(item)
        owner.append(int(ex_i))
        offsets.append(offs)
    return Windows(items, owner, offsets)


def _collate(tokenizer: Any, items: list[dict]) -> dict:
    import torch

    feats = [{k: v for k, v in it.items() if k not in ("start_positions", "end_positions")} for it in items]
    batch = dict(tokenizer.pad(feats, return_tensors="pt"))
    if "start_positions" in items[0]:
        batch["start_positions"] = torch.tensor([it["start_positions"] for it in items])  # [batch]
        batch["end_positions"] = torch.tensor([it["end_positions"] for it in items])  # [batch]
    return batch


def best_spans(examples: list[squad.QAExample], win: Windows, start_logits: list[Any], end_logits: list[Any],
               max_answer_len: int = MAX_ANSWER_TOKENS, n_best: int = N_BEST) -> list[str]:
    """The best valid span of each question over its windows, by start + end logit (transformers'
    ``postprocess_qa_predictions``): both ends in the context, start ≤ end, at most ``max_answer_len`` tokens."""
    import numpy as np

    best: list[tuple[float, str]] = [(-math.inf, "") for _ in examples]
    for w, ex_i in enumerate(win.example):
        s_log = np.asarray(start_logits[w], dtype=np.float64)
        e_log = np.asarray(end_logits[w], dtype=np.float64)
        offs = win.offsets[w]
        n = min(len(offs), len(s_log))
        s_top = np.argsort(s_log[:n])[::-1][:n_best]
        e_top = np.argsort(e_log[:n])[::-1][:n_best]
        context = examples[ex_i].context
        for s in s_top:
            if offs[s] is None:
                continue
            for e in e_top:
                if offs[e] is None or e < s or e - s + 1 > max_answer_len:
                    continue
                value = float(s_log[s] + e_log[e])
                if value > best[ex_i][0]:
                    best[ex_i] = (value, context[offs[s][0]:offs[e][1]])
    return [text for _, text in best]


def predict(lm: Any, examples: list[squad.QAExample], model: Any = None, batch_size: int = 32,
            progress: Progress = no_progress, cancel: threading.Event | None = None) -> list[str]:
    """Each question's predicted answer text (windows, forward passes, best span); ``model`` replaces the
    loaded model (one being trained on it)."""
    import contextlib

    import torch

    tokenizer = lm.tokenizer
    lock = lm.lock if model is None else None
    model = lm.model if model is None else model
    win = windows(tokenizer, examples, *window_size(lm), labels=False)
    starts, ends = [], []
    n = len(win.items)
    for lo in range(0, n, batch_size):
        check(cancel)
        batch = _collate(tokenizer, win.items[lo:lo + batch_size])
        with lock or contextlib.nullcontext(), torch.no_grad():
            out = model(**batch)
        starts += list(out.start_logits.float().numpy())  # [window, token]
        ends += list(out.end_logits.float().numpy())
        progress(min(n, lo + batch_size) / max(1, n), f"Answered {min(n, lo + batch_size):,}/{n:,} windows")
    return best_spans(examples, win, starts, ends)


# ---------------------------------------------------------------- building the span model


def _config(lm: Any) -> Any:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(base_folder(lm), local_files_only=lm.entry.source != "hub",
                                        trust_remote_code=False)
    config.num_labels = 2
    config.id2label = dict(enumerate(LABELS))
    config.label2id = {lab: i for i, lab in enumerate(LABELS)}
    return config


def build_qa_model(lm: Any, mode: str, lora_r: int = 8, seed: int = 0) -> Any:
    """The pre-trained encoder with a fresh, seeded start/end head (transformers' ...ForQuestionAnswering),
    prepared for ``mode`` (adapter: LoRA via peft, the head trained beside it)."""
    import warnings

    import torch
    import transformers

    from explorer.core.io.errors import ModelError

    torch.manual_seed(seed)
    try:
        model = transformers.AutoModelForQuestionAnswering.from_pretrained(
            base_folder(lm), config=_config(lm), attn_implementation="eager", dtype=torch.float32,
            ignore_mismatched_sizes=True, local_files_only=lm.entry.source != "hub", trust_remote_code=False)
    except Exception as err:  # transformers raises many types here
        raise ModelError(f"Could not build a QA model on '{lm.name}': {str(err).splitlines()[0]}") from err
    if mode == "adapter":
        import peft

        cfg = peft.LoraConfig(task_type=peft.TaskType.QUESTION_ANS, r=lora_r, lora_alpha=2 * lora_r,
                              lora_dropout=0.1)
        cfg.base_model_name_or_path = base_folder(lm)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            try:
                return peft.get_peft_model(model, cfg)
            except ValueError:  # an architecture peft has no default target modules for
                cfg.target_modules = "all-linear"
                return peft.get_peft_model(model, cfg)
    return model


def plan(lm: Any, lora_r: int = 8, progress: Progress = no_progress,
         cancel: threading.Event | None = None) -> list[ModeCost]:
    """Trainable and stored parameters of each QA mode, counted on meta-device models (no training)."""
    import torch
    import transformers

    check(cancel)
    _check_model(lm)
    config = _config(lm)
    with torch.device("meta"):
        bare = transformers.AutoModel.from_config(config)
    encoder = sum(p.numel() for p in bare.parameters())
    head = int(config.hidden_size) * 2 + 2
    out = [ModeCost("frozen", head, encoder + head, head, head * 4,
                    "store only the start/end head per task; the encoder is shared")]
    import peft

    with torch.device("meta"):
        full = transformers.AutoModelForQuestionAnswering.from_config(config)
        total = sum(p.numel() for p in full.parameters())
        out.append(ModeCost("full", total, total, total, total * 4, "store a whole copy of the model per task"))
        cfg = peft.LoraConfig(task_type=peft.TaskType.QUESTION_ANS, r=lora_r, lora_alpha=2 * lora_r)
        try:
            wrapped = peft.get_peft_model(full, cfg)
        except ValueError:
            cfg.target_modules = "all-linear"
            wrapped = peft.get_peft_model(full, cfg)
        trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    out.append(ModeCost("adapter", trainable, total, trainable, trainable * 4,
                        "store only the LoRA matrices and the head per task"))
    return out


# ---------------------------------------------------------------- training


def finetune_qa(
    lm: Any,
    data: squad.QAData,
    mode: str = "full",
    epochs: int | None = None,
    learning_rate: float | None = None,
    batch_size: int = 16,
    seed: int = 0,
    lora_r: int = 8,
    out_dir: str | os.PathLike | None = None,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
    partial: Callable[[TrainUpdate], None] | None = None,
) -> FinetuneResult:
    """Train a span head in ``mode`` and report validation F1 (SQuAD v1.1) after every epoch / L-BFGS round;
    save what the mode stores per task to ``out_dir``."""
    if mode not in MODES:
        raise InputError(f"Extractive QA fine-tunes in the modes {', '.join(MODES)} (got '{mode}').")
    validate(mode, epochs, learning_rate, batch_size, lora_r, seed)
    _check_model(lm)
    if out_dir is not None:
        out_dir = check_out_dir(out_dir)
    epochs = DEFAULT_EPOCHS[mode] if epochs is None else int(epochs)
    lr = None if mode == "frozen" else float(learning_rate if learning_rate is not None else DEFAULT_LR[mode])
    start = time.perf_counter()
    costs = plan(lm, lora_r)
    progress(0.0, f"Cutting {len(data.train) + len(data.val)} questions into windows…")
    train_win = windows(lm.tokenizer, data.train, *window_size(lm))
    if not train_win.items:
        raise InputError("No training questions.")
    if mode == "frozen":
        model, history, batch_losses, initial, converged = _train_frozen(lm, data, train_win, epochs, seed,
                                                                         progress, cancel, partial)
        rule = (f"L-BFGS on the cached encoder states, L2 as the sentence probe (C = {C:g}); stops when converged "
                f"or after {epochs} rounds")
    else:
        model, history, batch_losses, initial = _train_weights(lm, data, train_win, mode, epochs, lr, batch_size,
                                                               seed, lora_r, progress, cancel, partial)
        converged = None
        rule = f"{epochs} epoch(s) of AdamW (lr {lr:g}, batch {batch_size}); the last epoch's weights are kept"
    preds = predict(lm, data.val, model, cancel=cancel) if data.val else []
    scores = squad.score(preds, [e.answers for e in data.val])
    cost = next(c for c in costs if c.mode == mode)
    result = FinetuneResult(
        model=lm.name, task="qa", mode=mode, labels=list(LABELS), trainable_parameters=cost.trainable_parameters,
        total_parameters=cost.total_parameters, weight_bytes=cost.stored_bytes, history=history,
        val_accuracy=scores["f1"], initial_val_accuracy=initial, majority_baseline=0.0,
        train_rows=len(data.train), val_rows=len(data.val), epochs=epochs, learning_rate=lr, seed=seed, seconds=0.0,
        stopping_rule=rule, converged=converged, costs=costs, batch_losses=batch_losses,
        metric="validation F1 (SQuAD)", scores={"exact_match": scores["exact_match"], "f1": scores["f1"]},
    )
    length, stride = window_size(lm)
    result.notes.append(f"{len(train_win.items)} training windows of at most {length} tokens (stride {stride}) "
                        f"from {len(data.train)} questions; validation exact match {scores['exact_match']:.1%}, "
                        f"F1 {scores['f1']:.1%} on {len(data.val)} questions.")
    if converged is False:
        result.notes.append(f"Not converged after {epochs} rounds: give more rounds (--epochs).")
    if out_dir is not None:
        check(cancel)
        progress(0.97, "Saving…")
        save_qa(model, lm, result, data, Path(out_dir))
    result.seconds = time.perf_counter() - start
    progress(1.0, f"Validation EM {scores['exact_match']:.0%}, F1 {scores['f1']:.0%}")
    return result


def _val_f1(lm: Any, model: Any, data: squad.QAData, cancel: threading.Event | None) -> float:
    if not data.val:
        return 0.0
    model.eval()
    return squad.score(predict(lm, data.val, model, cancel=cancel), [e.answers for e in data.val])["f1"]


def _train_weights(lm: Any, data: squad.QAData, win: Windows, mode: str, epochs: int, lr: float, batch_size: int,
                   seed: int, lora_r: int, progress: Progress, cancel: threading.Event | None,
                   partial: Callable[[TrainUpdate], None] | None) -> tuple[Any, list, list, float]:
    import torch

    from explorer.core.tuning.finetune import _batches, train_epoch

    tok = lm.tokenizer
    model = build_qa_model(lm, mode, lora_r, seed)
    check(cancel)
    progress(0.05, "Validation before training…")
    initial = _val_f1(lm, model, data, cancel)
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    steps = math.ceil(len(win.items) / batch_size)
    history: list[EpochReport] = []
    batch_losses: list[tuple[float, float]] = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        losses = train_epoch(model, lambda idx: _collate(tok, [win.items[i] for i in idx]),
                             _batches(len(win.items), batch_size, gen), optimizer, epoch, epochs, batch_losses,
                             lambda e, step, loss: partial and partial(
                                 TrainUpdate(e, step, steps, loss, list(history), initial, mode=mode)),
                             progress, cancel)
        f1 = _val_f1(lm, model, data, cancel)
        history.append(EpochReport(epoch, sum(losses) / len(losses), f1, time.perf_counter() - t0))
        if partial is not None:
            partial(TrainUpdate(epoch, steps, steps, losses[-1], list(history), initial, epoch_done=True, mode=mode))
    model.eval()
    return model, history, batch_losses, initial


def _train_frozen(lm: Any, data: squad.QAData, win: Windows, rounds: int, seed: int, progress: Progress,
                  cancel: threading.Event | None, partial: Callable[[TrainUpdate], None] | None
                  ) -> tuple[Any, list, list, float, bool]:
    """Encode every window once with the frozen encoder, then fit the start/end head (a linear map of each
    token's last hidden state to two logits) by L-BFGS: cross-entropy of the gold start and end positions
    over the window's tokens, L2-penalised like the sentence probe."""
    import torch

    from explorer.core.tuning.probe import ROUND_ITERATIONS, TOLERANCE_CHANGE, TOLERANCE_GRAD, encoder_of

    tok = lm.tokenizer
    encoder = encoder_of(lm.model)
    length, stride = window_size(lm)
    val_win = windows(tok, data.val, length, stride, labels=False)

    def encode(items: list[dict], lo: float, hi: float, what: str) -> tuple[Any, Any]:
        states, masks = [], []
        for b in range(0, len(items), 32):
            check(cancel)
            batch = _collate(tok, items[b:b + 32])
            batch.pop("start_positions", None)
            batch.pop("end_positions", None)
            pad = length - batch["input_ids"].shape[1]
            with lm.lock, torch.no_grad():
                h = encoder(**batch).last_hidden_state.float()  # [window, token, hidden]
            states.append(torch.nn.functional.pad(h, (0, 0, 0, pad)))
            masks.append(torch.nn.functional.pad(batch["attention_mask"], (0, pad)))
            progress(lo + (hi - lo) * min(1.0, (b + 32) / len(items)), f"Encoding {what} once (frozen encoder)…")
        return (torch.cat(states), torch.cat(masks).bool()) if states else (torch.zeros(0), torch.zeros(0))

    x, mask = encode(win.items, 0.0, 0.5, "training windows")  # [window, token, hidden], [window, token]
    xv, _ = encode(val_win.items, 0.5, 0.6, "validation windows")
    ys = torch.tensor([it["start_positions"] for it in win.items])
    ye = torch.tensor([it["end_positions"] for it in win.items])
    n, _, d = x.shape
    torch.manual_seed(seed)
    w = torch.zeros(2, d, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    x64 = x.double()
    alpha = 1.0 / (2.0 * C * n)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=ROUND_ITERATIONS, max_eval=ROUND_ITERATIONS * 5,
                            history_size=20, tolerance_grad=TOLERANCE_GRAD, tolerance_change=TOLERANCE_CHANGE,
                            line_search_fn="strong_wolfe")
    neg = torch.finfo(torch.float64).min

    def objective() -> Any:
        logits = (x64 @ w.T + b).masked_fill(~mask.unsqueeze(-1), neg)  # [window, token, 2]
        ce = torch.nn.functional.cross_entropy
        return (ce(logits[..., 0], ys) + ce(logits[..., 1], ye)) / 2 + alpha * (w * w).sum()

    def closure() -> Any:
        opt.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    def val_f1() -> float:
        if not data.val:
            return 0.0
        with torch.no_grad():
            logits = (xv.double() @ w.T + b).float()  # [window, token, 2]
        preds = best_spans(data.val, val_win, list(logits[..., 0].numpy()), list(logits[..., 1].numpy()))
        return squad.score(preds, [e.answers for e in data.val])["f1"]

    initial = val_f1()
    history: list[EpochReport] = []
    converged, done_iter, t0 = False, 0, time.perf_counter()
    for r in range(1, rounds + 1):
        check(cancel)
        opt.step(closure)
        n_iter = int(opt.state[opt._params[0]].get("n_iter", 0))
        with torch.no_grad():
            loss = float(objective())
        if not math.isfinite(loss):
            raise InputError("The span head's loss is not finite: the encoder's states hold NaN or infinite values.")
        history.append(EpochReport(r, loss, val_f1(), time.perf_counter() - t0))
        t0 = time.perf_counter()
        progress(0.6 + 0.35 * r / rounds, f"L-BFGS round {r}/{rounds}: loss {loss:.4f}")
        if partial is not None:
            partial(TrainUpdate(r, 1, 1, loss, list(history), initial, epoch_done=True, mode="frozen"))
        if n_iter - done_iter < ROUND_ITERATIONS:
            converged = True
            break
        done_iter = n_iter
    head = torch.nn.Linear(d, 2)
    with torch.no_grad():
        head.weight.copy_(w.detach().float())
        head.bias.copy_(b.detach().float())
    model = frozen_qa_model(encoder, head, lm.model.config)
    return model, history, [(float(h.epoch), h.loss) for h in history], initial, converged


def frozen_qa_model(encoder: Any, head: Any, config: Any) -> Any:
    """The frozen encoder with a linear start/end head, returning ``start_logits`` / ``end_logits`` like
    transformers' ...ForQuestionAnswering."""
    import copy

    from explorer.core.tuning.probe import frozen_model

    config = copy.deepcopy(config)
    config.num_labels = 2
    config.id2label = dict(enumerate(LABELS))
    config.label2id = {lab: i for i, lab in enumerate(LABELS)}
    model = frozen_model(encoder, head, "mean", "qa", config)
    config.architectures = [type(model).__name__]
    return model


def save_qa(model: Any, lm: Any, result: FinetuneResult, data: squad.QAData, out: Path) -> int:
    """Write what the mode stores (the same folder layout as the other tasks: see :mod:`taskstore`)."""
    from explorer.core.tuning.finetune import save

    return save(model, lm, result, data, out)  # type: ignore[arg-type]


# ---------------------------------------------------------------- scoring a file


@dataclass
class QAEvalResult:
    """SQuAD v1.1 scores of a QA model on a file, with each question's prediction."""

    model: str
    path: str
    n: int
    exact_match: float
    f1: float
    predictions: list[dict]
    seconds: float = 0.0
    task: str = "qa"
    notes: list[str] | None = None

    def to_dict(self, predictions: bool = False) -> dict:
        out = {"model": self.model, "task": "qa", "path": self.path, "n": self.n, "exact_match": self.exact_match,
               "f1": self.f1, "seconds": round(self.seconds, 2), "notes": self.notes or []}
        if predictions:
            out["predictions"] = self.predictions
        return out


def evaluate_qa(lm: Any, path: str | os.PathLike, batch_size: int = 32, progress: Progress = no_progress,
                cancel: threading.Event | None = None) -> QAEvalResult:
    """Exact match and F1 (SQuAD v1.1) of a model with a span head on a QA file."""
    from explorer.core.tuning.heads import require_head

    start = time.perf_counter()
    examples, notes = squad.read_examples(path)
    require_head(lm, "qa")
    preds = predict(lm, examples, batch_size=batch_size, progress=progress, cancel=cancel)
    s = squad.score(preds, [e.answers for e in examples])
    rows = [{"id": e.id, "question": e.question, "prediction": p, "answers": e.answers,
             "exact_match": squad.best_over_golds(squad.exact_match, p, e.answers),
             "f1": squad.best_over_golds(squad.f1, p, e.answers)} for e, p in zip(examples, preds, strict=True)]
    return QAEvalResult(model=lm.name, path=str(path), n=len(examples), exact_match=s["exact_match"], f1=s["f1"],
                        predictions=rows, seconds=time.perf_counter() - start, notes=notes)


def scores_chart(result: QAEvalResult) -> ChartSpec:
    """Exact match and F1 of a QA evaluation as two bars, with every question's F1 in the data."""
    return ChartSpec(
        title=f"SQuAD v1.1 scores ({result.n} questions)", x_label="metric", y_label="score",
        series=[Series("score", [0.0, 1.0], [result.exact_match, result.f1], style="bar", color="#2ca02c",
                       hover=[f"exact match {result.exact_match:.1%}", f"F1 {result.f1:.1%}"])],
        x_ticks=[(0.0, "exact match"), (1.0, "F1")], y_range=(0.0, 1.0), legend=False,
        meta=result.to_dict(predictions=True))
