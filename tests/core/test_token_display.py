"""One function shows a token to a person, on the three bundled tokenizers: MiniLM's WordPiece, SmolLM2's byte-level
BPE and Gemma 3's SentencePiece. No Ġ, ▁ or ## is left, a space reads ␣, a newline ↵, and the pieces of whole
characters read as the text they cover."""

from __future__ import annotations

import unicodedata

import pytest

from explorer.core.models.tokens import show_token, show_tokens

TEXT = "The café was open.\nNew  line\there, unbelievably quick; don't 3.14"
MARKS = ("Ġ", "▁", "##", "Ċ", "ĉ", "<0x")


def _check(tokenizer, lowercase: bool = False) -> list[str]:
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    pieces = tokenizer.convert_ids_to_tokens(ids)
    shown = show_tokens(pieces)
    assert len(shown) == len(pieces)
    for piece, text in zip(pieces, shown, strict=True):
        assert text and not any(m in text for m in MARKS), (piece, text)
        assert " " not in text and "\n" not in text and "\t" not in text, (piece, text)
    # every piece that is a whole character or more is a piece of the text, as written
    # (an uncased WordPiece lowercases and drops accents, as BERT's own BasicTokenizer does)
    source = "".join(c for c in unicodedata.normalize("NFD", TEXT.lower()) if not unicodedata.combining(c)) \
        if lowercase else TEXT
    for text in shown:
        if text not in ("␣", "↵", "⇥", "␣␣") and not text.startswith("⟨"):
            assert text.replace("↵", "\n").replace("⇥", "\t") in source, text
    return shown


def test_wordpiece_minilm(minilm):
    shown = _check(minilm.tokenizer, lowercase=True)
    assert "believ" in "".join(shown) and not any(s.startswith("#") for s in shown)
    assert show_token("[CLS]") == "[CLS]" and show_token("##ing") == "ing"


def test_byte_level_bpe_smollm2(smollm2):
    shown = _check(smollm2.tokenizer)
    assert "café" in shown and "↵" in shown and "⇥" in shown
    assert shown.count("␣") >= 1  # "New␣␣line": one of the two spaces is a piece of its own
    assert show_token("Ġ") == "␣" and show_token("ĊĊ") == "↵↵" and show_token("<|im_end|>") == "<|im_end|>"


@pytest.mark.slow
def test_sentencepiece_gemma3(gemma3_tokenizer):
    shown = _check(gemma3_tokenizer)
    assert "café" in shown and "↵" in shown and "␣␣" in shown or "␣" in shown
    assert show_token("<0x0A>") == "↵" and show_token("▁▁") == "␣␣" and show_token("<bos>") == "<bos>"


def test_decoded_tokens_of_generation():
    """Generation hands over decoded strings: the next-token chart's space candidate is ␣, not blank."""
    assert show_tokens([" ", " Paris", "\n", "", "é"]) == ["␣", "Paris", "↵", "", "é"]
