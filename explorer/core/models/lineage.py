"""Where a bundled model comes from, read from what ships with it: the model card (README.md) of a folder, the
``general.*`` metadata of a GGUF file, plus the published facts its card points to (each step names its source).

The lecture's "distillation" is a student trained to imitate a teacher; all-MiniLM-L6-v2 is the student of a
student (MiniLM's self-attention distillation, then every second layer kept), so its lineage is the example.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from explorer.core.models import catalog
from explorer.core.models.catalog import ModelEntry

_DISTILLED = re.compile(r"distill\w* from")  # "distilled from", "knowledge distillation from"; not "(not distilled)"
_HUB_LINK = re.compile(r"huggingface\.co/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)")
# Published facts about models a bundled card names, with where they are written. Keys: a hub id or a GGUF
# basename as the files spell it.
KNOWN: dict[str, list[tuple[str, str, str]]] = {
    "nreimers/MiniLM-L6-H384-uncased": [
        ("microsoft/MiniLM-L12-H384-uncased", "every second layer kept from",
         "the nreimers/MiniLM-L6-H384-uncased model card"),
        ("a BERT-base-sized teacher (12 layers, hidden 768)", "distilled from (deep self-attention distillation)",
         "Wang et al. 2020, MiniLM, arXiv:2002.10957; the release used UniLMv2-Base"),
    ],
    "smollm2": [
        ("HuggingFaceTB/SmolLM2-135M", "instruction-tuned from",
         "GGUF general.finetune; Allal et al. 2025, SmolLM2, arXiv:2502.02737"),
        ("2 trillion tokens of web, code and maths text", "pre-trained from scratch on (not distilled)",
         "Allal et al. 2025, SmolLM2, arXiv:2502.02737"),
    ],
    "gemma3": [
        ("a larger Gemma teacher", "trained with knowledge distillation from",
         "Gemma Team 2025, Gemma 3 Technical Report, arXiv:2503.19786"),
    ],
}
GGUF_TYPES = {2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 15: "Q4_K_M", 17: "Q5_K_M", 18: "Q6_K", 1: "F16", 0: "F32"}


@dataclass
class LineageStep:
    name: str
    relation: str  # how the model before it relates to this one ("fine-tuned from", "distilled from", …)
    source: str  # where this is written: a file and line, a GGUF key, or a publication


@dataclass
class Lineage:
    model: str
    summary: str
    steps: list[LineageStep] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def distilled(self) -> bool:
        return any(_DISTILLED.search(s.relation) for s in self.steps)


def card_steps(readme: Path) -> list[LineageStep]:
    """Hub models the card says this one was built from (a line linking a model and saying 'pretrained' or
    'base'), with the line they are on."""
    steps: list[LineageStep] = []
    try:
        lines = readme.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return steps
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if line.startswith("base_model:"):
            ids = [line.split(":", 1)[1].strip()]
        elif re.search(r"pre-?trained|base model|fine-?tuned from|distil", line, re.I):
            ids = _HUB_LINK.findall(line)
        else:
            continue
        for hub_id in ids:
            if hub_id and hub_id not in seen:
                seen.add(hub_id)
                steps.append(LineageStep(hub_id, "fine-tuned from", f"{readme.name} line {number}"))
    return steps


def gguf_steps(path: Path) -> list[LineageStep]:
    """Name, organisation, size, fine-tune and quantisation from a GGUF file's ``general.*`` metadata."""
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(path))
    except Exception:  # not readable here: the card says nothing then
        return []
    meta = {}
    for key in ("general.name", "general.organization", "general.basename", "general.size_label",
                "general.finetune", "general.file_type", "general.base_model.0.name"):
        f = reader.fields.get(key)
        if f is not None:
            try:
                meta[key] = f.contents()
            except Exception:
                continue
    steps = []
    if "general.file_type" in meta:
        kind = GGUF_TYPES.get(int(meta["general.file_type"]), f"type {meta['general.file_type']}")
        steps.append(LineageStep(f"{meta.get('general.name', path.stem)}", f"quantised to {kind} GGUF from",
                                 f"{path.name}: general.file_type, general.name"))
    if "general.base_model.0.name" in meta:
        steps.append(LineageStep(str(meta["general.base_model.0.name"]), "fine-tuned from",
                                 f"{path.name}: general.base_model.0.name"))
    return steps


def lineage(spec: str | ModelEntry) -> Lineage:
    """The steps from a model back to what it was made from, each with its source."""
    entry = spec if isinstance(spec, ModelEntry) else catalog.resolve(spec)
    folder = Path(entry.location)
    steps: list[LineageStep] = []
    if entry.name == "minilm-mlm":
        steps.append(LineageStep("minilm (sentence-transformers/all-MiniLM-L6-v2)",
                                 "masked-LM pre-training continued from", "this project's model card (README.md)"))
        steps += lineage("minilm").steps
    elif entry.gguf_file:
        steps += gguf_steps(folder / entry.gguf_file)
    elif (folder / "README.md").is_file():
        steps += card_steps(folder / "README.md")
    for key in [s.name for s in steps] + [entry.name]:
        steps += [LineageStep(n, r, s) for n, r, s in KNOWN.get(key, []) if n not in {x.name for x in steps}]
    if not steps:
        summary = "its files name no model it was made from"
    elif any(_DISTILLED.search(s.relation) for s in steps):
        summary = "a distilled model: " + " ← ".join([entry.name] + [s.name for s in steps])
    else:
        summary = " ← ".join([entry.name] + [s.name for s in steps])
    return Lineage(entry.name, summary, steps)
