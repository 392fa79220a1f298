"""Fine-tune folders: what each mode stores per task, written without ever deleting a user's files, and loaded
back onto the base model they were trained on.

- frozen: ``head.safetensors`` (the linear head) + ``finetune.json`` naming the base model and the sha256 of
  its weights; the encoder is shared.
- adapter: the peft adapter (LoRA matrices + the head) + ``head_config.json`` + ``finetune.json``.
- full / scratch: the whole model and its tokenizer (it opens on its own).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from explorer.core.io import paths
from explorer.core.io.errors import InputError, ModelError
from explorer.core.io.fileio import atomic_write_text, file_sha256, remembered_sha256
from explorer.core.io.limits import MAX_CONFIG_BYTES, check_model_dimensions, read_json_file
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.models import folders

META_FILE = "finetune.json"
HEAD_FILE = "head.safetensors"
# What earlier versions of the app wrote into a fine-tune folder (manifests without a "files" list).
LEGACY_FILES = (
    "config.json", "model.safetensors", "pytorch_model.bin", "generation_config.json", "adapter_config.json",
    "adapter_model.safetensors", "head_config.json", HEAD_FILE, "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "vocab.txt", "merges.txt", "vocab.json", "added_tokens.json",
    "chat_template.jinja", META_FILE,
)


def weights_sha256(folder: str | os.PathLike) -> str:
    """sha256 over the weight files of a model folder (sorted by name); cached per file size and mtime."""
    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if not files:
        raise ModelError(f"{folder} holds no weight files (*.safetensors or *.bin).")
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + remembered_sha256(f).encode())
    return digest.hexdigest()


def read_meta(folder: str | os.PathLike) -> dict | None:
    """The fine-tune manifest of a folder, if it has one."""
    try:
        meta = json.loads((Path(folder) / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


# Names a fine-tune's modes write (peft, transformers' save_pretrained, tokenizers); nothing else is ever
# treated as the app's, whatever a manifest lists.
_APP_NAME = re.compile(
    r"^(?:[\w.-]+\.(?:safetensors|bin|model)|(?:model|pytorch_model|adapter_model)[\w.-]*\.index\.json|"
    + "|".join(re.escape(n) for n in LEGACY_FILES) + r")$"
)
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.lmx-(?:saving|old)-(?P<pid>\d+)-[0-9a-f]{8}$")
_LEGACY_TEMP = ".lmx-saving-"  # what earlier versions put inside the folder while saving


def app_files(folder: Path, meta: dict) -> list[str]:
    """The files of an earlier fine-tune folder the app may replace or remove: listed in its manifest, named as
    the app names its files, regular files (not links), and with the sha256 the manifest recorded when the app
    wrote them. A manifest without hashes (older versions, or a hand-made one) proves nothing: none qualify."""
    listed, hashes = meta.get("files"), meta.get("sha256")
    if not isinstance(listed, list) or not isinstance(hashes, dict):
        return []
    out = []
    for n in (str(x) for x in listed):
        p = folder / n
        if "/" in n or "\\" in n or n == META_FILE or not _APP_NAME.match(n) or p.is_symlink() or not p.is_file():
            continue
        try:
            if hashes.get(n) == file_sha256(p):
                out.append(n)
        except OSError:
            continue
    return out


def _writable_ancestor(path: Path) -> Path:
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    return p


def _is_within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def _user_entries(out: Path) -> list[str]:
    """What a folder holds besides the app's own temporary folders of earlier versions."""
    return [c.name for c in out.iterdir() if not (c.name.startswith(_LEGACY_TEMP) and c.is_dir())]


def check_out_dir(out: str | os.PathLike, bases: list[str | os.PathLike] | tuple = ()) -> Path:
    """Refuse a folder the fine-tune must not write to, before any work: a file, a non-empty folder that is
    not an earlier fine-tune, the base model's own folder (or one holding it), or a place that cannot be
    written. Returns the resolved path."""
    out = Path(out).expanduser().resolve()
    for base in bases:
        if base and Path(str(base)).exists() and _is_within(Path(str(base)).expanduser().resolve(), out):
            raise InputError(f"{out} holds the base model of this fine-tune ({base}); saving there would replace "
                             "the model it starts from. Choose another folder.")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; give a folder to save the fine-tuned model in.")
    if out.is_dir() and _user_entries(out) and read_meta(out) is None:
        raise InputError(f"{out} is not empty and is not an earlier fine-tune. Choose a new or empty folder.")
    where = _writable_ancestor(out.parent)
    if not where.is_dir():
        raise InputError(f"Cannot save to {out}: {where} is not a folder.")
    try:
        probe = tempfile.mkdtemp(prefix=".lmx-write-check-", dir=where)
    except OSError as err:
        raise InputError(f"Cannot save to {out}: {where} is not writable ({err.strerror or err}).") from err
    os.rmdir(probe)
    return out


def is_earlier_finetune(out: str | os.PathLike) -> bool:
    """True when the folder exists, is not empty and holds an earlier fine-tune (the window asks first)."""
    p = Path(out).expanduser()
    return p.is_dir() and any(p.iterdir()) and read_meta(p) is not None


_held: dict[str, list] = {}  # out folder -> [open lock file, depth]: the lock is re-entrant within a process
_held_lock = threading.Lock()


@contextlib.contextmanager
def out_lock(out: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock of one ``--out`` folder for a whole run (training and saving): a second writer, in this or
    another process, is refused at once instead of silently replacing the first one's result."""
    target = Path(out).expanduser().resolve()
    key = str(target)
    with _held_lock:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
    if entry is not None:
        try:
            yield target
        finally:
            with _held_lock:
                entry[1] -= 1
        return
    folder = paths.cache_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    fh = open(folder / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock"), "a+")  # noqa: SIM115 - held open
    try:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not on Linux/macOS: within one process the table below still keeps writers apart
            pass
        except OSError:
            fh.seek(0)
            owner = fh.read().strip()[:20]
            raise InputError(f"Another fine-tune is saving into {target} right now"
                             f"{f' (process {owner})' if owner.isdigit() else ''}. Wait for it to finish or choose "
                             "another folder.") from None
        with _held_lock:
            if key in _held:  # another thread of this process got there first
                raise InputError(f"Another fine-tune is saving into {target} right now. Wait for it to finish or "
                                 "choose another folder.")
            _held[key] = [fh, 1]
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield target
        finally:
            with _held_lock:
                _held.pop(key, None)
    finally:
        fh.close()  # closing releases the flock


def remove_dead_temps(out: Path) -> list[Path]:
    """Delete this folder's temporary siblings (``.NAME.lmx-saving-PID-…``, ``.NAME.lmx-old-PID-…``) whose
    process is gone, and, inside it, the temporary folders earlier versions left. Call with the lock held."""
    from explorer.core.io.fileio import pid_alive

    removed: list[Path] = []
    if out.parent.is_dir():
        for child in out.parent.iterdir():
            found = _TEMP_NAME.match(child.name)
            if (found and found.group("name") == out.name and child.is_dir() and not child.is_symlink()
                    and int(found.group("pid")) != os.getpid() and not pid_alive(int(found.group("pid")))):
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child)
    if out.is_dir():
        for child in out.iterdir():
            if child.name.startswith(_LEGACY_TEMP) and child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child)
    return removed


def _temp_sibling(out: Path, kind: str) -> Path:
    return out.parent / f".{out.name}.lmx-{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _link_tree(src: Path, dst: Path) -> None:
    """``src`` mirrored at ``dst`` with hard links (no bytes copied; the original stays where it is)."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(src), str(dst))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system (a mount inside the folder) or links not allowed
        shutil.copy2(src, dst)


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False when the system cannot."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    done = renameat2(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), _RENAME_EXCHANGE)
    return done == 0


def _swap_in(tmp: Path, out: Path) -> Path | None:
    """Put the finished folder ``tmp`` at ``out`` atomically; returns where the earlier folder went (to delete)."""
    if not out.exists():
        os.rename(tmp, out)
        return None
    if out.is_dir() and not any(out.iterdir()):
        os.rename(tmp, out)  # over an empty folder
        return None
    if _exchange(tmp, out):
        return tmp  # tmp now holds the earlier result
    old = _temp_sibling(out, "old")
    os.rename(out, old)  # no atomic exchange here: the earlier result is moved aside first
    os.rename(tmp, out)
    return old


def write_folder(out: Path, write: Any, meta: dict, bases: list[str | os.PathLike] | tuple = ()) -> tuple[list[str], int]:
    """Save a fine-tune as one transaction: ``write(tmp)`` fills a new temporary folder beside ``out``; the user's
    own files in an earlier fine-tune are hard-linked into it; the manifest (file list, sizes, sha256) is written
    last; then the folder is swapped in atomically. Until the swap ``out`` holds the earlier, loadable result; a
    kill leaves only a temporary sibling, removed by the next save. Returns (files, bytes written)."""
    out = check_out_dir(out, bases)
    with out_lock(out):
        remove_dead_temps(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_sibling(out, "saving")
        tmp.mkdir()
        swapped = False
        try:
            write(tmp)
            (tmp / "README.md").unlink(missing_ok=True)  # peft's model-card stub: a user's README.md stays theirs
            names = sorted(p.name for p in tmp.iterdir() if p.is_file())
            for name in names:
                os.chmod(tmp / name, 0o644)  # normal permissions, not a temporary folder's private ones
            hashes = {n: file_sha256(tmp / n) for n in names}
            if out.is_dir():
                owned = set(app_files(out, read_meta(out) or {})) | ({META_FILE} if read_meta(out) else set())
                keep = [n for n in _user_entries(out) if n not in owned]
                clash = [n for n in keep if n in names or n == META_FILE]
                if clash:
                    raise InputError(
                        f"{out} holds {', '.join(sorted(clash)[:4])}, which the app did not write (or which changed "
                        "since it did), so it is not replaced. Move it away or choose another folder."
                    )
                for n in keep:
                    _link_tree(out / n, tmp / n)
                os.chmod(tmp, out.stat().st_mode & 0o7777)
            files = names + [META_FILE]
            size = sum((tmp / n).stat().st_size for n in names)
            meta = {**meta, "files": files, "sha256": hashes}
            body = ""
            for _ in range(3):  # the manifest counts its own bytes: settle the number
                meta["stored_bytes"] = size + len(body.encode("utf-8"))
                body = json.dumps(meta, indent=1, ensure_ascii=False)
            atomic_write_text(tmp / META_FILE, body)
            os.chmod(tmp / META_FILE, 0o644)
            old = _swap_in(tmp, out)
            swapped = True
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)  # the app's earlier files and links to the kept ones
        except OSError as err:
            raise InputError(f"Could not save to {out}: {err.strerror or err}. The earlier folder is unchanged.") from err
        finally:
            if not swapped:
                shutil.rmtree(tmp, ignore_errors=True)  # our own temporary folder only
    return files, size + (out / META_FILE).stat().st_size


# ---------------------------------------------------------------- loading


def _weights_folder(entry: Any) -> str:
    from explorer.core.models.gguf import converted_folder

    return str(converted_folder(entry) or entry.location) if entry.gguf_file else entry.location


def resolve_base(folder: str | os.PathLike, meta: dict) -> Any:
    """The catalog entry of the base model a fine-tune names, checked against the sha256 of its weights."""
    from explorer.core.models import catalog

    name, path, want = meta.get("base_model"), meta.get("base_folder"), meta.get("base_sha256")
    tried: list[str] = []
    found_other = None
    for spec in [s for s in (name, path) if s]:
        try:
            entry = catalog.resolve(str(spec))
        except ModelError:
            tried.append(str(spec))
            continue
        if entry.source == "hub" and not Path(str(spec)).exists() and spec == path:
            tried.append(str(spec))
            continue
        weights = _weights_folder(entry)
        if not want or entry.source == "hub":
            return entry
        try:
            got = weights_sha256(weights)
        except (OSError, ModelError):
            tried.append(str(spec))
            continue
        if got == want:
            return entry
        found_other = (spec, got)
    if found_other is not None:
        raise ModelError(
            f"The base model '{found_other[0]}' of the fine-tune in {folder} has different weights from the ones it "
            f"was trained on (sha256 {found_other[1][:12]}…, expected {str(want)[:12]}…). Load the same base model.")
    raise ModelError(
        f"The fine-tune in {folder} needs its base model '{name or path}', which is not available "
        f"(looked for: {', '.join(tried) or 'nothing named'}). Install or add that model, then load this folder again.")


def load_frozen_folder(entry: Any, progress: Progress = no_progress, cancel: threading.Event | None = None,
                       start: float | None = None) -> Any:
    """A frozen fine-tune (head.safetensors + finetune.json): load the base encoder and attach the head."""
    import copy
    import time

    import torch
    from safetensors.torch import load_file

    from explorer.core.models.card import build_card
    from explorer.core.models.loading import LoadedModel, load_model
    from explorer.core.tuning.probe import check_pooling, encoder_of, frozen_model

    start = time.perf_counter() if start is None else start
    folder = Path(entry.location)
    meta = read_meta(folder)
    if meta is None or meta.get("storage") != "head":
        raise ModelError(f"{folder} has {HEAD_FILE} but no readable {META_FILE} describing it.")
    base_entry = resolve_base(folder, meta)
    progress(0.1, f"Loading the base model {base_entry.name}…")
    base = load_model(base_entry, cancel=cancel)
    check(cancel)
    try:
        state = load_file(str(folder / HEAD_FILE))
        weight, bias = state["weight"], state["bias"]  # [label, hidden], [label]
        labels = [str(x) for x in meta["labels"]]
        task = str(meta["task"])
        pooling = check_pooling(str(meta.get("pooling") or "mean"))  # a QA span head pools nothing
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise ModelError(f"The head in {folder} cannot be read: {err}") from err
    if weight.shape != (len(labels), base.card.hidden_size) or bias.shape != (len(labels),):
        raise ModelError(f"The head in {folder} does not fit {base_entry.name} (shape {tuple(weight.shape)}).")
    head = torch.nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        head.weight.copy_(weight.float())
        head.bias.copy_(bias.float())
    config = copy.deepcopy(base.model.config)
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {lab: i for i, lab in enumerate(labels)}
    config.problem_type = "single_label_classification" if task != "tokens" else None
    model = frozen_model(encoder_of(base.model), head, pooling, task, config)
    config.architectures = [type(model).__name__]
    card = build_card(entry, config, base.tokenizer, model)
    card.extra.update(finetune_base=base_entry.name, pooling=pooling, storage="head")
    elapsed = time.perf_counter() - start
    progress(1.0, f"Loaded {entry.name} (a {task} head on {base_entry.name}) in {elapsed:.1f} s")
    return LoadedModel(name=entry.name, entry=entry, model=model, tokenizer=base.tokenizer, card=card,
                       load_seconds=elapsed)


def load_adapter_folder(entry: Any, progress: Progress, cancel: threading.Event | None, start: float) -> Any:
    """A peft adapter folder (adapter_config.json, no config.json): load the base model it names with the
    head described in head_config.json (label names), apply the adapter and merge it into the weights."""
    import time
    import warnings

    import torch
    import transformers
    from peft import PeftModel
    from transformers import AutoConfig

    from explorer.core.models import catalog
    from explorer.core.models.card import build_card, heads_from_architectures
    from explorer.core.models.gguf import converted_folder
    from explorer.core.models.loading import (
        LoadedModel,
        auto_class_name,
        friendly_load_error,
        hub_kwargs,
        load_tokenizer,
        refuse_custom_code,
    )

    folder = Path(entry.location)
    refuse_custom_code(entry, folder, False)
    adapter_cfg = read_json_file(folder / "adapter_config.json", MAX_CONFIG_BYTES, f"{folder}/adapter_config.json",
                                 ModelError)
    if not isinstance(adapter_cfg, dict):
        raise ModelError(f"{folder}/adapter_config.json is not a JSON object.")
    base = adapter_cfg.get("base_model_name_or_path")
    if not base:
        raise ModelError(f"The adapter in {folder} does not name its base model (base_model_name_or_path).")
    meta = read_meta(folder)
    if meta is not None and (meta.get("base_model") or meta.get("base_folder")):
        base_entry = resolve_base(folder, meta)  # the named base model, its weights' hash checked
    else:
        known = {str(Path(e.location).resolve()): e for e in catalog.bundled_entries() + catalog.user_entries()}
        base_entry = known.get(str(Path(base).expanduser().resolve())) if not _looks_like_id(base) else None
        base_entry = base_entry or catalog.resolve(base)
    base_converted = converted_folder(base_entry)
    base_folder = str(base_converted or base_entry.location)
    refuse_custom_code(base_entry, base_folder, False)
    kwargs = hub_kwargs(base_entry)
    try:
        progress(0.2, f"Loading the base model {base_entry.name} of the adapter…")
        config = AutoConfig.from_pretrained(base_folder, **kwargs)
        head_file = folder / "head_config.json"
        if head_file.is_file():
            head = read_json_file(head_file, MAX_CONFIG_BYTES, f"{entry.name}'s head_config.json", ModelError)
            if not isinstance(head, dict):
                raise ModelError(f"{entry.name}'s head_config.json is not a JSON object.")
            check_model_dimensions(head, entry.name)  # before transformers builds anything from it
            config = type(config).from_dict(head)
        heads = heads_from_architectures(getattr(config, "architectures", None))
        auto_cls = getattr(transformers, auto_class_name(heads))
        own = (folder / "tokenizer_config.json").is_file()
        tokenizer = load_tokenizer(str(folder if own else base_folder), not own and base_converted is not None, kwargs)
        check(cancel)
        model = auto_cls.from_pretrained(
            base_folder, config=config, attn_implementation="eager", dtype=torch.float32,
            ignore_mismatched_sizes=True, **kwargs,
        )
        progress(0.7, "Applying the adapter…")
        with warnings.catch_warnings():  # peft calls a transformers method deprecated in 5.x
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    except ModelError:
        raise
    except Exception as err:
        raise friendly_load_error(entry, err) from err
    model.eval()
    card = build_card(entry, config, tokenizer, model)
    card.extra["adapter_base"] = base_entry.name
    card.extra["adapter_type"] = adapter_cfg.get("peft_type", "")
    elapsed = time.perf_counter() - start
    progress(1.0, f"Loaded {entry.name} (adapter on {base_entry.name}) in {elapsed:.1f} s")
    return LoadedModel(name=entry.name, entry=entry, model=model, tokenizer=tokenizer, card=card, load_seconds=elapsed)


def _looks_like_id(spec: str) -> bool:
    return "/" in spec and not spec.startswith((".", "/", "~")) and not Path(spec).exists()


# The model loader opens these folders through models' registry: it does not import tuning.
folders.register("adapter_config.json", load_adapter_folder)
folders.register(HEAD_FILE, load_frozen_folder)
