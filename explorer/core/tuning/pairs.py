"""Input → output pairs for the seq2seq fine-tunes (JSONL or CSV/TSV, seeded split) and their scores: exact
match and corpus chrF (sacrebleu's defaults)."""

from __future__ import annotations

import csv
import io
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from explorer.core.io.errors import InputError
from explorer.core.io.limits import MAX_LINE_CHARS, check_regular_file, loads_json

INPUT_COLUMNS = ("input", "source", "src", "text", "question")
OUTPUT_COLUMNS = ("output", "target", "tgt", "summary", "answer", "label")
MIN_ROWS = 6


@dataclass
class Pair:
    source: str
    target: str
    row: int = 0


@dataclass
class PairData:
    """Input → output pairs with a seeded train / held-out split."""

    train: list[Pair]
    val: list[Pair]
    path: str = ""
    notes: list[str] = field(default_factory=list)
    seed: int = 0
    task: str = "seq2seq"

    def summary(self) -> dict:
        return {"task": "seq2seq", "path": self.path, "train_rows": len(self.train), "val_rows": len(self.val),
                "notes": self.notes}


def _pick(row: dict, names: tuple[str, ...]) -> str | None:
    lowered = {str(k).lower(): k for k in row}
    for n in names:
        if n in lowered and row[lowered[n]] is not None:
            return str(row[lowered[n]])
    return None


def read_pairs(path: str | os.PathLike) -> list[Pair]:
    """Pairs from a JSONL (``input`` / ``output``, or source/target) or a CSV/TSV with those columns."""
    from explorer.core.io.fileio import read_text_file

    p = Path(path)
    if not p.exists():
        raise InputError(f"No such data file: {p}")
    text = read_text_file(p).text.lstrip("\ufeff")
    if not text.strip():
        raise InputError(f"{p.name} is empty.")
    rows: list[dict] = []
    if p.suffix.lower() in (".jsonl", ".json", ".ndjson") or text.lstrip().startswith("{"):
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                item = loads_json(line, f"{p.name}, line {n}")  # depth and NaN limits, one-line errors
                if not isinstance(item, dict):
                    raise InputError(f"{p.name}, line {n} is not a JSON object with named fields.")
                rows.append(item)
    else:
        rows = list(csv.DictReader(io.StringIO(text), delimiter="\t" if p.suffix.lower() == ".tsv" else ","))
    pairs = []
    for n, row in enumerate(rows, 1):
        src, tgt = _pick(row, INPUT_COLUMNS), _pick(row, OUTPUT_COLUMNS)
        if not src or not src.strip() or not tgt or not tgt.strip():
            raise InputError(f"{p.name}, row {n}: a seq2seq pair needs an 'input' and an 'output' (found: "
                             f"{', '.join(map(str, row)) or 'nothing'}).")
        pairs.append(Pair(src.strip(), tgt.strip(), n))
    return pairs


def load_pairs(path: str | os.PathLike, val_fraction: float = 0.2, seed: int = 0) -> PairData:
    """Read and split a pairs file (seeded)."""
    if not 0.0 < val_fraction < 1.0:
        raise InputError(f"The validation fraction must be between 0 and 1 (got {val_fraction}).")
    pairs = read_pairs(path)
    if len(pairs) < MIN_ROWS:
        raise InputError(f"{Path(path).name} has {len(pairs)} pair(s); fine-tuning needs at least {MIN_ROWS}.")
    order = list(pairs)
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(order) * val_fraction))
    return PairData(train=order[n_val:], val=order[:n_val], path=str(path), seed=seed)


def looks_like_pairs(path: str | os.PathLike) -> bool:
    """True when the file's first record has an input and an output column (and no QA context)."""
    p = Path(path)
    try:
        check_regular_file(p)  # a named pipe would block this peek; the data loader says what it is
        with open(p, encoding="utf-8", errors="replace") as fh:
            first = fh.readline(MAX_LINE_CHARS)
    except (OSError, InputError):
        return False
    try:
        item = json.loads(first)
    except (ValueError, RecursionError):
        cols = [c.strip().lower() for c in first.split("\t" if p.suffix.lower() == ".tsv" else ",")]
        item = dict.fromkeys(cols, "")
    if not isinstance(item, dict):
        return False
    keys = {str(k).lower() for k in item}
    return bool(keys & {"input", "source", "src"}) and bool(keys & {"output", "target", "tgt", "summary"})


# ---------------------------------------------------------------- scores


def chrf(predictions: list[str], references: list[str]) -> float:
    """Corpus chrF (sacrebleu's defaults: character 6-grams, β = 2, spaces ignored), as a fraction."""
    import sacrebleu

    if not predictions:
        return 0.0
    return float(sacrebleu.corpus_chrf(predictions, [references]).score) / 100.0


def score(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Exact match (after trimming outer whitespace) and corpus chrF, both as fractions."""
    if len(predictions) != len(references):
        raise InputError(f"{len(predictions)} predictions for {len(references)} references.")
    n = len(predictions)
    em = sum(p.strip() == r.strip() for p, r in zip(predictions, references, strict=True)) / n if n else 0.0
    return {"exact_match": em, "chrf": chrf(predictions, references), "n": n}
