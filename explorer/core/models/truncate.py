"""Cutting a long text to a model's input limit at a space, without tokenizing all of it."""

from __future__ import annotations

from typing import Any

_CLIP_MARGIN = 16  # tokens past the limit that make sure a word cut at the clip point lies beyond it


def clip_to_tokens(tokenizer: Any, text: str, limit: int) -> tuple[str, bool]:
    """The start of ``text`` that holds more than ``limit`` tokens, cut at a space; (prefix, was_cut).

    Tokenizing a whole 10 MB file to use the first 512 tokens took a minute and gigabytes; this tokenizes a
    prefix that grows fourfold until it holds the limit plus a margin, so the tokens the model sees are
    exactly those of the whole text.
    """
    budget = max(1024, (limit + _CLIP_MARGIN) * 8)  # characters; most tokens are 1–8 characters long
    while budget < len(text):
        lo = budget // 2
        cut = max(text.rfind(" ", lo, budget), text.rfind("\n", lo, budget))
        end = cut if cut > 0 else budget
        n = len(tokenizer(text[:end], add_special_tokens=False)["input_ids"])
        if n > limit + _CLIP_MARGIN:
            return text[:end], True
        budget *= 4
    return text, False
