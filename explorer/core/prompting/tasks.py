"""Labelled tasks for prompting: the built-in ones the lecture names (two-digit arithmetic, sentiment, NLI,
closed-book QA) and any CSV / JSONL file a user drops in, validated with messages that point at the bad line.

A task with a small fixed label set is scored by label-word log-probability (``mode="score"``); open answers
(arithmetic, QA) are generated greedily and compared by exact match (``mode="generate"``), as GPT-3 did.
"""

from __future__ import annotations

import csv
import io
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from explorer.core.io import paths
from explorer.core.io.errors import InputError
from explorer.core.io.limits import loads_json
from explorer.core.prompting.prompts import OUTPUT_FIELD, Example, PromptTemplate

MODES = ("score", "generate")
OUTPUT_COLUMNS = ("output", "label", "answer", "target", "completion")
MAX_SCORE_LABELS = 10


@dataclass
class Task:
    """Items, how to write them (template), and how answers are judged (label scoring or generation)."""

    name: str
    title: str
    template: PromptTemplate
    items: list[Example]
    mode: str = "generate"
    labels: list[str] = field(default_factory=list)  # the options scored in "score" mode
    max_new_tokens: int = 8
    stop: list[str] = field(default_factory=lambda: ["\n"])
    source: str = "built-in"
    note: str = ""

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "mode": self.mode,
            "labels": self.labels,
            "n_items": len(self.items),
            "template": self.template.template,
            "description": self.template.description,
            "source": self.source,
        }


BUILTIN = ("addition", "subtraction", "sentiment", "nli", "qa")


def arithmetic_items(op: str, n: int = 200, seed: int = 0) -> list[Example]:
    """``n`` distinct two-digit problems (10..99 each side, GPT-3's '2D+' / '2D-'; differences may be negative)."""
    rng = random.Random(f"{op}-{seed}")
    seen: set[tuple[int, int]] = set()
    items: list[Example] = []
    while len(items) < n:
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        if (a, b) in seen:
            continue
        seen.add((a, b))
        value = a + b if op == "plus" else a - b
        items.append(Example({"a": str(a), "b": str(b)}, str(value)))
    return items


def _read_builtin(name: str) -> list[Example]:
    path = paths.resources_dir() / "tasks" / f"{name}.jsonl"
    if not path.is_file():
        raise InputError(f"The built-in task file {path} is missing; reinstall the app.")
    return parse_jsonl(path.read_text(encoding="utf-8"), path.name)[0]


def builtin_task(name: str, seed: int = 0, n: int = 200) -> Task:
    """One of :data:`BUILTIN`; arithmetic items are generated from ``seed``."""
    if name in ("addition", "subtraction"):
        op = "plus" if name == "addition" else "minus"
        return Task(
            name, f"Two-digit {name}",
            PromptTemplate("", f"Q: What is {{a}} {op} {{b}}?\nA: {{output}}"),
            arithmetic_items(op, n, seed), "generate", max_new_tokens=5,
            note="Exact match of the generated number (greedy), as in GPT-3's arithmetic tests."
            if name == "addition" else
            "Exact match of the generated number (greedy); answers may be negative, as in GPT-3's 2D-.",
        )
    if name == "sentiment":
        return Task(
            "sentiment", "Sentiment of short reviews",
            PromptTemplate("Is each review positive or negative?", "Review: {text}\nSentiment: {output}"),
            _read_builtin("sentiment"), "score", labels=["positive", "negative"],
            note="Label words scored by log-probability after the prompt.",
        )
    if name == "nli":
        return Task(
            "nli", "Natural language inference (premise / hypothesis)",
            PromptTemplate("", "{premise}\nQuestion: {hypothesis} True, False, or Neither?\nAnswer: {output}"),
            _read_builtin("nli"), "score", labels=["true", "false", "neither"],
            note="GPT-3's ANLI/RTE format; the lecture notes GPT-3 is weak here (near chance is expected).",
        )
    if name == "qa":
        return Task(
            "qa", "Closed-book questions",
            PromptTemplate("", "Q: {question}\nA: {output}"),
            _read_builtin("qa"), "generate", max_new_tokens=10,
            note="No passage is given: the answer must come from what the model learned. Exact match after normalisation.",
        )
    raise InputError(f"Unknown task '{name}'. Built-in tasks: {', '.join(BUILTIN)}; or give a CSV/JSONL file.")


def load_task(spec: str, seed: int = 0) -> Task:
    """A built-in task by name, or a user's CSV/JSONL file by path."""
    if spec in BUILTIN:
        return builtin_task(spec, seed)
    path = Path(spec)
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json") or path.exists():
        return load_task_file(path)
    raise InputError(f"Unknown task '{spec}'. Built-in tasks: {', '.join(BUILTIN)}; or give a CSV/JSONL file.")


# ---------------------------------------------------------------- user files


def _identifier(name: str) -> str:
    ident = re.sub(r"\W+", "_", name.strip().lower()).strip("_")
    return ident if ident and not ident[0].isdigit() else f"f_{ident}"


def _rows_to_examples(rows: list[dict], where: str, line_numbers: list[int]) -> tuple[list[Example], str]:
    """Validate rows (dicts of column -> value) and turn them into examples; returns (examples, output column)."""
    if not rows:
        raise InputError(f"{where} has no rows.")
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lowered = {c.lower().strip(): c for c in columns}
    out_col = next((lowered[c] for c in OUTPUT_COLUMNS if c in lowered), None)
    if out_col is None:
        if len(columns) < 2:
            raise InputError(
                f"{where} needs an input column and an output column (named one of: {', '.join(OUTPUT_COLUMNS)})."
            )
        out_col = columns[-1]
    answers_col = lowered.get("answers")
    inputs = [c for c in columns if c not in (out_col, answers_col)]
    if not inputs:
        raise InputError(f"{where} has only the output column '{out_col}'; add at least one input column.")
    idents = [_identifier(c) for c in inputs]
    if len(set(idents)) != len(idents):
        raise InputError(f"{where}: two input columns have the same name after simplifying: {', '.join(inputs)}.")
    examples = []
    for row, line in zip(rows, line_numbers, strict=True):
        missing = [c for c in columns if c not in row and c != answers_col]
        if missing:
            raise InputError(f"{where}, line {line}: the column '{missing[0]}' is missing.")
        output = row.get(out_col)
        output = "" if output is None else str(output).strip()
        if not output:
            raise InputError(f"{where}, line {line}: the output ('{out_col}') is empty.")
        values = {ident: "" if row.get(c) is None else str(row.get(c)).strip() for ident, c in zip(idents, inputs, strict=True)}
        if not any(values.values()):
            raise InputError(f"{where}, line {line}: every input column is empty.")
        answers: list[str] = []
        if answers_col is not None and row.get(answers_col):
            raw = row[answers_col]
            answers = [str(a).strip() for a in (raw if isinstance(raw, list) else str(raw).split("|")) if str(a).strip()]
        examples.append(Example(values, output, answers))
    return examples, out_col


def parse_jsonl(text: str, name: str = "file") -> tuple[list[Example], str]:
    """JSON Lines (one object per line) or a JSON list of objects."""
    stripped = text.lstrip("\ufeff").strip()
    if not stripped:
        raise InputError(f"{name} is empty.")
    rows: list[dict] = []
    lines: list[int] = []
    if stripped.startswith("["):
        data = loads_json(stripped, name)
        for i, obj in enumerate(data, 1):
            if not isinstance(obj, dict):
                raise InputError(f"{name}: item {i} is not an object with named fields.")
            rows.append(obj)
            lines.append(i)
    else:
        for i, line in enumerate(stripped.splitlines(), 1):
            if not line.strip():
                continue
            obj = loads_json(line, f"{name}, line {i}")
            if not isinstance(obj, dict):
                raise InputError(f"{name}, line {i}: expected an object like {{\"text\": ..., \"label\": ...}}.")
            rows.append(obj)
            lines.append(i)
    keys = list(rows[0].keys()) if rows else []
    for obj, line in zip(rows, lines, strict=True):
        extra = [k for k in obj if k not in keys and k.lower() != "answers"]
        if extra:
            raise InputError(
                f"{name}, line {line}: the field '{extra[0]}' is not among the first line's fields ({', '.join(keys)})."
            )
    return _rows_to_examples(rows, name, lines)


def parse_csv(text: str, name: str = "file") -> tuple[list[Example], str]:
    """CSV or TSV with a header row (delimiter detected)."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise InputError(f"{name} is empty.")
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel_tab if "\t" in sample.splitlines()[0] else csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        table = [r for r in reader]
    except csv.Error as err:
        raise InputError(f"{name} is not valid CSV ({err}).") from err
    header = [h.strip() for h in table[0]]
    if len(header) < 2 or any(not h for h in header):
        raise InputError(f"{name}: the first row must name every column, e.g. 'text,label'.")
    rows, lines = [], []
    for i, r in enumerate(table[1:], 2):
        if not any(c.strip() for c in r):
            continue
        if len(r) != len(header):
            raise InputError(f"{name}, line {i}: {len(r)} values but the header has {len(header)} columns.")
        rows.append(dict(zip(header, r, strict=True)))
        lines.append(i)
    return _rows_to_examples(rows, name, lines)


def _is_identifier(field: str) -> bool:
    name = field.strip().lower()
    return name in ("id", "uid", "guid") or name.endswith(("_id", "-id"))


def task_from_examples(
    name: str, examples: list[Example], output_name: str = "Answer", source: str = "user"
) -> Task:
    """A task around examples: a 'Field: value' template, and label scoring when the outputs are a small set."""
    if not examples:
        raise InputError(f"{name} has no examples.")
    fields_ = list(examples[0].fields)
    # a row's identifier ("id", "context_id") tells the model nothing and would be copied into every prompt
    shown = [f for f in fields_ if not _is_identifier(f)] or fields_
    template = "\n".join(f"{f.replace('_', ' ').capitalize()}: {{{f}}}" for f in shown)
    template += f"\n{output_name.strip().capitalize() or 'Answer'}: {{{OUTPUT_FIELD}}}"
    outputs = [e.output for e in examples]
    labels = list(dict.fromkeys(outputs))
    is_labels = len(labels) <= MAX_SCORE_LABELS and len(labels) <= max(2, len(examples) // 2)
    longest = max(len(o) for o in outputs)
    return Task(
        name, name, PromptTemplate("", template), examples,
        "score" if is_labels else "generate",
        labels=labels if is_labels else [],
        max_new_tokens=max(8, min(64, longest // 2 + 4)),
        source=source,
        note="Scored by label words." if is_labels else "Answers generated and compared by exact match.",
    )


def load_task_file(path: str | Path) -> Task:
    """A user's labelled CSV/TSV/JSONL/JSON file as a task (encoding detected, every row checked)."""
    from explorer.core.io.fileio import read_text_file

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} does not exist.")
    tf = read_text_file(p)
    if p.suffix.lower() in (".jsonl", ".json"):
        examples, out_col = parse_jsonl(tf.text, p.name)
    else:
        examples, out_col = parse_csv(tf.text, p.name)
    task = task_from_examples(p.stem, examples, out_col if out_col.lower() != OUTPUT_FIELD else "Answer", str(p))
    if tf.note:
        task.note = f"{tf.note} {task.note}"
    return task
