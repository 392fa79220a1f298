"""GPT-3 style prompts: a task description, K demonstrations joined by a separator (a newline), then the query.

A template such as ``"Q: {question}\\nA: {output}"`` formats every demonstration; the query is the same template
cut just before ``{output}`` (trailing spaces removed), so the model continues with the answer — the label word,
not a label id. With a chat template the same pieces become system / user / assistant turns instead.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Any

from explorer.core.io.errors import InputError

OUTPUT_FIELD = "output"
DEFAULT_TEMPLATE = "Q: {input}\nA: {output}"


@dataclass
class Example:
    """One labelled item: named input fields, the expected output, and other accepted answers."""

    fields: dict[str, str]
    output: str = ""
    answers: list[str] = field(default_factory=list)  # extra accepted answers (closed-book QA aliases)

    def accepted(self) -> list[str]:
        return [self.output, *[a for a in self.answers if a != self.output]]

    def to_dict(self) -> dict:
        d: dict[str, Any] = {**self.fields, OUTPUT_FIELD: self.output}
        if self.answers:
            d["answers"] = list(self.answers)
        return d


def _check_plain_fields(template: str) -> None:
    """Refuse a field with a format spec, conversion or attribute ('{text:>300000000}' would build a 300 MB
    string; '{text.__class__}' reads attributes): a template's fields are plain names only."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as err:
        raise InputError(f"The template is not valid ({err}). Write fields as {{name}} and a literal brace as {{{{.") from err
    for _, name, spec, conversion in parts:
        if name is not None and (spec or conversion or not name.replace("_", "a").isalnum()):
            shown = "{" + name + ("!" + conversion if conversion else "") + (":" + spec if spec else "") + "}"
            raise InputError(f"The template field {shown[:40]} has a format, conversion or attribute; fields are plain "
                             "names such as {question}.")


@dataclass
class PromptTemplate:
    """How demonstrations and the query are written. ``{output}`` marks where the answer goes."""

    description: str = ""
    template: str = DEFAULT_TEMPLATE
    separator: str = "\n"  # between demonstrations (GPT-3: a newline)
    description_separator: str = "\n"

    def field_names(self) -> list[str]:
        """Input fields the template uses, in order (without ``output``)."""
        names = []
        for _, name, _, _ in string.Formatter().parse(self.template):
            if name is not None and name != OUTPUT_FIELD and name not in names:
                names.append(name)
        return names

    def validate(self) -> None:
        try:
            names = [n for _, n, _, _ in string.Formatter().parse(self.template) if n is not None]
        except ValueError as err:
            raise InputError(f"The template is not valid ({err}). Write fields as {{name}} and a literal brace as {{{{.") from err
        if OUTPUT_FIELD not in names:
            raise InputError("The template needs an {output} field where the answer goes, e.g. 'Q: {input}\\nA: {output}'.")
        if names.count(OUTPUT_FIELD) > 1:
            raise InputError("The template has {output} more than once.")
        if any(n == "" or n.isdigit() for n in names):
            raise InputError("Template fields need names, e.g. {question}; '{}' and '{0}' are not allowed.")
        _check_plain_fields(self.template)

    def _fill(self, text: str, ex: Example) -> str:
        _check_plain_fields(text)
        missing = [n for n in self.field_names() if n not in ex.fields]
        if missing:
            raise InputError(
                f"The template uses {{{missing[0]}}} but the example has only: {', '.join(ex.fields) or 'no fields'}."
            )
        return text.format(**ex.fields, **{OUTPUT_FIELD: ex.output})

    def demo(self, ex: Example) -> str:
        """A demonstration: the whole template, answer included."""
        return self._fill(self.template, ex)

    def split(self) -> tuple[str, str]:
        """(query part, answer prefix): the template cut before ``{output}``; trailing whitespace moves to the answer."""
        head = self.template.split("{" + OUTPUT_FIELD + "}", 1)[0]
        stripped = head.rstrip(" \t")
        return stripped, head[len(stripped):]

    def query(self, ex: Example) -> str:
        """The query: the template up to the answer, so the model writes the answer next."""
        head, _ = self.split()
        return self._fill(head, Example(ex.fields, ""))

    def answer_text(self, output: str) -> str:
        """The continuation to score for ``output``: the whitespace the template puts before it, then the label word."""
        _, prefix = self.split()
        return prefix + output


@dataclass
class PromptPart:
    """A piece of the final prompt (for colouring in the window): kind is description / demo / separator / query."""

    kind: str
    text: str
    index: int = -1  # demonstration number


@dataclass
class BuiltPrompt:
    """The final prompt text, its pieces, and its exact length in the model's tokens."""

    text: str
    parts: list[PromptPart]
    n_tokens: int | None
    context_length: int | None
    chat: bool = False
    answer_prefix: str = ""  # what goes between the prompt and an answer when scoring
    add_special_tokens: bool = True
    note: str = ""  # what the user should know about how the prompt was built (a chat template that failed)

    @property
    def fits(self) -> bool:
        return self.n_tokens is None or self.context_length is None or self.n_tokens <= self.context_length

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "n_tokens": self.n_tokens,
            "context_length": self.context_length,
            "chat": self.chat,
            "fits": self.fits,
            **({"note": self.note} if self.note else {}),
        }


def count_tokens(tokenizer: Any, text: str, add_special_tokens: bool = True) -> int:
    """Exact number of tokens the model receives for ``text`` (special tokens the tokenizer adds included)."""
    return len(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def build_prompt(
    template: PromptTemplate,
    demos: list[Example],
    query: Example | None,
    tokenizer: Any | None = None,
    context_length: int | None = None,
    chat: bool = False,
) -> BuiltPrompt:
    """Description, demonstrations joined by ``separator``, then the query; counted in the tokenizer's tokens.

    ``chat=True`` (only when the tokenizer has a chat template) makes the description the system turn, every
    demonstration a user turn (the query part) plus an assistant turn (the answer), and the query a last user turn.
    """
    template.validate()
    if chat:
        if tokenizer is None or not has_chat_template(tokenizer):
            raise InputError("This model's tokenizer has no chat template; turn 'use chat template' off.")
        from explorer.core.prompting.chat_template import TemplateProblem

        try:
            return _build_chat(template, demos, query, tokenizer, context_length)
        except TemplateProblem as problem:
            raw = build_prompt(template, demos, query, tokenizer, context_length, chat=False)
            raw.note = (f"The model's chat template could not be used ({problem}); the prompt is in the raw "
                        "format instead.")
            return raw
    parts: list[PromptPart] = []
    if template.description.strip():
        parts.append(PromptPart("description", template.description.rstrip("\n")))
        parts.append(PromptPart("separator", template.description_separator))
    for i, ex in enumerate(demos):
        if i:
            parts.append(PromptPart("separator", template.separator))
        parts.append(PromptPart("demo", template.demo(ex), i))
    if query is not None:
        if demos:
            parts.append(PromptPart("separator", template.separator))
        parts.append(PromptPart("query", template.query(query)))
    text = "".join(p.text for p in parts)
    n = count_tokens(tokenizer, text) if tokenizer is not None else None
    return BuiltPrompt(text, parts, n, context_length, False, template.split()[1], True)


def _build_chat(
    template: PromptTemplate, demos: list[Example], query: Example | None, tokenizer: Any, context_length: int | None
) -> BuiltPrompt:
    messages: list[dict[str, str]] = []
    if template.description.strip():
        messages.append({"role": "system", "content": template.description.strip()})
    for ex in demos:
        messages.append({"role": "user", "content": template.query(ex).strip()})
        messages.append({"role": "assistant", "content": ex.output})
    if query is not None:
        messages.append({"role": "user", "content": template.query(query).strip()})
    from explorer.core.prompting.chat_template import render_chat

    text = render_chat(tokenizer, messages, add_generation_prompt=query is not None)
    parts = [PromptPart("chat", text)]
    # The chat text already holds its special tokens: count it as is.
    n = count_tokens(tokenizer, text, add_special_tokens=False)
    return BuiltPrompt(text, parts, n, context_length, True, "", False)


# ---------------------------------------------------------------- answers

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.IGNORECASE)


def normalize_answer(text: str) -> str:
    """Exact-match normalisation (SQuAD/TriviaQA style): first line, lower case, no punctuation or articles."""
    line = text.strip().split("\n", 1)[0]
    line = line.lower()
    line = "".join(ch for ch in line if ch not in string.punctuation or ch == "-")
    line = _ARTICLES.sub(" ", line)
    return " ".join(line.split())


def is_correct(generated: str, ex: Example) -> bool:
    """The generated answer's first line equals one of the accepted answers after normalisation."""
    got = normalize_answer(generated)
    return any(got == normalize_answer(a) for a in ex.accepted() if a.strip())
