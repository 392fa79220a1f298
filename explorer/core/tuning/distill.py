"""A distilled student beside a bigger model: parameters, bytes, seconds per sentence and the frozen probe's
held-out accuracy, measured in one run on the same sentences (the lecture's "distillation" in numbers)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

from explorer.core.io.charts import ChartSpec, Series
from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, no_progress


@dataclass
class ModelFigures:
    name: str
    layers: int
    hidden: int
    parameters: int
    bytes_on_disk: int
    bytes_in_memory: int
    seconds_per_input: float
    probe_accuracy: float


@dataclass
class DistillComparison:
    student: ModelFigures
    teacher: ModelFigures
    inputs: int
    val_rows: int
    threads: int

    def to_dict(self) -> dict:
        return asdict(self)


def _figures(lm: Any, sentences: list[str], progress: Progress, cancel: threading.Event | None,
             frac: tuple[float, float]) -> tuple[ModelFigures, int]:
    from explorer.core.tuning.probe import encoder_of, pool
    from explorer.core.tuning.quantize import MAX_TOKENS, memory_bytes, probe_accuracy, timed

    enc = encoder_of(lm.model)
    inputs = [lm.tokenizer(s, return_tensors="pt", truncation=True, max_length=MAX_TOKENS) for s in sentences]
    with lm.lock:
        _out, seconds = timed(lambda b: pool(enc(**b), b["attention_mask"], "mean"), inputs, progress, cancel,
                              frac, lm.name)
        acc, n_val = probe_accuracy(enc, lm.tokenizer, None, cancel)
    card = lm.card
    return ModelFigures(lm.name, card.num_layers, card.hidden_size, sum(p.numel() for p in lm.model.parameters()),
                        card.bytes_on_disk, memory_bytes(lm.model), seconds, acc), n_val


def compare_models(student: Any, teacher: Any, sentences: list[str] | None = None,
                   progress: Progress = no_progress, cancel: threading.Event | None = None) -> DistillComparison:
    """Measure ``student`` and ``teacher`` (both encoders) on the same held-out sentences."""
    import torch

    from explorer.core.tuning.quantize import heldout_sentences

    for lm in (student, teacher):
        if lm.kind != "encoder":
            raise InputError(f"'{lm.name}' is a {lm.kind}; the distillation comparison takes two encoders "
                             "(MiniLM and a BERT-base-sized folder).")
    sentences = sentences or heldout_sentences()
    s, n_val = _figures(student, sentences, progress, cancel, (0.0, 0.5))
    t, _n = _figures(teacher, sentences, progress, cancel, (0.5, 1.0))
    progress(1.0, f"{s.name}: {s.parameters / max(t.parameters, 1):.2f}× the parameters of {t.name}, "
                  f"{t.seconds_per_input / max(s.seconds_per_input, 1e-12):.1f}× the speed")
    return DistillComparison(s, t, len(sentences), n_val, torch.get_num_threads())


def distill_chart(c: DistillComparison) -> ChartSpec:
    """The student's figures as a share of the bigger model's (bigger model = 1)."""
    s, t = c.student, c.teacher
    values = [s.parameters / max(t.parameters, 1), s.bytes_on_disk / max(t.bytes_on_disk, 1),
              s.seconds_per_input / max(t.seconds_per_input, 1e-12), s.probe_accuracy / max(t.probe_accuracy, 1e-12)]
    return ChartSpec(
        title=f"{s.name} against {t.name}",
        x_label="measure",
        y_label=f"{t.name} = 1",
        series=[Series(t.name, [0, 1, 2, 3], [1.0] * 4, style="bar"),
                Series(s.name, [0, 1, 2, 3], values, style="bar")],
        x_ticks=[(0, "parameters"), (1, "disk"), (2, "time per sentence"), (3, "probe accuracy")],
        meta={"comparison": c.to_dict()},
    )
