"""Models the user should be protected from: too big for memory, unsupported GGUF, malicious pickles, remote code."""

from __future__ import annotations

import json
import os
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from explorer.core.io.errors import ModelError
from explorer.core.models import catalog
from explorer.core.models.gguf import gguf_summary
from explorer.core.models.loading import load_model
from explorer.core.models.memory import TooBigError, check_memory, estimate_load_bytes

_Mem = namedtuple("_Mem", "available total")


def _write_gguf(path: Path, arch: str) -> Path:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_context_length(8)
    writer.add_embedding_length(4)
    writer.add_tensor("token_embd.weight", np.zeros((10, 4), dtype=np.float32))  # 40 parameters
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((4, 4), dtype=np.float32))  # 16 more
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# ------------------------------------------------------------------ memory estimate


def test_estimate_minilm_is_float32_parameters():
    from explorer.core.models.loading import describe

    params = describe("minilm").num_parameters  # 22.7 M; the file adds a 512-entry position_ids buffer
    assert estimate_load_bytes("minilm") == pytest.approx(4 * params, rel=1e-3)


def test_estimate_smollm2_from_gguf_header(smollm2):
    entry = catalog.resolve("smollm2")
    arch, params = gguf_summary(Path(entry.location) / entry.gguf_file)
    assert arch == "llama"
    assert params == smollm2.card.num_parameters
    # Converted already (the fixture did it): one float32 copy.
    assert estimate_load_bytes(entry) == 4 * params


def test_estimate_unconverted_gguf_counts_two_copies(tmp_path):
    path = _write_gguf(tmp_path / "tiny.gguf", "llama")
    assert gguf_summary(path) == ("llama", 56)
    assert estimate_load_bytes(str(path)) == 2 * 4 * 56


def test_estimate_from_config_without_safetensors(tiny_factory, tmp_path):
    """No safetensors header to read: the config is built on the meta device instead."""
    import torch

    folder = tmp_path / "bin-only"
    shutil.copytree(tiny_factory("mlm"), folder)
    from safetensors.torch import load_file

    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    base = sum(t.numel() for t in state.values())
    estimate = estimate_load_bytes(str(folder))
    # AutoModel on the meta device is the encoder without the MLM head: a little fewer parameters.
    assert 0.5 * 4 * base < estimate <= 4 * base
    # Plain tensors in a pickle still load (weights_only=True accepts them).
    assert load_model(str(folder)).card.heads == ["mlm"]


def test_estimate_is_zero_when_unknowable(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert estimate_load_bytes(catalog.ModelEntry(name="x", source="folder", location=str(tmp_path))) == 0
    assert estimate_load_bytes(catalog.ModelEntry(name="org/m", source="hub", location="org/m")) == 0


@pytest.mark.parametrize("junk", [b"", b"1234", b"this is not a safetensors file", b"\x10\x00\x00\x00\x00\x00\x00\x00[1, 2, 3]      "])
def test_estimate_of_damaged_weights_is_zero_not_a_crash(tiny_factory, tmp_path, junk):
    folder = tmp_path / "damaged"
    shutil.copytree(tiny_factory("mlm"), folder)
    (folder / "model.safetensors").write_bytes(junk)
    assert estimate_load_bytes(str(folder)) == 0
    with pytest.raises(ModelError, match="Could not load 'damaged' .*: its weights file is damaged or incomplete"):
        load_model(str(folder))


def test_check_memory_message_names_both_sizes():
    entry = catalog.resolve("minilm")
    with pytest.raises(TooBigError) as info:
        check_memory(entry, available=50_000_000)
    message = str(info.value)
    assert "'minilm' needs about 91 MB of memory" in message
    assert "only 50 MB is free" in message
    assert isinstance(info.value, ModelError)
    assert info.value.estimate == estimate_load_bytes(entry) and info.value.available == 50_000_000
    assert check_memory(entry, available=10**12) == info.value.estimate


def test_load_model_refuses_too_big_unless_allowed(tiny_factory, monkeypatch):
    import psutil

    folder = str(tiny_factory("mlm"))
    monkeypatch.setattr(psutil, "virtual_memory", lambda: _Mem(available=1000, total=2000))
    with pytest.raises(TooBigError, match="needs about .* but only 0 MB is free"):
        load_model(folder)
    assert load_model(folder, allow_big=True).card.hidden_size == 32


# ------------------------------------------------------------------ GGUF of an unsupported architecture


def test_gguf_of_unsupported_architecture(tmp_path):
    path = _write_gguf(tmp_path / "strange.gguf", "madeupformer")
    with pytest.raises(ModelError) as info:
        load_model(str(path))
    message = str(info.value)
    assert not isinstance(info.value, TooBigError)
    assert message.startswith("strange.gguf holds a 'madeupformer' model")
    assert "cannot read from GGUF files" in message
    assert "Traceback" not in message and "\n" not in message


def test_file_named_gguf_that_is_not_one(tmp_path):
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"PK\x03\x04 this is a zip, not a gguf" * 10)
    with pytest.raises(ModelError, match="fake.gguf is not a GGUF file"):
        load_model(str(path))


# ------------------------------------------------------------------ malicious pickle


class _Evil:
    """Unpickling this runs a shell command: what a hostile pytorch_model.bin can carry."""

    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_not_executed(tiny_factory, tmp_path):
    import torch

    marker = tmp_path / "pwned"
    folder = tmp_path / "evil-model"
    shutil.copytree(tiny_factory("mlm"), folder)
    (folder / "model.safetensors").unlink()
    _Evil.marker = str(marker)
    torch.save({"bert.embeddings.word_embeddings.weight": _Evil()}, folder / "pytorch_model.bin")
    with pytest.raises(ModelError) as info:
        load_model(str(folder))
    assert not marker.exists()
    message = str(info.value)
    assert message.startswith("Refused to load 'evil-model'")
    assert "posix.system" in message and "safetensors" in message
    assert "weights_only" not in message  # no advice to switch the protection off


def test_damaged_pickle_is_not_called_malicious(tiny_factory, tmp_path):
    folder = tmp_path / "half-copied"
    shutil.copytree(tiny_factory("mlm"), folder)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"garbage, not a checkpoint")
    with pytest.raises(ModelError, match="its weights file is damaged or incomplete") as info:
        load_model(str(folder))
    assert "Refused" not in str(info.value) and "program code" not in str(info.value)


# ------------------------------------------------------------------ trust_remote_code


def test_remote_code_refused_by_default(tiny_factory, tmp_path):
    folder = tmp_path / "custom-model"
    shutil.copytree(tiny_factory("mlm"), folder)
    marker = tmp_path / "remote-code-ran"
    config = json.loads((folder / "config.json").read_text())
    config.update(
        model_type="evilbert",
        architectures=["EvilBertForMaskedLM"],
        auto_map={
            "AutoConfig": "configuration_evil.EvilConfig",
            "AutoModel": "modeling_evil.EvilBertForMaskedLM",
            "AutoModelForMaskedLM": "modeling_evil.EvilBertForMaskedLM",
        },
    )
    (folder / "config.json").write_text(json.dumps(config))
    touch = f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
    (folder / "configuration_evil.py").write_text(
        touch + "from transformers import BertConfig\n\n\nclass EvilConfig(BertConfig):\n    model_type = 'evilbert'\n"
    )
    (folder / "modeling_evil.py").write_text(touch + "from transformers import BertForMaskedLM as EvilBertForMaskedLM\n")

    assert estimate_load_bytes(str(folder)) > 0  # from file sizes, without importing the custom config
    with pytest.raises(ModelError) as info:
        load_model(str(folder))
    assert not marker.exists()
    message = str(info.value)
    assert "'custom-model' needs its own Python code" in message
    assert "trusting remote code is off" in message and "Trust remote code for this model" in message


# ------------------------------------------------------------------ the same refusals on the CLI: one line, exit 2


def test_cli_binary_file_and_bad_gguf_are_one_line(tmp_path, capsys):
    from explorer.cli import main

    picture = tmp_path / "scan.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    assert main(["mask", "--file", str(picture)]) == 2
    err = capsys.readouterr().err
    assert err == "lm-explorer: scan.png looks like a binary file, not text. Use a .txt, .md, .csv, .tsv or .jsonl file.\n"

    gguf_path = _write_gguf(tmp_path / "odd.gguf", "madeupformer")
    assert main(["info", str(gguf_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lm-explorer: odd.gguf holds a 'madeupformer' model") and err.count("\n") == 1
