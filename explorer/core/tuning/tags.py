"""Entity spans from B-/I-/E-/S- tag runs, by seqeval's chunking rules: what the token head and evaluation share."""

from __future__ import annotations

_PREFIXES = ("B", "I", "E", "S")


def _split_tag(tag: str) -> tuple[str, str]:
    """(prefix, type): 'B-PER' -> ('B', 'PER'); 'O' -> ('O', ''); a bare 'PER' reads as 'I-PER'."""
    if tag == "O" or not tag:
        return "O", ""
    if len(tag) > 2 and tag[0] in _PREFIXES and tag[1] in "-_":
        return tag[0], tag[2:]
    return "I", tag


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag != "O" and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag != "O" and prev_type != type_


def entity_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """Entities as (type, first word, last word), inclusive, from a tag per word (seqeval's get_entities)."""
    out = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, raw in enumerate([*tags, "O"]):
        tag, type_ = _split_tag(raw)
        if _end_of_chunk(prev_tag, tag, prev_type, type_):
            out.append((prev_type, begin, i - 1))
        if _start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return out
