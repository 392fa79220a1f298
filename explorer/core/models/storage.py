"""What the app has written to disk, with sizes, and clearing it: the Models panel's Storage view and
``lm-explorer storage``.

Only files the app wrote are listed or deleted, each recognised by a mark it leaves: a converted model is a
folder holding ``explorer-manifest.json``; a joined GGUF is a bundled model's file name, at its known place;
a fine-tune saved in the app's folder holds ``finetune.json`` or the app's head files; the session and model
list are the app's own JSON files. Anything else in those folders (a file you put there) is left alone.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from explorer.core.io import paths
from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress

CONVERTED_MARK = "explorer-manifest.json"  # written last into every converted model (models.MANIFEST)
FINETUNE_MARKS = ("finetune.json", "head_config.json")
SESSION_FILES = ("session.json", "models.json")


@dataclass
class StoredItem:
    """One thing the app wrote: a folder or a file, and its size."""

    name: str
    path: str
    bytes: int


@dataclass
class CacheArea:
    """A kind of file the app writes, where it lives, and what of it is there now."""

    key: str  # what `storage --clear KEY` takes
    label: str
    location: str
    what: str  # one line: what it holds and what clearing it costs
    items: list[StoredItem] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(i.bytes for i in self.items)

    def to_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "location": self.location, "what": self.what,
                "bytes": self.bytes, "items": [vars(i) for i in self.items]}


def size_of(path: Path) -> int:
    """Bytes on disk of a file or a folder's files (links not followed, unreadable entries skipped)."""
    try:
        if path.is_symlink() or path.is_file():
            return path.lstat().st_size
        total = 0
        for p in path.rglob("*"):
            try:
                if p.is_symlink() or p.is_file():
                    total += p.lstat().st_size
            except OSError:
                continue
        return total
    except OSError:
        return 0


def _children(folder: Path) -> Iterator[Path]:
    try:
        yield from sorted(folder.iterdir())
    except OSError:
        return


def _converted(folder: Path) -> list[Path]:
    """Converted models (with their manifest), half-written ones (``*.tmpPID``), and the bookkeeping files."""
    out = []
    for p in _children(folder):
        if p.is_dir() and not p.is_symlink() and ((p / CONVERTED_MARK).is_file() or ".tmp" in p.name):
            out.append(p)
        elif p.is_file() and (p.name == "gguf-sha256.json" or p.name.endswith(".lock")):
            out.append(p)
    return out


def _joined_ggufs() -> list[Path]:
    """Bundled GGUFs the app joined from chunk packages, where they are now and where older versions put them."""
    from explorer.core.models import catalog

    out = []
    for entry in catalog.bundled_entries():
        if entry.assemble_from and entry.gguf_file:
            for folder in (Path(entry.location), *catalog.legacy_gguf_dirs()):
                f = folder / entry.gguf_file
                if f.is_file() and f not in out:
                    out.append(f)
    return out


def _finetuned(folder: Path) -> list[Path]:
    return [p for p in _children(folder)
            if p.is_dir() and not p.is_symlink() and any((p / m).is_file() for m in FINETUNE_MARKS)]


def _session(folder: Path) -> list[Path]:
    return [p for p in _children(folder) if p.is_file() and (
        p.name in SESSION_FILES or (p.name.endswith(".json") and ".broken-" in p.name))]


def _areas() -> list[tuple[CacheArea, list[Path]]]:
    cache, data = paths.cache_dir(), paths.data_dir()
    from explorer.core.models import catalog

    gguf_home = catalog.gguf_dir()
    return [
        (CacheArea("converted", "Converted models", str(cache / "converted"),
                   "GGUF models de-quantised once to float32 (SmolLM2 about 0.5 GB, gemma3 about 1.1 GB); cleared, "
                   "the next load converts again (30 s to a few minutes)."), _converted(cache / "converted")),
        (CacheArea("gguf", "Joined GGUF files", str(gguf_home),
                   "gemma3's GGUF joined from its four chunk packages (242 MB), removed by itself after a checked "
                   "conversion; cleared, it is joined again when needed."), _joined_ggufs()),
        (CacheArea("finetuned", "Fine-tuned models", str(data / "finetuned"),
                   "Fine-tunes the window saved in its default folder; cleared, they are gone (fine-tunes you saved "
                   "elsewhere are not listed)."), _finetuned(data / "finetuned")),
        (CacheArea("session", "Session and settings", str(data),
                   "The last session (text, files, models, layout) and your added model folders; cleared, the "
                   "next start is a first start."), _session(data)),
    ]


def list_storage(progress: Progress = no_progress, cancel: threading.Event | None = None) -> list[CacheArea]:
    """Every area the app writes to, with the items it holds now and their sizes."""
    out = []
    for area, found in _areas():
        check(cancel)
        area.items = [StoredItem(p.name, str(p), size_of(p)) for p in found]
        out.append(area)
    return out


def clear_storage(key: str, progress: Progress = no_progress, cancel: threading.Event | None = None) -> int:
    """Delete what the area ``key`` (or ``all``) holds of the app's files; the bytes freed."""
    areas = _areas()
    keys = [a.key for a, _ in areas]
    if key != "all" and key not in keys:
        raise InputError(f"There is no storage area '{key}'; choose one of: {', '.join(keys)}, all.")
    chosen = [(a, found) for a, found in areas if key in ("all", a.key)]
    total = sum(len(found) for _, found in chosen) or 1
    freed = done = 0
    for area, found in chosen:
        for p in found:
            check(cancel)
            size = size_of(p)
            try:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
            except FileNotFoundError:
                size = 0
            except OSError as err:
                raise InputError(f"Could not delete {p}: {err.strerror or err}") from err
            freed += size
            done += 1
            progress(done / total, f"Cleared {area.label.lower()}: {p.name}")
    return freed


@dataclass
class FirstLoad:
    """What a model's first load will write to disk, said before it happens."""

    bytes: int  # the most on disk at once during the first load
    kept: int  # what stays once it is done
    folder: str
    text: str


def first_load_writes(entry, progress: Progress = no_progress,
                      cancel: threading.Event | None = None) -> FirstLoad | None:
    """What loading ``entry`` the first time will write (a GGUF's float32 conversion, and the GGUF joined from
    chunk packages, removed again after the checked conversion); None when it writes nothing (a folder model,
    or a GGUF converted before). From the GGUF header's parameter count, read without de-quantising."""
    from explorer.core.models import gguf as gguf_files

    if not entry.gguf_file or entry.source == "hub":
        return None
    target = gguf_files._gguf_cache_folder(entry)
    if (target / gguf_files.MANIFEST).is_file():
        return None
    gguf = Path(entry.location) / entry.gguf_file
    joined = 0
    whole = True
    if entry.assemble_from and not gguf.is_file():
        chunk = gguf_files.first_chunk(entry)
        if chunk is None:
            return None
        joined = gguf_files.chunk_bytes(entry)
        gguf, whole = chunk, False  # the header only: the tensors' data lies in the later chunks
    try:
        params = gguf_files.gguf_summary(gguf, whole)[1]
    except Exception:  # a damaged or odd header: nothing can be said before loading
        return None
    kept = 4 * params  # float32 safetensors; the tokenizer's files add a few MB
    total = kept + joined
    text = (f"The first load writes about {_gb(total)} to {target.parent}: a float32 copy of the GGUF "
            f"({_gb(kept)}, kept, so later loads take seconds)")
    if joined:
        text += f" and the GGUF joined from its chunk packages ({_gb(joined)}, deleted after the conversion)"
    return FirstLoad(bytes=total, kept=kept, folder=str(target.parent), text=text + ".")


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"
