"""A token as a person reads it, for every tokenizer: no ``Ġ`` / ``▁`` word-start marks, no ``##`` continuation
mark, byte-level pieces decoded ("Ã©" → "é"), a space shown as ␣, a newline as ↵ and a tab as ⇥. Chips, axes,
tables, charts and exports all call :func:`show_token`, so one token reads the same everywhere.
"""

from __future__ import annotations

import re
from functools import lru_cache

SPACE, NEWLINE, TAB = "␣", "↵", "⇥"
MASK_SPELLINGS = re.compile(r"\[MASK\]|<mask>", flags=re.IGNORECASE)  # how a user types a blank, any model
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")  # SentencePiece byte fallback
_SPECIAL = re.compile(r"^(\[[A-Za-z_]+\]|<\|?/?[A-Za-z_][A-Za-z0-9_|]*\|?>)$")  # [CLS], <bos>, </s>, <|im_end|>


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet reversed: the printable character that stands for each byte → the byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    chars = list(printable)
    shifted = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + shifted)
            shifted += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def _from_byte_level(piece: str) -> str:
    """A byte-level BPE piece as text ("Ġwas" → " was", "Ċ" → "\\n"); a piece that holds only part of a character's
    bytes is shown by its bytes (⟨e5 93⟩). A piece not written in that alphabet comes back unchanged."""
    decoder = _byte_decoder()
    if not piece or any(c not in decoder for c in piece):
        return piece
    raw = bytes(decoder[c] for c in piece)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Only a piece written with the alphabet's shifted characters (Ġ, Ċ, ĵ…) is surely byte-level; "é" alone
        # is a SentencePiece or WordPiece character.
        if any(ord(c) >= 0x100 for c in piece):
            return "⟨" + " ".join(f"{b:02x}" for b in raw.lstrip(b" ")) + "⟩"  # the word-start space dropped
        return piece


def show_token(piece: str) -> str:
    """``piece`` (a tokenizer's own string, or a decoded token) as a person reads it.

    "Ġwas" / "▁was" / " was" → "was"; "##ing" → "ing"; "Ġ" / "▁" / " " → "␣"; "▁▁" → "␣␣"; "Ċ" / "<0x0A>" / "\\n"
    → "↵"; "ĠcafÃ©" → "café"; special tokens ([CLS], <bos>, <|im_end|>) stay as they are.
    """
    if not piece:
        return ""
    byte = _BYTE_PIECE.fullmatch(piece)
    if byte:
        text = chr(int(byte.group(1), 16)) if int(byte.group(1), 16) < 0x80 else f"⟨{byte.group(1).lower()}⟩"
    elif _SPECIAL.match(piece):
        return piece
    else:
        text = piece[2:] if piece.startswith("##") and len(piece) > 2 else piece
        text = _from_byte_level(text.replace("▁", " "))  # a piece with a space in it is not byte-level
    core = text.strip(" ")
    if not core:
        return SPACE * len(text)
    return core.replace("\r\n", NEWLINE).replace("\n", NEWLINE).replace("\r", NEWLINE).replace("\t", TAB)


def show_tokens(pieces: list[str]) -> list[str]:
    """:func:`show_token` of each piece."""
    return [show_token(p) for p in pieces]
