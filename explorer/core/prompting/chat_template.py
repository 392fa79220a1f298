"""A model's chat template rendered in a sandbox with a budget: jinja2's ImmutableSandboxedEnvironment (no
attribute tricks, no mutation of the messages), at most MAX_SECONDS of rendering and MAX_CHARS of output, and no
giant strings or numbers from ``*`` and ``**``. A template that errors, loops or grows past a limit is reported
as :class:`TemplateProblem`, and the prompt falls back to the raw format (GPT-3's), with a note.
"""

from __future__ import annotations

import sys
import time
from typing import Any

MAX_SECONDS = 2.0
MAX_CHARS = 1_000_000
MAX_TEMPLATE_CHARS = 200_000
MAX_OPERAND = 100_000  # a repeated string or list, or an exponent, beyond this is refused


class TemplateProblem(Exception):
    """The chat template could not be rendered within the sandbox's rules and budget; the message says why."""


def _environment() -> Any:
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Budgeted(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
                raise TemplateProblem("it raises a number to a huge power")
            if operator == "*":
                for seq, n in ((left, right), (right, left)):
                    if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_OPERAND:
                        raise TemplateProblem("it builds a huge string or list")
            return super().call_binop(context, operator, left, right)

    env = Budgeted(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])

    def raise_exception(message: str) -> None:
        raise TemplateProblem(f"the template itself refused: {str(message)[:120]}")

    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: time.strftime(str(fmt)[:64])
    env.filters["tojson"] = lambda value, indent=None: __import__("json").dumps(value, ensure_ascii=False, indent=indent)
    return env


def _budget(deadline: float):  # noqa: ANN202 - a sys.settrace hook
    def trace(frame: Any, event: str, arg: Any) -> Any:  # noqa: ARG001
        if time.monotonic() > deadline:
            raise TemplateProblem(f"it ran longer than {MAX_SECONDS:g} s")
        return trace
    return trace


def render_chat(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    """The tokenizer's chat template applied to ``messages``, in the sandbox and within the budget."""
    source = getattr(tokenizer, "chat_template", None)
    if not isinstance(source, str) or not source.strip():
        raise TemplateProblem("the tokenizer's chat template is not a single template text")
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(f"the template is longer than {MAX_TEMPLATE_CHARS:,} characters")
    from jinja2 import TemplateError

    context: dict[str, Any] = {"messages": messages, "add_generation_prompt": add_generation_prompt}
    for name, value in (getattr(tokenizer, "special_tokens_map", None) or {}).items():
        if isinstance(value, str):
            context[name] = value
    out: list[str] = []
    size = 0
    deadline = time.monotonic() + MAX_SECONDS
    previous = sys.gettrace()
    sys.settrace(_budget(deadline))
    try:
        template = _environment().from_string(source)
        for piece in template.generate(**context):
            size += len(piece)
            if size > MAX_CHARS:
                raise TemplateProblem(f"its output grew past {MAX_CHARS:,} characters")
            out.append(piece)
    except TemplateProblem:
        raise
    except (TemplateError, RecursionError, MemoryError, OverflowError, TypeError, ValueError, AttributeError,
            KeyError, IndexError, ZeroDivisionError) as err:
        raise TemplateProblem(f"{type(err).__name__}: {' '.join(str(err).split())[:120]}") from None
    finally:
        sys.settrace(previous)
    return "".join(out)
