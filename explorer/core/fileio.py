"""Reading user files safely (encoding detection, binary refusal) and writing files atomically."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from explorer.core.errors import InputError

TEXT_SUFFIXES = (".txt", ".md", ".csv", ".tsv", ".jsonl", ".json", ".text")
MAX_BYTES = 10 * 1024 * 1024


@dataclass
class TextFile:
    """A text file as read: its text, the encoding it was in, and anything the user should be told."""

    path: str
    text: str
    encoding: str
    note: str = ""


def looks_binary(data: bytes) -> bool:
    """NUL bytes or many control characters mean this is not text in any common encoding."""
    if not data:
        return False
    sample = data[:8192]
    if b"\x00" in sample:
        # UTF-16 text has NULs; charset-normalizer recognises it by its BOM.
        return not sample.startswith((b"\xff\xfe", b"\xfe\xff"))
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    return control / len(sample) > 0.05


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode bytes as UTF-8 if they are, else the encoding charset-normalizer finds; (text, encoding)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise InputError("This file is not text in any encoding I can recognise.")
    return str(best), best.encoding


def read_text_file(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> TextFile:
    """Read a text file the user dropped or chose, detecting its encoding and refusing binary data."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p.name} is a folder, not a text file.")
    try:
        size = p.stat().st_size
        with p.open("rb") as fh:
            data = fh.read(max_bytes)
    except OSError as err:
        raise InputError(f"Cannot read {p.name}: {err.strerror or err}.") from err
    if looks_binary(data):
        raise InputError(
            f"{p.name} looks like a binary file, not text. Drop a .txt, .md, .csv, .tsv or .jsonl file."
        )
    note = ""
    if size > max_bytes:
        # Cut at a line end so no character or line is split.
        cut = data.rfind(b"\n")
        data = data[: cut + 1] if cut > 0 else data
        note = (
            f"{p.name} is {size / 1e6:.1f} MB; only the first {len(data) / 1e6:.1f} MB were read."
        )
    text, encoding = decode_bytes(data)
    if encoding not in ("utf-8", "ascii", "utf-8-sig"):
        note = (note + " " if note else "") + f"Read as {encoding} (not UTF-8)."
    return TextFile(path=str(p), text=text, encoding=encoding, note=note)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it, so a failure never leaves half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
