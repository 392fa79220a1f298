"""What each task head returns (a class, a label per token, a span, filled masks, a sequence): plain data
the Heads panel draws and the CLI prints as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class ClassResult:
    """Sequence classification: the winning label and a probability per label (from id2label)."""

    task: str
    text: str
    text_pair: str | None
    label: str
    scores: dict[str, float]
    problem_type: str = "single_label_classification"
    truncated: bool = False
    model_name: str = ""
    reads: str = ""  # what the head reads of the text, in words (probe.sentence_reading)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TokenLabel:
    """One token of the input with its predicted label and probability."""

    token: str
    start: int
    end: int
    label: str
    score: float
    word: int | None = None  # word index from the tokenizer's word_ids()


@dataclass
class Entity:
    """Tokens of one labelled span grouped into a word or phrase (B-/I- tags merged)."""

    text: str
    label: str
    start: int
    end: int
    score: float


@dataclass
class TokenResult:
    """Token classification: a label per token and the entities they group into."""

    text: str
    labels: list[str]
    tokens: list[TokenLabel]
    entities: list[Entity]
    truncated: bool = False
    model_name: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Span:
    """A candidate answer: the context span from start token to end token and its score P(start)·P(end)."""

    text: str
    start: int  # character offsets in the context
    end: int
    start_token: int  # index into QAResult.tokens
    end_token: int
    score: float


@dataclass
class QAResult:
    """Extractive QA over the context tokens: start/end probabilities, span scores and the best spans."""

    question: str
    context: str
    tokens: list[str]  # context tokens only
    offsets: list[tuple[int, int]]  # character spans of the context tokens in the context
    start_probs: np.ndarray  # [context_token]
    end_probs: np.ndarray  # [context_token]
    span_scores: np.ndarray  # [start_token, end_token], zero outside 0 <= end - start < max_answer_len
    spans: list[Span]
    max_answer_len: int
    truncated: bool = False
    model_name: str = ""

    @property
    def answer(self) -> str:
        return self.spans[0].text if self.spans else ""

    def to_dict(self, matrix: bool = False) -> dict:
        out = {
            "question": self.question,
            "context": self.context,
            "answer": self.answer,
            "score": self.spans[0].score if self.spans else 0.0,
            "spans": [asdict(s) for s in self.spans],
            "tokens": self.tokens,
            "offsets": [list(o) for o in self.offsets],
            "start_probs": [round(float(p), 6) for p in self.start_probs],
            "end_probs": [round(float(p), 6) for p in self.end_probs],
            "max_answer_len": self.max_answer_len,
            "truncated": self.truncated,
        }
        if matrix:
            out["span_scores"] = self.span_scores.tolist()
        return out


@dataclass
class MaskFill:
    """Candidates for one masked position."""

    position: int  # token index in the input
    candidates: list[tuple[str, float]]  # (token text, probability), best first


@dataclass
class FillMaskResult:
    """Every mask filled in one forward pass."""

    text: str
    filled: str
    masks: list[MaskFill]
    tokens: list[str] = field(default_factory=list)
    truncated: bool = False
    model_name: str = ""

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "filled": self.filled,
            "masks": [{"position": m.position, "candidates": [{"token": t, "score": p} for t, p in m.candidates]}
                      for m in self.masks],
            "truncated": self.truncated,
        }


@dataclass
class GenerationResult:
    """A sequence out: a causal LM continues the prompt, a seq2seq model writes a new sequence."""

    prompt: str
    text: str  # the generated part only
    kind: str  # "causal-lm" | "seq2seq-lm"
    new_tokens: int
    settings: dict = field(default_factory=dict)
    stopped: str = "length"  # "length" | "eos"
    model_name: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


HeadResult = ClassResult | TokenResult | QAResult | FillMaskResult | GenerationResult
