"""What a fine-tune reports: each mode's cost, each epoch, the live updates the charts draw, and the result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass
class ModeCost:
    """What one mode trains and what must be stored per task, before training."""

    mode: str
    trainable_parameters: int
    total_parameters: int
    stored_parameters: int
    stored_bytes: int  # the stored parameters as float32 (the folder adds a manifest / config: see the result)
    note: str = ""

    @property
    def trainable_fraction(self) -> float:
        return self.trainable_parameters / self.total_parameters if self.total_parameters else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "trainable_fraction": self.trainable_fraction}


@dataclass
class EpochReport:
    """One finished epoch (frozen: one round of L-BFGS iterations): mean training loss and validation accuracy."""

    epoch: int
    loss: float
    val_accuracy: float
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainUpdate:
    """What the ``partial`` callback receives after every batch (live loss chart)."""

    epoch: int  # 1-based
    step: int  # 1-based within the epoch
    steps: int
    batch_loss: float
    history: list[EpochReport]
    initial_val_accuracy: float
    epoch_done: bool = False
    mode: str = ""

    @property
    def x(self) -> float:
        """Position on an epoch axis: epoch 1 runs from 0 to 1."""
        return self.epoch - 1 + self.step / max(1, self.steps)


@dataclass
class FinetuneResult:
    """A finished fine-tune: figures, per-epoch history and where the model was saved."""

    model: str
    task: str
    mode: str
    labels: list[str]
    trainable_parameters: int
    total_parameters: int
    weight_bytes: int  # stored parameters x 4 (the table before training)
    history: list[EpochReport]
    val_accuracy: float
    initial_val_accuracy: float
    majority_baseline: float
    train_rows: int
    val_rows: int
    epochs: int
    learning_rate: float | None
    seed: int
    seconds: float
    stopping_rule: str = ""
    converged: bool | None = None
    pooling: str | None = None
    pooling_source: str = ""
    out_dir: str | None = None
    stored_bytes: int = 0  # bytes actually written to out_dir (every file the run wrote)
    files: list[str] = field(default_factory=list)
    costs: list[ModeCost] = field(default_factory=list)
    batch_losses: list[tuple[float, float]] = field(default_factory=list)  # (epoch position, loss)
    notes: list[str] = field(default_factory=list)
    metric: str = "validation accuracy"  # what val_accuracy measures (extractive QA: SQuAD F1)
    scores: dict[str, float] = field(default_factory=dict)  # further validation figures (QA: exact_match, f1)

    @property
    def saved_bytes(self) -> int:
        return self.stored_bytes

    @classmethod
    def from_dict(cls, d: dict) -> FinetuneResult:
        """A result as :meth:`to_dict` wrote it, with ``batch_losses`` when saved too (the session keeps the lab's
        last run, so its figures and curves come back after a restart). KeyError/TypeError/ValueError if it is
        not one."""
        costs = [ModeCost(**{k: v for k, v in c.items() if k != "trainable_fraction"})
                 for c in (d.get("costs") or {}).values()]
        history = [EpochReport(int(h["epoch"]), float(h["loss"]), float(h["val_accuracy"]), float(h.get("seconds", 0)))
                   for h in d.get("history", [])]
        plain = {f.name for f in fields(cls)} - {"costs", "history", "batch_losses"}
        return cls(**{k: d[k] for k in plain if k in d}, costs=costs, history=history,
                   batch_losses=[(float(x), float(y)) for x, y in d.get("batch_losses", [])])

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "task": self.task,
            "mode": self.mode,
            "labels": self.labels,
            "trainable_parameters": self.trainable_parameters,
            "total_parameters": self.total_parameters,
            "weight_bytes": self.weight_bytes,
            "stored_bytes": self.stored_bytes,
            "files": self.files,
            "history": [{"epoch": h.epoch, "loss": h.loss, "val_accuracy": h.val_accuracy} for h in self.history],
            "val_accuracy": self.val_accuracy,
            "initial_val_accuracy": self.initial_val_accuracy,
            "majority_baseline": self.majority_baseline,
            "train_rows": self.train_rows,
            "val_rows": self.val_rows,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "stopping_rule": self.stopping_rule,
            "converged": self.converged,
            "pooling": self.pooling,
            "pooling_source": self.pooling_source,
            "seed": self.seed,
            "seconds": round(self.seconds, 2),
            "out_dir": self.out_dir,
            "costs": {c.mode: c.to_dict() for c in self.costs},
            "notes": self.notes,
            "metric": self.metric,
            "scores": self.scores,
        }
