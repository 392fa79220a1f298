"""The one boundary for untrusted bytes: every file, stream and answer the app reads from outside (texts, data
files, the session, model configs and tokenizer files, HTTP bodies) goes through these limits, each with a
message that says which limit was hit. The README's reliability section lists the same numbers.
"""

from __future__ import annotations

import csv
import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from explorer.core.io.errors import InputError

MB = 1024 * 1024
MAX_TEXT_BYTES = 10 * MB  # a text or data file is read up to here (a longer text file is sampled from its start)
MAX_LINE_CHARS = 1 * MB  # one line of a data file (JSONL row, CSV record)
MAX_CSV_FIELD = 1 * MB  # one CSV field (Python's csv module stops at 128 kB by default, with an unhandled error)
MAX_JSON_DEPTH = 64  # nesting of any JSON the app reads (data rows, tasks, session, configs, HTTP answers)
MAX_SESSION_BYTES = 16 * MB  # the session holds the text box (10 MB at most) and panel settings
MAX_CONFIG_BYTES = 4 * MB  # config.json, tokenizer_config.json, generation_config.json, adapter/head configs
MAX_TOKENIZER_BYTES = 256 * MB  # tokenizer.json / vocab files (gemma3's 262k-piece tokenizer.json is ~33 MB)
MAX_HTTP_BODY = 16 * MB  # one non-streamed HTTP answer
MAX_HTTP_LINE = 1 * MB  # one line of a streamed answer (one server-sent event)
MAX_HTTP_STREAM = 64 * MB  # a whole streamed answer
MAX_HTTP_HEADERS = 100  # header lines of one answer (http.client's own limit, stated here)
csv.field_size_limit(MAX_CSV_FIELD)  # for every CSV reader of the app: a longer field is a one-line error

# One line of the window's text box: Qt lays a line (a text block) out whole, in time that grows faster than its
# length (a 1 MB line froze the window for 95 s, an 8 MB one of words for minutes); 50,000 characters take well
# under a second. A text with a longer line is not shown; the file it came from is never changed.
MAX_SHOWN_LINE = 50_000

MAX_LAYERS = 1024  # a model config's layer count
MAX_VOCAB = 4_000_000  # a model config's vocabulary size
MAX_HIDDEN = 65_536  # a model config's hidden size


def size_text(n: float) -> str:
    return f"{n / MB:.0f} MB" if n >= MB else f"{n / 1024:.0f} kB" if n >= 1024 else f"{int(n)} bytes"


def first_long_line(text: str, limit: int = MAX_SHOWN_LINE) -> int:
    """Characters in the first line of ``text`` longer than ``limit`` (lines end at a newline, as the text box
    splits them); 0 when there is none. Linear in the text's length, however many lines it has."""
    pos, n = 0, len(text)
    while n - pos > limit:
        newline = text.rfind("\n", pos, pos + limit + 1)  # the last line end within reach of this line's start
        if newline < 0:  # the line starting at pos is longer than the limit
            end = text.find("\n", pos)
            return (end if end >= 0 else n) - pos
        pos = newline + 1
    return 0


def too_long_to_show(text: str, what: str) -> str:
    """'' when the window's text box can show ``text``; else a sentence saying that ``what`` has a line over
    :data:`MAX_SHOWN_LINE` characters."""
    n = first_long_line(text)
    if not n:
        return ""
    return (f"{what} has a line of {n:,} characters; the text box shows lines of at most {MAX_SHOWN_LINE:,} "
            "characters (a longer one would freeze the window), so it was not put in the text box")


def json_depth(obj: Any) -> int:
    """How deep a parsed JSON value nests (a scalar is 0), counted without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"it holds {name}, which is not a number JSON allows")


def loads_json(text: str | bytes, what: str, error: type[Exception] = InputError,
               max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Strict JSON from untrusted text: nesting at most ``max_depth``, no NaN/Infinity, any failure one
    ``error`` naming ``what``."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:  # the C parser stops at Python's recursion limit, cleanly
        raise error(f"{what} cannot be used: it nests deeper than {max_depth} levels.") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise error(f"{what} is not valid JSON ({str(err)[:120]}).") from None
    if isinstance(data, (dict, list)) and json_depth(data) > max_depth:
        raise error(f"{what} cannot be used: it nests deeper than {max_depth} levels.")
    return data


def check_regular_file(path: str | os.PathLike, what: str = "") -> os.stat_result:
    """The file's stat when it is a regular file; a named pipe, device, socket or folder is refused before any
    read (reading a FIFO blocks forever, a device never ends)."""
    p = Path(path)
    name = what or p.name
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InputError(f"{name} does not exist ({p}).") from None
    except OSError as err:
        raise InputError(f"{name} cannot be read: {err.strerror or err}.") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{name} is a folder, not a file ({p}).")
    if not stat.S_ISREG(st.st_mode):
        kind = "a named pipe" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
        raise InputError(f"{name} is {kind}, not a regular file; it is not read ({p}).")
    return st


def read_bytes_limited(path: str | os.PathLike, max_bytes: int, what: str = "") -> bytes:
    """A regular file's bytes, refused (not read) when larger than ``max_bytes``."""
    p = Path(path)
    st = check_regular_file(p, what)
    name = what or p.name
    if st.st_size > max_bytes:
        raise InputError(f"{name} is {size_text(st.st_size)}, over the {size_text(max_bytes)} limit for it.")
    with open(p, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew while being read
        raise InputError(f"{name} is over the {size_text(max_bytes)} limit for it.")
    return data


def read_json_file(path: str | os.PathLike, max_bytes: int, what: str = "", error: type[Exception] = InputError) -> Any:
    """A JSON file through every limit: regular file, size, depth, no NaN."""
    name = what or Path(path).name
    try:
        data = read_bytes_limited(path, max_bytes, name)
    except InputError as err:
        raise error(str(err)) from None
    return loads_json(data, name, error)


def read_stream_limited(stream: Any, max_bytes: int, what: str) -> bytes:
    """Bytes from a file-like ``stream`` (standard input, an HTTP answer), refused past ``max_bytes``."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"{what} is over the {size_text(max_bytes)} limit.")
    return data


def check_model_dimensions(config: dict, name: str, memory_limit: int | None = None) -> None:
    """Refuse a model config whose layer count, vocabulary or hidden size is out of any real model's range, or
    whose weights (estimated from those numbers alone) would not fit in memory, before anything is allocated."""
    from explorer.core.io.errors import ModelError

    def number(*keys: str) -> float | None:
        for k in keys:
            for where in (config, config.get("text_config") if isinstance(config.get("text_config"), dict) else {}):
                v = where.get(k)
                if isinstance(v, bool):
                    continue
                if isinstance(v, (int, float)):
                    return float(v)
        return None

    layers = number("num_hidden_layers", "n_layer", "num_layers", "n_layers", "encoder_layers", "decoder_layers")
    vocab = number("vocab_size", "n_vocab")
    hidden = number("hidden_size", "n_embd", "d_model", "dim")
    for value, key, top in ((layers, "layers", MAX_LAYERS), (vocab, "vocabulary size", MAX_VOCAB),
                            (hidden, "hidden size", MAX_HIDDEN)):
        if value is not None and (not math.isfinite(value) or value < 0 or value > top):
            raise ModelError(f"{name}'s config claims {value:g} for its {key}, outside any real model's range "
                             f"(at most {top:,}); it is not loaded.")
    if memory_limit and layers and hidden:
        # 12·h² weights per transformer layer plus the embedding table, as float32.
        estimate = 4 * (12 * hidden * hidden * layers + (vocab or 0) * hidden)
        if estimate > memory_limit:
            raise ModelError(f"{name}'s config describes a model of about {estimate / 1e9:.1f} GB ({layers:g} layers, "
                             f"hidden {hidden:g}), more than this computer's {memory_limit / 1e9:.1f} GB of memory; "
                             "it is not loaded.")
