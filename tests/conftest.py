"""Shared fixtures: the real bundled models (loaded once per run) and tiny random checkpoints."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Each test run starts from an empty session; the converted-model cache is kept.
os.environ["LM_EXPLORER_DATA_DIR"] = tempfile.mkdtemp(prefix="lmx-test-data-")


@pytest.fixture(scope="session")
def minilm():
    """The bundled MiniLM encoder (real weights)."""
    from explorer.core.models.loading import load_model

    return load_model("minilm")


@pytest.fixture(scope="session")
def minilm_mlm():
    """minilm-mlm: MiniLM with masked-LM pre-training continued by this project (shipped, float16)."""
    from explorer.core.models.loading import load_model

    return load_model("minilm-mlm")


@pytest.fixture(scope="session")
def smollm2():
    """The bundled SmolLM2-135M decoder (real weights, de-quantised from GGUF)."""
    from explorer.core.models.loading import load_model

    return load_model("smollm2")


@pytest.fixture(scope="session")
def gemma3():
    """The bundled Gemma 3 270M base decoder (real weights; the first run assembles and de-quantises it)."""
    from explorer.core.models.loading import load_model

    return load_model("gemma3")


@pytest.fixture(scope="session")
def gemma3_tokenizer(request):
    """Gemma's real SentencePiece tokenizer, read alone from the converted folder when it exists (seconds),
    else taken from the loaded model (which makes that folder)."""
    from explorer.core.models.catalog import resolve
    from explorer.core.models.gguf import converted_folder

    folder = converted_folder(resolve("gemma3"))
    if folder is None:
        return request.getfixturevalue("gemma3").tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)


@pytest.fixture(scope="session")
def tiny_factory(tmp_path_factory):
    """Call with a head name (see tests/tiny.py HEAD_CLASSES) to get a saved tiny checkpoint folder."""
    from tests.tiny import make_tiny_checkpoint

    made: dict[tuple, Path] = {}

    def make(head: str = "mlm", labels: list[str] | None = None) -> Path:
        key = (head, tuple(labels or ()))
        if key not in made:
            made[key] = make_tiny_checkpoint(tmp_path_factory.mktemp(f"tiny-{head}"), head, labels)
        return made[key]

    return make


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A fresh, empty data dir for one test (session, settings, user models)."""
    monkeypatch.setenv("LM_EXPLORER_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"
