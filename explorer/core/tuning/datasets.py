"""Small labelled data sets for the fine-tune lab: CSV / TSV / JSONL in, checked rows and a seeded split out.

Sentence tasks read ``text[, text_pair], label`` columns; token tasks read ``tokens`` + ``tags`` lists (JSONL),
or space-separated strings of equal length (CSV/TSV).
"""

from __future__ import annotations

import csv
import io
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from explorer.core.io.errors import InputError
from explorer.core.io.fileio import read_text_file
from explorer.core.io.limits import MAX_CSV_FIELD, loads_json, size_text

TASKS = ("classify", "pair", "tokens")

# Accepted column names, first match wins (GLUE / SNLI / CoNLL spellings included).
TEXT_COLUMNS = ("text", "sentence", "sentence1", "premise", "question1", "review")
PAIR_COLUMNS = ("text_pair", "text2", "sentence2", "hypothesis", "question2")
LABEL_COLUMNS = ("label", "labels", "class", "category", "sentiment", "gold_label")
TOKEN_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("tags", "ner_tags", "labels", "label")

MIN_ROWS = 6


@dataclass
class Example:
    """One training row: a text (and optional second text) with its label, or tokens with one tag each."""

    text: str = ""
    text_pair: str | None = None
    label: str | None = None
    tokens: list[str] | None = None
    tags: list[str] | None = None
    row: int = 0  # 1-based line / row number in the file, for messages


@dataclass
class TaskData:
    """A checked data set with its label list and a seeded train/validation split."""

    task: str
    labels: list[str]
    train: list[Example]
    val: list[Example]
    path: str = ""
    columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seed: int = 0

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def examples(self) -> list[Example]:
        return self.train + self.val

    def label_counts(self) -> dict[str, int]:
        """How often each label occurs (per row, or per token for tag data)."""
        counts = dict.fromkeys(self.labels, 0)
        for ex in self.examples:
            for lab in ex.tags if self.task == "tokens" else [ex.label]:
                counts[lab] = counts.get(lab, 0) + 1
        return counts

    def majority_baseline(self) -> float:
        """Validation accuracy of always answering the most common training label (the 'chance' line)."""
        train_counts: dict[str, int] = {}
        for ex in self.train:
            for lab in ex.tags if self.task == "tokens" else [ex.label]:
                train_counts[lab] = train_counts.get(lab, 0) + 1
        if not train_counts:
            return 0.0
        top = max(train_counts, key=lambda k: train_counts[k])
        gold = [lab for ex in self.val for lab in (ex.tags if self.task == "tokens" else [ex.label])]
        return sum(g == top for g in gold) / len(gold) if gold else 0.0

    def summary(self) -> dict:
        return {
            "task": self.task,
            "path": self.path,
            "labels": self.labels,
            "train_rows": len(self.train),
            "val_rows": len(self.val),
            "label_counts": self.label_counts(),
            "majority_baseline": round(self.majority_baseline(), 4),
            "notes": self.notes,
        }


# ---------------------------------------------------------------- reading


def read_rows(path: str | os.PathLike) -> tuple[list[str], list[dict]]:
    """Rows of a CSV, TSV or JSONL file as dicts (encoding detected), with the column names found."""
    p = Path(path)
    if not p.exists():  # a folder or a FIFO is explained by read_text_file
        raise InputError(f"No such data file: {p}")
    tf = read_text_file(p)
    text = tf.text.lstrip("\ufeff")
    if not text.strip():
        raise InputError(f"{p.name} is empty.")
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson") or text.lstrip().startswith(("{", "[")):
        return _read_json_rows(p, text)
    if suffix in (".csv", ".tsv", ".txt"):
        delimiter = "\t" if suffix == ".tsv" else ","
        if suffix == ".txt" or (suffix == ".csv" and "\t" in text.splitlines()[0] and "," not in text.splitlines()[0]):
            delimiter = "\t" if "\t" in text.splitlines()[0] else ","
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
        try:
            columns = [c.strip() for c in (reader.fieldnames or []) if c is not None]
            rows = []
            for row in reader:
                rows.append({(k or "").strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k})
        except csv.Error as err:  # a field over the limit, a NUL byte, an unclosed quote at the end
            raise InputError(f"{p.name}, line {reader.line_num}: not usable CSV ({err}; one field may hold at most "
                             f"{size_text(MAX_CSV_FIELD)}).") from None
        if not columns:
            raise InputError(f"{p.name} has no header row. The first line must name the columns (e.g. text,label).")
        return columns, rows
    raise InputError(f"{p.name}: use a .csv, .tsv or .jsonl file (one JSON object per line).")


def _read_json_rows(p: Path, text: str) -> tuple[list[str], list[dict]]:
    stripped = text.strip()
    if stripped.startswith("["):
        items = loads_json(stripped, p.name)
    else:
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            items.append(loads_json(line, f"{p.name}, line {n}"))
    columns: list[str] = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise InputError(f"{p.name}, record {n} is not a JSON object with named fields.")
        for k in item:
            if k not in columns:
                columns.append(k)
    return columns, items


def _pick(columns: list[str], names: tuple[str, ...], exclude: tuple[str, ...] = ()) -> str | None:
    lowered = {c.lower(): c for c in columns}
    for name in names:
        if name in lowered and lowered[name] not in exclude:
            return lowered[name]
    return None


def guess_task(columns: list[str], rows: list[dict]) -> str:
    """tokens when there is a list-of-tokens column, pair when there is a second text, else classify."""
    tok = _pick(columns, TOKEN_COLUMNS)
    if tok is not None:
        return "tokens"
    if _pick(columns, PAIR_COLUMNS) is not None:
        return "pair"
    return "classify"


def _as_list(value, name: str, where: str) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str):
        return value.split()
    raise InputError(f"{where}: '{name}' must be a list (JSONL) or space-separated words (CSV).")


def _label_order(labels: set[str], numeric_tags: bool = False) -> list[str]:
    """Stable label order: 'O' first for tag sets, numbers numerically, otherwise alphabetical."""
    out = sorted(labels, key=lambda s: (0, int(s), "") if s.lstrip("-").isdigit() else (1, 0, s))
    if "O" in out:
        out.remove("O")
        out.insert(0, "O")
    return out


def parse_examples(path: str | os.PathLike, task: str | None = None) -> tuple[str, list[str], list[Example], list[str]]:
    """Read and check a data file: (task, columns, examples, notes). Raises InputError naming the bad row."""
    columns, rows = read_rows(path)
    name = Path(path).name
    task = task or guess_task(columns, rows)
    if task not in TASKS:
        raise InputError(f"Unknown task '{task}'. Choose one of: {', '.join(TASKS)}.")
    found = ", ".join(columns) or "none"
    notes: list[str] = []
    examples: list[Example] = []
    if task == "tokens":
        tok_col = _pick(columns, TOKEN_COLUMNS)
        tag_col = _pick(columns, TAG_COLUMNS, exclude=(tok_col,) if tok_col else ())
        if tok_col is None or tag_col is None:
            raise InputError(
                f"{name}: token classification needs a 'tokens' column and a 'tags' column (found: {found})."
            )
        for n, row in enumerate(rows, 1):
            where = f"{name}, row {n}"
            tokens = _as_list(row.get(tok_col), tok_col, where)
            tags = _as_list(row.get(tag_col), tag_col, where)
            if not tokens:
                raise InputError(f"{where} has no tokens.")
            if len(tokens) != len(tags):
                raise InputError(f"{where} has {len(tokens)} tokens but {len(tags)} tags; give one tag per token.")
            examples.append(Example(text=" ".join(tokens), tokens=tokens, tags=tags, row=n))
        return task, columns, examples, notes
    text_col = _pick(columns, TEXT_COLUMNS)
    label_col = _pick(columns, LABEL_COLUMNS)
    pair_col = _pick(columns, PAIR_COLUMNS) if task == "pair" else None
    if text_col is None and len(columns) >= 2 and label_col is not None:
        text_col = next(c for c in columns if c != label_col)
        notes.append(f"No 'text' column; using '{text_col}' as the text.")
    if text_col is None or label_col is None:
        raise InputError(f"{name}: needs a 'text' column and a 'label' column (found: {found}).")
    if task == "pair" and pair_col is None:
        raise InputError(
            f"{name}: a sentence-pair task needs a second text column 'text_pair' (or sentence2 / hypothesis); "
            f"found: {found}."
        )
    skipped = 0
    for n, row in enumerate(rows, 1):
        where = f"{name}, row {n}"
        text = row.get(text_col)
        label = row.get(label_col)
        text = "" if text is None else str(text).strip()
        label = "" if label is None else str(label).strip()
        if not text and not label:
            skipped += 1
            continue
        if not text:
            raise InputError(f"{where} has an empty '{text_col}'.")
        if not label:
            raise InputError(f"{where} has no label in '{label_col}'.")
        pair = None
        if pair_col is not None:
            pair = str(row.get(pair_col) or "").strip()
            if not pair:
                raise InputError(f"{where} has an empty '{pair_col}'.")
        examples.append(Example(text=text, text_pair=pair, label=label, row=n))
    if skipped:
        notes.append(f"Skipped {skipped} empty row(s).")
    return task, columns, examples, notes


def split_examples(examples: list[Example], task: str, val_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Seeded split; sentence tasks are stratified so every label appears in both parts."""
    if not 0.0 < val_fraction < 1.0:
        raise InputError(f"The validation fraction must be between 0 and 1 (got {val_fraction}).")
    rng = random.Random(seed)
    if task == "tokens":
        order = list(examples)
        rng.shuffle(order)
        n_val = max(1, round(len(order) * val_fraction))
        return order[n_val:], order[:n_val]
    by_label: dict[str, list[Example]] = {}
    for ex in examples:
        by_label.setdefault(ex.label or "", []).append(ex)
    train, val = [], []
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        n_val = round(len(group) * val_fraction)
        if len(group) >= 2:
            n_val = min(max(1, n_val), len(group) - 1)
        val += group[:n_val]
        train += group[n_val:]
    rng.shuffle(train)
    rng.shuffle(val)
    return train, val


def load_task_data(
    path: str | os.PathLike,
    task: str | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_rows: int | None = None,
) -> TaskData:
    """Read, check and split a data file for fine-tuning."""
    task, columns, examples, notes = parse_examples(path, task)
    if max_rows is not None and len(examples) > max_rows:
        examples = random.Random(seed).sample(examples, max_rows)
        examples.sort(key=lambda e: e.row)
        notes.append(f"Using {max_rows} of the rows (seeded sample).")
    if len(examples) < MIN_ROWS:
        raise InputError(
            f"{Path(path).name} has {len(examples)} usable row(s); fine-tuning needs at least {MIN_ROWS}."
        )
    if task == "tokens":
        labels = _label_order({t for ex in examples for t in ex.tags or []})
    else:
        labels = _label_order({ex.label or "" for ex in examples})
    if len(labels) < 2:
        raise InputError(
            f"{Path(path).name}: every row has the label '{labels[0]}'. A classifier needs at least two labels."
        )
    train, val = split_examples(examples, task, val_fraction, seed)
    return TaskData(
        task=task, labels=labels, train=train, val=val, path=str(path), columns=columns, notes=notes, seed=seed
    )


def preview(path: str | os.PathLike, task: str | None = None, n: int = 10) -> dict:
    """The first rows as the app will read them, with the task guessed and the labels found."""
    task, columns, examples, notes = parse_examples(path, task)
    rows = []
    for ex in examples[:n]:
        if task == "tokens":
            rows.append({"tokens": " ".join(ex.tokens or []), "tags": " ".join(ex.tags or [])})
        elif task == "pair":
            rows.append({"text": ex.text, "text_pair": ex.text_pair, "label": ex.label})
        else:
            rows.append({"text": ex.text, "label": ex.label})
    if task == "tokens":
        labels = _label_order({t for ex in examples for t in ex.tags or []})
    else:
        labels = _label_order({ex.label or "" for ex in examples})
    return {"task": task, "columns": columns, "rows": rows, "total_rows": len(examples), "labels": labels, "notes": notes}
