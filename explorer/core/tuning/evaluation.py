"""Scoring a fine-tuned model on a labelled file: accuracy, per-class precision / recall / F1, macro-F1 and the
confusion matrix. Sentence tasks are scored per row; token tasks per word (accuracy, confusion) and per
entity (precision / recall / F1 on exact spans, seqeval's default rules: conlleval-style IOB/IOBES chunks).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core.io.charts import ChartSpec
from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.tuning.tags import entity_spans


@dataclass
class EvalResult:
    """Scores of a model on a labelled file."""

    model: str
    task: str
    path: str
    n: int  # rows scored
    labels: list[str]  # rows and columns of the confusion matrix
    confusion: list[list[int]]  # [gold, predicted]
    accuracy: float
    per_class: dict[str, dict[str, float]]  # label (tokens: entity type) -> precision, recall, f1, support
    macro_f1: float
    level: str  # "row" or "entity" (what per_class counts)
    units: int  # rows, or words for token tasks
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    predictions: list[Any] = field(default_factory=list)  # per row: a label, or a tag per word

    def to_dict(self, predictions: bool = False) -> dict:
        out = {
            "model": self.model, "task": self.task, "path": self.path, "n": self.n, "labels": self.labels,
            "confusion": self.confusion, "accuracy": self.accuracy, "per_class": self.per_class,
            "macro_f1": self.macro_f1, "level": self.level, "units": self.units, "seconds": round(self.seconds, 2),
            "notes": self.notes,
        }
        if predictions:
            out["predictions"] = self.predictions
        return out


def _prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "support": n_gold}


def score_labels(gold: list[str], pred: list[str], labels: list[str]) -> tuple[np.ndarray, dict, float, float]:
    """Confusion matrix [gold, predicted], per-label P/R/F1, macro-F1 (over labels with gold or predictions)
    and accuracy."""
    index = {lab: i for i, lab in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g, p in zip(gold, pred, strict=True):
        m[index[g], index[p]] += 1
    per = {}
    for i, lab in enumerate(labels):
        if m[i].sum() or m[:, i].sum():
            per[lab] = _prf(int(m[i, i]), int(m[:, i].sum()), int(m[i].sum()))
    macro = float(np.mean([v["f1"] for v in per.values()])) if per else 0.0
    acc = float(np.trace(m) / m.sum()) if m.sum() else 0.0
    return m, per, macro, acc


def score_entities(gold: list[list[str]], pred: list[list[str]]) -> tuple[dict, float]:
    """Per entity type P/R/F1 on exact spans, and their macro-F1 (seqeval's classification_report)."""
    g_set = {(i, *e) for i, tags in enumerate(gold) for e in entity_spans(tags)}
    p_set = {(i, *e) for i, tags in enumerate(pred) for e in entity_spans(tags)}
    types = sorted({e[1] for e in g_set | p_set})
    per = {}
    for t in types:
        g = {e for e in g_set if e[1] == t}
        p = {e for e in p_set if e[1] == t}
        per[t] = _prf(len(g & p), len(p), len(g))
    macro = float(np.mean([v["f1"] for v in per.values()])) if per else 0.0
    return per, macro


def evaluate(
    lm: Any,
    path: str | os.PathLike,
    task: str | None = None,
    batch_size: int = 32,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> EvalResult:
    """Score ``lm`` on every row of a labelled CSV / TSV / JSONL file, in padded batches."""
    from explorer.core.tuning import heads
    from explorer.core.tuning.datasets import parse_examples

    if not 1 <= batch_size <= 4096:
        raise InputError(f"The batch size must be between 1 and 4096 (got {batch_size}).")
    start = time.perf_counter()
    model_task = "tokens" if "token-classification" in lm.heads else "classify"
    if "token-classification" not in lm.heads and "sequence-classification" not in lm.heads:
        heads.require_head(lm, task or "classify")
    task, _columns, examples, notes = parse_examples(path, task)
    if (task == "tokens") != (model_task == "tokens"):
        need = "a token-classification" if task == "tokens" else "a sequence-classification"
        raise InputError(f"{Path(path).name} is a '{task}' data set; '{lm.name}' needs {need} head for it.")
    if not examples:
        raise InputError(f"{Path(path).name} has no labelled rows.")
    names = heads.label_names(lm.config, lm.config.num_labels)
    check(cancel)
    if task == "tokens":
        ids = heads.predict_words(lm, [ex.tokens or [] for ex in examples], batch_size, progress, cancel)
        cut = sum(i < 0 for row in ids for i in row)
        pred = [["O" if i < 0 else names[i] for i in row] for row in ids]
        gold = [list(ex.tags or []) for ex in examples]
        if cut:
            notes.append(f"{cut} word(s) lay beyond the model's input limit and count as 'O'.")
        flat_g = [t for row in gold for t in row]
        flat_p = [t for row in pred for t in row]
        labels = names + sorted(set(flat_g) - set(names))
        m, _per_tag, _macro_tag, acc = score_labels(flat_g, flat_p, labels)
        per, macro = score_entities(gold, pred)
        level, units, predictions = "entity", len(flat_g), pred
    else:
        if task == "pair" and any(ex.text_pair is None for ex in examples):
            raise InputError(f"{Path(path).name}: the pair task needs a second text in every row.")
        probs = heads.predict_sentences(lm, [ex.text for ex in examples],
                                        [ex.text_pair or "" for ex in examples] if task == "pair" else None,
                                        batch_size, progress, cancel)
        pred = [names[int(i)] for i in probs.argmax(-1)]
        gold = [str(ex.label) for ex in examples]
        labels = names + sorted(set(gold) - set(names))
        m, per, macro, acc = score_labels(gold, pred, labels)
        level, units, predictions = "row", len(gold), pred
    unknown = sorted(set(labels) - set(names))
    if unknown:
        notes.append(f"Labels the model does not know (always wrong): {', '.join(unknown)}.")
    return EvalResult(model=lm.name, task=task, path=str(path), n=len(examples), labels=labels,
                      confusion=m.tolist(), accuracy=acc, per_class=per, macro_f1=macro, level=level, units=units,
                      seconds=time.perf_counter() - start, notes=notes, predictions=predictions)


def confusion_chart(result: EvalResult) -> ChartSpec:
    """The confusion matrix as a heatmap: rows are the gold labels, columns the predictions."""
    m = np.asarray(result.confusion, dtype=float)
    return ChartSpec(
        title=f"Confusion matrix ({result.n} rows, accuracy {result.accuracy:.1%})", kind="heatmap",
        x_label="predicted", y_label="gold", matrix=m, row_labels=list(result.labels),
        col_labels=list(result.labels), value_range=(0.0, float(max(m.max(), 1.0)) if m.size else 1.0),
        colormap="viridis", legend=False, meta=result.to_dict(), cell_values=True,
    )
