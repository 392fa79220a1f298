"""A converted model's BPE tokenizer, stored so that loading it never holds Python's GIL for long.

The window loads models in a worker thread, and the GUI thread needs the GIL for every event. The ``tokenizers``
library never releases the GIL while it builds a tokenizer, and ``transformers`` reads a ``tokenizer.json`` with
single long calls: ``json.load`` (a C call over the whole file, twice per load), ``Tokenizer.from_file`` (serde
parsing every merge pair through a generic JSON value) and, for a class with its own ``__init__`` such as
``GemmaTokenizer``, a BPE built again from the parsed lists. Each one froze the window (SmolLM2: 75-110 ms,
gemma3: 0.4-0.9 s, measured with a 1 ms ticker thread).

Beside the converted cache's own ``tokenizer.json`` (kept unchanged, the fallback) this module writes a folder
``explorer-tokenizer`` holding the tokenizer config (with ``added_tokens_decoder``, so transformers need not open
``tokenizer.json`` for it) and ``tokenizer-parts.jsonl``: the tokenizer's small parts, then its vocabulary and its
merges (as vocabulary ids) in short lines. Loading reads the lines one at a time, so every step is short, and
makes the one call that cannot be split: ``BPE(vocab, merges)`` from Python objects, the cheapest way the library
offers (SmolLM2: 23-34 ms of CPU, 48-66 ms as a process's first, against 65-100 ms for ``from_str``/``from_file``;
gemma3: 0.35-0.65 s, the library's floor for 262,144 tokens and 514,906 merges). The transformers tokenizer class
then gets that backend as its ``tokenizer_object``. The result serialises to the very same JSON as
``Tokenizer.from_file`` (tests/core/test_prepared_tokenizer.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from explorer.core.io.fileio import checksum_problem, file_checksums, remove_abandoned

log = logging.getLogger(__name__)

PREPARED = "explorer-tokenizer"
PARTS = "tokenizer-parts.jsonl"
FORMAT = 1
_CHUNK = 4096  # tokens (or merge pairs) per line: each line is parsed by one short json.loads

# The fields of a BPE model in tokenizer.json; a model with any other field is left to the ordinary path.
_BPE_PARAMS = ("dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk",
               "byte_fallback", "ignore_merges")
# Files beside tokenizer.json whose meaning this folder does not reproduce: with one of them, no preparation.
_OTHER_TOKENIZER_FILES = ("special_tokens_map.json", "added_tokens.json", "tokenizer.model", "vocab.json",
                          "vocab.txt", "merges.txt")


# ---------------------------------------------------------------- writing


def prepare(folder: str | os.PathLike) -> Path | None:
    """Write ``folder/explorer-tokenizer`` from ``folder/tokenizer.json`` (a BPE tokenizer); returns it, or None
    when the tokenizer is not one this module reproduces (the ordinary load is then used).

    The file is read incrementally (ijson), so no step holds the GIL for long; an existing folder is kept.
    """
    folder = Path(folder)
    target = folder / PREPARED
    if _parts_ok(target):
        return target
    remove_abandoned(folder, prefix=PREPARED)  # left by a process killed while writing
    source, config_file = folder / "tokenizer.json", folder / "tokenizer_config.json"
    if not source.is_file() or not config_file.is_file() or any((folder / n).exists() for n in _OTHER_TOKENIZER_FILES):
        return None
    try:
        read = _read_bpe(source)
    except Exception as err:  # noqa: BLE001 - ijson's errors, bad UTF-8: the ordinary load reports the damage
        log.warning("could not read %s for its prepared copy: %s", source, err)
        return None
    if read is None:
        return None
    shell, tokens, merge_ids = read
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
        # What transformers does when it finds a tokenizer.json: drops these (the file's post-processor decides)
        # and, without added_tokens_decoder in the config, takes the added tokens from the file.
        config.pop("add_bos_token", None)
        config.pop("add_eos_token", None)
        config.setdefault("added_tokens_decoder", {
            str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in shell["added_tokens"]
        })
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        log.warning("could not read the tokenizer config of %s for its prepared copy: %s", folder, err)
        return None
    tmp = folder / f"{PREPARED}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        (tmp / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=1), encoding="utf-8")
        for extra in folder.glob("chat_template*"):
            if extra.is_file():
                shutil.copyfile(extra, tmp / extra.name)
        with open(tmp / PARTS, "w", encoding="utf-8") as fh:
            header = {"format": FORMAT, "shell": shell, "vocab": len(tokens), "merges": len(merge_ids) // 2}
            fh.write(json.dumps(header, ensure_ascii=False) + "\n")
            for i in range(0, len(tokens), _CHUNK):
                fh.write(json.dumps(tokens[i:i + _CHUNK], ensure_ascii=False) + "\n")
            for i in range(0, len(merge_ids), 2 * _CHUNK):
                fh.write(json.dumps(merge_ids[i:i + 2 * _CHUNK]) + "\n")
            fh.write(json.dumps({"end": True}) + "\n")
        _write_check(tmp)
        if target.exists() and not _parts_ok(target):
            shutil.rmtree(target, ignore_errors=True)  # damaged: replaced by the copy just written
        try:
            os.replace(tmp, target)
        except OSError:  # another process prepared it meanwhile (a folder is not replaced when it has files)
            if not _parts_ok(target):
                raise
    except OSError as err:
        log.warning("could not prepare the tokenizer of %s: %s", folder, err)
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _read_bpe(source: Path) -> tuple[dict, list[str], list[int]] | None:
    """(tokenizer.json without vocab and merges, the tokens in id order, the merges as flat id pairs), or None
    when the model is not a plain BPE with ids 0..n-1."""
    import ijson

    parts: dict[str, Any] = {}
    with open(source, "rb") as fh:
        # Built item by item from 64 KB reads; each read lets the GUI thread run.
        for key, value in ijson.kvitems(fh, "", use_float=True):
            parts[key] = value
    model = parts.get("model")
    if not isinstance(model, dict) or model.get("type") != "BPE" or set(model) - {"type", "vocab", "merges", *_BPE_PARAMS}:
        return None
    vocab, merges = model.get("vocab"), model.get("merges")
    if not isinstance(vocab, dict) or not isinstance(merges, list) or not isinstance(parts.get("added_tokens"), list):
        return None
    tokens: list[Any] = [None] * len(vocab)
    for token, i in vocab.items():
        if not isinstance(i, int) or not 0 <= i < len(tokens) or tokens[i] is not None:
            return None  # ids with holes or repeats: tokenizers keeps them, a list in id order cannot
        tokens[i] = token
    merge_ids: list[int] = []
    for merge in merges:
        pair = merge.split(" ") if isinstance(merge, str) else merge
        if not isinstance(pair, list) or len(pair) != 2 or pair[0] not in vocab or pair[1] not in vocab:
            return None
        merge_ids += (vocab[pair[0]], vocab[pair[1]])
    shell = dict(parts)
    shell["model"] = {k: v for k, v in model.items() if k not in ("vocab", "merges")}
    return shell, tokens, merge_ids


def _write_check(folder: Path) -> None:
    """Sizes and sha256 of the folder's files, so a damaged copy is noticed (see :func:`_parts_ok`)."""
    files = file_checksums(folder, skip=("check.json",))
    (folder / "check.json").write_text(json.dumps({"format": FORMAT, "files": files}, indent=1), encoding="utf-8")


def _parts_ok(folder: Path) -> bool:
    """Whether a prepared folder holds exactly the files written, unchanged (sha256 again when a time moved)."""
    try:
        check = json.loads((folder / "check.json").read_text(encoding="utf-8"))
        files = check["files"]
        if check.get("format") != FORMAT or PARTS not in files or "tokenizer_config.json" not in files:
            return False
        return not checksum_problem(folder, files)[0]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


# ---------------------------------------------------------------- loading


def build_backend(parts_file: str | os.PathLike) -> Any:
    """The ``tokenizers.Tokenizer`` stored in a parts file, built in short steps around one ``BPE(...)`` call.

    Raises ValueError when the file is damaged (wrong counts, ids out of range, a missing end line).
    """
    from tokenizers import AddedToken, Tokenizer
    from tokenizers.models import BPE

    with open(parts_file, encoding="utf-8") as fh:
        header = json.loads(fh.readline())
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError("not a tokenizer parts file of this format")
        n_vocab, n_merges, shell = int(header["vocab"]), int(header["merges"]), header["shell"]
        tokens: list[str] = []
        while len(tokens) < n_vocab:
            tokens += json.loads(fh.readline())
        vocab = {token: i for i, token in enumerate(tokens)}
        if len(tokens) != n_vocab or len(vocab) != n_vocab:
            raise ValueError("the vocabulary lines do not match the header")
        merges: list[tuple[str, str]] = []
        while len(merges) < n_merges:
            ids = json.loads(fh.readline())
            merges += [(tokens[a], tokens[b]) for a, b in zip(ids[::2], ids[1::2], strict=True)]
        if len(merges) != n_merges or json.loads(fh.readline()) != {"end": True}:
            raise ValueError("the merge lines do not match the header")
    model = shell["model"]
    params = {k: model[k] for k in _BPE_PARAMS if model.get(k) is not None}
    _touch_heap()
    # The one long call: the library builds its maps from the Python objects (see the module docstring).
    backend = Tokenizer(BPE(vocab=vocab, merges=merges, **params))
    # Normalizer, pre-tokenizer, post-processor, decoder, truncation and padding from a tokenizer with an empty
    # vocabulary (the same JSON, so the same objects), then the added tokens, in the order and with the flags
    # tokenizers' own deserialiser uses (after the normalizer, all in one call).
    skeleton = Tokenizer.from_str(json.dumps({**shell, "model": {**model, "vocab": {}, "merges": []},
                                              "added_tokens": []}))
    for part in ("normalizer", "pre_tokenizer", "post_processor", "decoder"):
        value = getattr(skeleton, part)
        if value is not None:
            setattr(backend, part, value)
    if skeleton.truncation is not None:
        backend.enable_truncation(**skeleton.truncation)
    if skeleton.padding is not None:
        padding = dict(skeleton.padding)
        padding["direction"] = padding.pop("direction", "right")
        backend.enable_padding(**padding)
    backend.add_tokens([AddedToken(t["content"], single_word=t["single_word"], lstrip=t["lstrip"], rstrip=t["rstrip"],
                                   normalized=t["normalized"], special=t["special"]) for t in shell["added_tokens"]])
    # Freed in slices: dropping a million strings and tuples at once is one long deallocation.
    vocab.clear()
    for big in (merges, tokens):
        while big:
            del big[-_CHUNK:]
    return backend


_HEAP_MB = 60


def _touch_heap() -> None:
    """Have the C allocator hold about 60 MB of memory already mapped, in 1 MB steps, before the BPE build.

    The build allocates its strings and maps in this thread (gemma3: about 140 MB); memory the process never
    touched costs a page fault per 4 KB page, kernel time spent while the build holds the GIL (gemma3: 35,600
    faults, 80-115 ms). glibc keeps freed memory below its trim threshold, which freeing a 32 MB block raises to
    64 MB; touched and freed here, step by step, 60 MB of it is ready for the build (faults halved, measured).
    Elsewhere it is only a short allocation.
    """
    block = bytearray(32 << 20)  # one mapped block: freeing it raises the thresholds
    del block
    steps = [bytearray(1 << 20) for _ in range(_HEAP_MB)]  # each zero-filled, so its pages are touched
    del steps


@contextlib.contextmanager
def _handed_over(backend: Any) -> Iterator[None]:
    """transformers deep-copies a ``tokenizer_object`` (a JSON round trip in Rust, as long as building it); this
    one was just built for it and nobody else holds it, so the copy is the object itself."""
    backend.__deepcopy__ = lambda memo: backend
    try:
        yield
    finally:
        del backend.__deepcopy__


def load(folder: str | os.PathLike, **kwargs: Any) -> Any | None:
    """The transformers tokenizer of a converted folder from its prepared parts (prepared first when missing),
    or None when it has none (the caller then uses ``AutoTokenizer.from_pretrained(folder)``)."""
    folder = Path(folder)
    prepared = prepare(folder)
    if prepared is None:
        return None
    try:
        backend = build_backend(prepared / PARTS)
    except Exception as err:  # noqa: BLE001 - tokenizers raises plain Exception for a bad model
        log.warning("the prepared tokenizer of %s cannot be used (%s); reading tokenizer.json", folder, err)
        shutil.rmtree(prepared, ignore_errors=True)
        return None
    from transformers import AutoTokenizer

    try:
        with _handed_over(backend):
            tokenizer = AutoTokenizer.from_pretrained(str(prepared), tokenizer_object=backend, **kwargs)
    except Exception as err:  # noqa: BLE001 - transformers raises many kinds; the ordinary path reports its own
        log.warning("the prepared tokenizer of %s does not load (%s); reading tokenizer.json", folder, err)
        shutil.rmtree(prepared, ignore_errors=True)
        return None
    tokenizer.name_or_path = str(folder)  # as if loaded from the folder itself
    if "name_or_path" in tokenizer.init_kwargs:
        tokenizer.init_kwargs["name_or_path"] = str(folder)
    return tokenizer
