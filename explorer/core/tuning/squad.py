"""SQuAD-style extractive QA data (question, context, answers found in the context) and its scores.

Scores follow the official SQuAD v1.1 evaluation: an answer is normalised (lower case, punctuation and the
articles a / an / the removed, whitespace collapsed); exact match is 1 when the normalised prediction equals a
normalised gold answer; F1 is the bag-of-tokens overlap; each question takes its best gold answer, and the set's
figures are means over questions.
"""

from __future__ import annotations

import json
import os
import random
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from explorer.core.io.errors import InputError
from explorer.core.io.limits import check_regular_file, loads_json

QUESTION_COLUMNS = ("question", "query")
CONTEXT_COLUMNS = ("context", "passage", "paragraph")
MIN_ROWS = 6
_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


# ---------------------------------------------------------------- scoring


def normalize_answer(text: str) -> str:
    """SQuAD v1.1's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    """Token-overlap F1 of the normalised answers (0 when they share no token)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(metric, prediction: str, golds: list[str]) -> float:  # noqa: ANN001
    return max(metric(prediction, g) for g in golds)


def score(predictions: list[str], golds: list[list[str]]) -> dict[str, float]:
    """Mean exact match and F1 over questions, as fractions (the official script prints them × 100)."""
    if len(predictions) != len(golds):
        raise InputError(f"{len(predictions)} predictions for {len(golds)} questions.")
    if not predictions:
        return {"exact_match": 0.0, "f1": 0.0, "n": 0}
    em = sum(best_over_golds(exact_match, p, g) for p, g in zip(predictions, golds, strict=True))
    f = sum(best_over_golds(f1, p, g) for p, g in zip(predictions, golds, strict=True))
    n = len(predictions)
    return {"exact_match": em / n, "f1": f / n, "n": n}


# ---------------------------------------------------------------- data


@dataclass
class QAExample:
    """One question on a context, with its gold answers and their character offsets in the context."""

    question: str
    context: str
    answers: list[str]
    starts: list[int]
    id: str = ""
    row: int = 0  # 1-based record number in the file, for messages
    group: str = ""  # questions on one context share a group; a split keeps a group together


@dataclass
class QAData:
    """A checked QA set and its seeded train / validation split (by context: no validation context is trained on)."""

    train: list[QAExample]
    val: list[QAExample]
    path: str = ""
    notes: list[str] = field(default_factory=list)
    seed: int = 0
    task: str = "qa"
    labels: list[str] = field(default_factory=lambda: ["start", "end"])

    @property
    def examples(self) -> list[QAExample]:
        return self.train + self.val

    def majority_baseline(self) -> float:
        """No 'most common class' for spans: the chart's chance line is zero."""
        return 0.0

    def summary(self) -> dict:
        return {"task": "qa", "path": self.path, "train_rows": len(self.train), "val_rows": len(self.val),
                "train_contexts": len({e.group for e in self.train}), "val_contexts": len({e.group for e in self.val}),
                "notes": self.notes}


def _records(path: Path) -> list[dict]:
    from explorer.core.io.fileio import read_text_file

    if not path.exists():
        raise InputError(f"No such data file: {path}")
    text = read_text_file(path).text.lstrip("\ufeff")
    if not text.strip():
        raise InputError(f"{path.name} is empty.")
    stripped = text.strip()
    if stripped.startswith("{") and '"data"' in stripped[:200] and "\n{" not in stripped:
        whole = loads_json(stripped, path.name)
        return _flatten_squad(whole, path.name)
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = loads_json(line, f"{path.name}, line {n}")
        except InputError as err:
            raise InputError(f"{str(err).rstrip('.')}. QA data is JSONL: one "
                             "{\"question\", \"context\", \"answers\"} object per line.") from None
        if not isinstance(item, dict):
            raise InputError(f"{path.name}, line {n} is not a JSON object with named fields.")
        item.setdefault("_row", n)
        out.append(item)
    return out


def _flatten_squad(whole: object, name: str) -> list[dict]:
    """The official SQuAD JSON ({"data": [{"paragraphs": [{"context", "qas"}]}]}) as one record per question."""
    out = []
    try:
        for article in whole["data"]:  # type: ignore[index]
            for p, para in enumerate(article["paragraphs"]):
                for qa in para["qas"]:
                    out.append({"id": qa.get("id", ""), "question": qa["question"], "context": para["context"],
                                "answers": qa.get("answers", []), "context_id": f"{article.get('title', '')}-{p}",
                                "_row": len(out) + 1})
    except (KeyError, TypeError) as err:
        raise InputError(f"{name} is not SQuAD JSON (data → paragraphs → context, qas): missing {err}.") from err
    return out


def _field(item: dict, names: tuple[str, ...]) -> str | None:
    lowered = {str(k).lower(): k for k in item}
    for n in names:
        if n in lowered:
            v = item[lowered[n]]
            return None if v is None else str(v)
    return None


def _answers(item: dict, context: str, where: str) -> tuple[list[str], list[int]]:
    """Gold answers and their offsets from ``answers`` (SQuAD dict or list) or ``answer`` (+ ``answer_start``);
    an answer without an offset is looked up in the context."""
    raw = item.get("answers")
    texts: list[str] = []
    starts: list[int | None] = []
    if isinstance(raw, dict):
        texts = [str(t) for t in raw.get("text") or []]
        got = raw.get("answer_start") or []
        starts = [int(s) for s in got] if len(got) == len(texts) else [None] * len(texts)
    elif isinstance(raw, list):
        for a in raw:
            if isinstance(a, dict):
                texts.append(str(a.get("text", "")))
                s = a.get("answer_start")
                starts.append(int(s) if isinstance(s, (int, float)) else None)
            else:
                texts.append(str(a))
                starts.append(None)
    elif "answer" in item:
        texts = [str(item["answer"])]
        s = item.get("answer_start")
        starts = [int(s) if isinstance(s, (int, float)) else None]
    if not texts or not all(t.strip() for t in texts):
        raise InputError(f"{where} has no answer: give 'answers' (SQuAD style) or 'answer' (text found in the context).")
    out = []
    for t, s in zip(texts, starts, strict=True):
        if s is None:
            s = context.find(t)
            if s < 0:
                raise InputError(f"{where}: the answer {t!r} is not in the context (extractive QA copies its answer "
                                 "from the context).")
        elif context[s:s + len(t)] != t:
            raise InputError(f"{where}: the context at answer_start {s} reads {context[s:s + len(t)]!r}, not the "
                             f"answer {t!r}.")
        out.append(s)
    return texts, out


def read_examples(path: str | os.PathLike) -> tuple[list[QAExample], list[str]]:
    """Read and check a QA file (JSONL, or the official SQuAD JSON): (examples, notes)."""
    p = Path(path)
    items = _records(p)
    examples, notes = [], []
    for n, item in enumerate(items, 1):
        where = f"{p.name}, record {item.get('_row', n)}"
        question = _field(item, QUESTION_COLUMNS)
        context = _field(item, CONTEXT_COLUMNS)
        if not question or not question.strip():
            raise InputError(f"{where} has no 'question'.")
        if not context or not context.strip():
            raise InputError(f"{where} has no 'context'.")
        texts, starts = _answers(item, context, where)
        group = str(item.get("context_id") or context)
        examples.append(QAExample(question.strip(), context, texts, starts, str(item.get("id", n)), n, group))
    return examples, notes


def split_examples(examples: list[QAExample], val_fraction: float, seed: int) -> tuple[list[QAExample], list[QAExample]]:
    """Seeded split by context: every question on a context lands on the same side."""
    if not 0.0 < val_fraction < 1.0:
        raise InputError(f"The validation fraction must be between 0 and 1 (got {val_fraction}).")
    groups = list(dict.fromkeys(e.group for e in examples))
    random.Random(seed).shuffle(groups)
    if len(groups) >= 2:
        n_val = min(max(1, round(len(groups) * val_fraction)), len(groups) - 1)
        val_groups = set(groups[:n_val])
        return [e for e in examples if e.group not in val_groups], [e for e in examples if e.group in val_groups]
    order = list(examples)  # one context only: split its questions
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(order) * val_fraction))
    return order[n_val:], order[:n_val]


def load_qa_data(path: str | os.PathLike, val_fraction: float = 0.2, seed: int = 0,
                 max_rows: int | None = None) -> QAData:
    """Read, check and split a QA file for fine-tuning."""
    examples, notes = read_examples(path)
    if max_rows is not None and len(examples) > max_rows:
        examples = sorted(random.Random(seed).sample(examples, max_rows), key=lambda e: e.row)
        notes.append(f"Using {max_rows} of the questions (seeded sample).")
    if len(examples) < MIN_ROWS:
        raise InputError(f"{Path(path).name} has {len(examples)} question(s); fine-tuning needs at least {MIN_ROWS}.")
    train, val = split_examples(examples, val_fraction, seed)
    return QAData(train=train, val=val, path=str(path), notes=notes, seed=seed)


def looks_like_qa(path: str | os.PathLike) -> bool:
    """True when the file's first record has a question and a context (the lab and the CLI pick the task)."""
    p = Path(path)
    if p.suffix.lower() not in (".jsonl", ".json", ".ndjson"):
        return False
    try:
        check_regular_file(p)  # a named pipe would block this peek; the data loader says what it is
        with open(p, encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except (OSError, InputError):
        return False
    if '"data"' in head[:200] and '"paragraphs"' in head:
        return True
    first = head.split("\n", 1)[0]
    try:
        item = json.loads(first)
    except (ValueError, RecursionError):  # a first line nested thousands deep is no QA record
        return False
    return isinstance(item, dict) and _field(item, QUESTION_COLUMNS) is not None and \
        _field(item, CONTEXT_COLUMNS) is not None
