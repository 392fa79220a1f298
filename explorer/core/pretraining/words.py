"""Whole words from a tokenizer's pieces: the unit that WWM, ERNIE and SpanBERT mask as a whole.

The fast tokenizer's ``word_ids()`` and offsets come first; the ``##`` / ``Ġ`` / ``▁`` prefix rules are the
fallback (transformers' own whole-word collator only knows ``##``: issues #11768, #9866). Chinese runs are
grouped into jieba words, the Chinese-BERT-wwm recipe, because WordPiece splits every Chinese character and
byte-level BPE glues a whole clause into one pre-token.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from explorer.core.io.errors import InputError
from explorer.core.models.tokens import show_token
from explorer.core.models.truncate import clip_to_tokens

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
_CJK_PUNCT = re.compile(r"[\u3000-\u303f\uff00-\uffef]")  # 。，、「」 and full-width forms
_jieba_lock = threading.Lock()
_jieba: Any = None


@dataclass
class TokenizedText:
    """A text cut into tokens and grouped into words; every list is indexed by token position ``[seq]``."""

    text: str
    ids: list[int]
    tokens: list[str]  # the tokenizer's own strings ("##ing", "Ġworld")
    pretty: list[str]  # what a person reads: the covered text, "+" for a further byte piece of one character
    offsets: list[tuple[int, int]]  # character span in ``text``; (0, 0) for special tokens
    special: list[bool]
    words: list[int | None]  # word index per token, None for special tokens
    word_spans: list[tuple[int, int]]  # token range [start, end) of each word
    segments: list[int] = field(default_factory=list)  # 0 / 1 for a sentence pair, else all 0
    grouping: str = "word_ids"  # "word_ids" | "prefix" | "word_ids+jieba" | "prefix+jieba"
    truncated: bool = False
    note: str = ""

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def candidates(self) -> list[int]:
        """Positions that may be masked: every non-special token."""
        return [i for i, s in enumerate(self.special) if not s]

    def word_text(self, w: int) -> str:
        s, e = self.word_spans[w]
        a, b = self.offsets[s][0], self.offsets[e - 1][1]
        return self.text[a:b] if b > a else "".join(self.tokens[s:e])

    def to_dict(self) -> dict:
        return {
            "tokens": self.tokens,
            "words": self.words,
            "word_spans": [list(s) for s in self.word_spans],
            "grouping": self.grouping,
            "truncated": self.truncated,
        }


def token_texts(tokenizer: Any, tokens: list[str]) -> list[str]:
    """Each token as a person reads it, by the tokenizer's own ``convert_tokens_to_string`` ("Ġit" → "it",
    "▁it" → "it", "Ã©" → "é"); a piece that is not text on its own (part of a character's bytes) stays as is.
    WordPiece keeps its "##" so a word's continuation still reads as one."""
    out = []
    for t in tokens:
        try:
            text = tokenizer.convert_tokens_to_string([t]).strip()
        except (TypeError, ValueError, KeyError, AttributeError):
            text = t
        if not text and t:
            text = "␣"  # a piece that is only a space
        out.append(text if "\ufffd" not in text else t)
    return out


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def _jieba_words(text: str) -> list[tuple[int, int]]:
    """Character spans of jieba's words (jieba is imported once, quietly, on first use)."""
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            import logging

            import jieba

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba = jieba
        return [(a, b) for _, a, b in _jieba.tokenize(text)]


_SPACE_MARKS = ("Ġ", "▁", "Ċ", "<0x0A>", "\n", "\t")


def starts_from_prefixes(tokens: list[str], special: list[bool] | None = None) -> list[bool]:
    """Word starts by marker rules: WordPiece ``##`` continues a word; with ``Ġ``/``▁`` schemes a piece
    without the marker continues the previous word, and whitespace pieces (a newline, "▁▁") start the word
    that follows them, as "▁" does. Special tokens are never word starts (they are no word)."""
    special = special or [False] * len(tokens)
    marker_scheme = any(t.startswith(("Ġ", "▁")) for t, s in zip(tokens, special, strict=False) if not s)
    starts: list[bool] = []
    prev_special = True
    for tok, sp in zip(tokens, special, strict=False):
        if sp:
            starts.append(False)
            prev_special = True
            continue
        if tok.startswith("##"):
            start = prev_special
        elif marker_scheme:
            start = prev_special or tok.startswith(_SPACE_MARKS)
        else:
            start = True
        starts.append(start)
        prev_special = False
    return starts


def word_ids_split_words(tokenizer: Any) -> bool:
    """False when the fast tokenizer's ``word_ids()`` do not split "one two" into two words. Gemma's converted
    tokenizer is such a case: its pre-tokenizer splits on " " after the normaliser has already turned every
    space into "▁", so a whole line is one "word"; its own "▁" markers are the word rule then."""
    try:
        ids = tokenizer("one two", add_special_tokens=False).word_ids()
    except (ValueError, AttributeError, TypeError):  # not a fast tokenizer
        return False
    return len({w for w in ids if w is not None}) >= 2


def _words_from_starts(starts: list[bool], special: list[bool]) -> tuple[list[int | None], list[tuple[int, int]]]:
    words: list[int | None] = []
    spans: list[tuple[int, int]] = []
    for i, (st, sp) in enumerate(zip(starts, special, strict=False)):
        if sp:
            words.append(None)
            continue
        if st or not spans or i == 0 or special[i - 1]:
            spans.append((i, i + 1))
        else:
            spans[-1] = (spans[-1][0], i + 1)
        words.append(len(spans) - 1)
    return words, spans


def _pretty(text: str, tokens: list[str], offsets: list[tuple[int, int]], special: list[bool]) -> list[str]:
    out: list[str] = []
    prev: tuple[int, int] | None = None
    for tok, (a, b), sp in zip(tokens, offsets, special, strict=False):
        if sp or b <= a:
            out.append(tok)
        elif prev is not None and a < prev[1] and b <= prev[1]:
            out.append("+")  # one more byte piece of a character already shown
        else:
            piece = text[a:b]
            out.append(show_token(piece))
        prev = (a, b) if not sp else prev
    return out


def tokenize_words(
    tokenizer: Any,
    text: str,
    max_length: int | None = None,
    pair: str | None = None,
    use_word_ids: bool = True,
    chinese: str = "auto",
) -> TokenizedText:
    """Tokenize ``text`` (and an optional second segment) and group the tokens into whole words.

    The fast tokenizer's ``word_ids()`` are used when they agree with its word markers, else the ``##`` /
    ``Ġ`` / ``▁`` prefix rules (grouping "prefix").

    ``chinese``: "auto" groups Chinese runs by jieba when the text has CJK characters, "jieba" always,
    "off" never. ``use_word_ids=False`` forces the prefix-rule fallback (also used for slow tokenizers).
    """
    if not text or not text.strip():
        raise InputError("The text is empty: type or drop a text first.")
    kwargs: dict[str, Any] = {"return_special_tokens_mask": True}
    fast = bool(getattr(tokenizer, "is_fast", False))
    if fast:
        kwargs["return_offsets_mapping"] = True
    truncated = False
    note = ""
    if max_length:
        text, cut = clip_to_tokens(tokenizer, text, max_length)
        if pair is not None:
            pair, _ = clip_to_tokens(tokenizer, pair, max_length)
        full = len(tokenizer(text, pair, add_special_tokens=True)["input_ids"]) if pair is None else None
        if cut:
            truncated = True
            note = f"The text has more than {max_length} tokens; only the first {max_length} (the model's limit) are used."
        elif full is not None and full > max_length:
            truncated = True
            note = f"The text has {full} tokens; only the first {max_length} (the model's limit) are used."
        kwargs.update(truncation=True, max_length=max_length)
    enc = tokenizer(text, pair, **kwargs) if pair is not None else tokenizer(text, **kwargs)
    ids = list(enc["input_ids"])
    tokens = tokenizer.convert_ids_to_tokens(ids)
    # A [MASK] (or [CLS], [SEP]…) typed into the text is a special token too: never chosen for masking, never a
    # target. [UNK] stands for a word the vocabulary lacks and stays an ordinary token, as in BERT's own data.
    typed = set(getattr(tokenizer, "all_special_ids", None) or []) - {getattr(tokenizer, "unk_token_id", None)}
    special = [bool(s) or i in typed for s, i in zip(enc["special_tokens_mask"], ids, strict=True)]
    seq_ids = enc.sequence_ids() if fast else [0] * len(ids)
    segments = [s if s is not None else (1 if i and seq_ids[i - 1] == 1 else 0) for i, s in enumerate(seq_ids)]
    # Character offsets refer to ``text`` for segment 0 and to ``pair`` for segment 1; shift the latter.
    joined = text if pair is None else text + "\n" + pair
    if fast:
        offsets = [
            (a + (len(text) + 1 if seq == 1 else 0), b + (len(text) + 1 if seq == 1 else 0)) if seq is not None else (0, 0)
            for (a, b), seq in zip(enc["offset_mapping"], seq_ids, strict=False)
        ]
    else:
        offsets = [(0, 0)] * len(ids)
    if not any(not s for s in special):
        raise InputError("The text gives no tokens besides the special ones.")

    # Word keys: (segment, word id) from the tokenizer, or prefix-rule starts.
    if fast and use_word_ids and word_ids_split_words(tokenizer):
        wids = enc.word_ids()
        starts = []
        prev_key = None
        for i, (w, sp) in enumerate(zip(wids, special, strict=False)):
            key = None if sp or w is None else (segments[i], w)
            starts.append(key is not None and key != prev_key)
            prev_key = key
        grouping = "word_ids"
    else:
        # Slow tokenizers, a forced fallback, or word_ids that ignore the tokenizer's own "▁" markers.
        starts = starts_from_prefixes(tokens, special)
        grouping = "prefix"

    use_jieba = chinese == "jieba" or (chinese == "auto" and has_cjk(joined))
    if use_jieba and fast:
        starts = _regroup_chinese(joined, offsets, special, starts)
        grouping += "+jieba"
    words, spans = _words_from_starts(starts, special)
    return TokenizedText(
        text=joined,
        ids=ids,
        tokens=tokens,
        pretty=_pretty(joined, tokens, offsets, special) if fast else list(tokens),
        offsets=offsets,
        special=special,
        words=words,
        word_spans=spans,
        segments=segments,
        grouping=grouping,
        truncated=truncated,
        note=note,
    )


def _regroup_chinese(
    text: str, offsets: list[tuple[int, int]], special: list[bool], starts: list[bool]
) -> list[bool]:
    """Tokens over Chinese characters start a word where a jieba word starts (a piece that straddles two
    jieba words keeps them together); other tokens keep the tokenizer's grouping."""
    jw = _jieba_words(text)
    word_of_char = [-1] * (len(text) + 1)
    for k, (a, b) in enumerate(jw):
        for c in range(a, b):
            word_of_char[c] = k
    out = list(starts)
    prev_range: tuple[int, int] | None = None  # jieba words covered by the previous Chinese token's group
    prev_cjk = prev_punct = False
    for i, ((a, b), sp) in enumerate(zip(offsets, special, strict=False)):
        if sp or b <= a:
            prev_range, prev_cjk, prev_punct = None, False, False
            continue
        cjk = bool(_CJK.search(text[a:b]))
        if not cjk:
            if prev_cjk or prev_punct:
                out[i] = True  # a Latin piece glued to Chinese (or to 。) by the pre-tokenizer starts its own word
            prev_range, prev_cjk = None, False
            prev_punct = bool(_CJK_PUNCT.search(text[a:b]))
            continue
        prev_punct = False
        lo, hi = word_of_char[a], word_of_char[max(a, b - 1)]
        if prev_cjk and prev_range is not None and lo <= prev_range[1]:
            out[i] = False
            prev_range = (prev_range[0], max(prev_range[1], hi))
        else:
            out[i] = True
            prev_range = (lo, hi)
        prev_cjk = True
    return out


def word_ranges_for_chars(tt: TokenizedText, char_spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Word ranges [first, last+1) that cover each character span (so a unit is always made of whole words).

    Spans that cover no token (after truncation, or only spaces) are dropped; overlapping results merge.
    """
    token_words = [(i, w) for i, w in enumerate(tt.words) if w is not None]
    ranges: list[tuple[int, int]] = []
    for a, b in char_spans:
        hit = [w for i, w in token_words if tt.offsets[i][0] < b and tt.offsets[i][1] > a]
        if hit:
            ranges.append((min(hit), max(hit) + 1))
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for r in ranges:
        if merged and r[0] < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], r[1]))
        else:
            merged.append(r)
    return merged
