"""The converted models' tokenizers loaded from prepared parts (explorer.core.models.prepared_tokenizer) are the same
tokenizers as transformers' own loads: the same backend JSON, and the same ids, offsets, word ids and decoding
on text this project did not write (WordNet glosses) and on non-ASCII, Chinese and emoji text. Old caches get
their parts on the next load; damaged parts are noticed and replaced or bypassed."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from explorer.core.models import catalog, prepared_tokenizer
from explorer.core.models.gguf import converted_folder
from explorer.core.models.loading import load_tokenizer as _load_tokenizer

WORDNET = Path("/usr/share/wordnet/data.noun")
MIXED = [
    "Café déjà vu — naïve coöperation, Straße, Ωμέγα, Привет мир!",
    "一只哈巴狗和一只单身狗在公园里散步。今天天气很好，我们去北京大学吧。",
    "Emoji: 🤗🚀👩‍👩‍👧‍👦 ✔️ 🇫🇷 and a ZWJ sequence, then tabs\tand   spaces\n\nnew lines  ",
    "日本語のテキストと한국어 텍스트, mixed with code: def f(x): return x**2  # ∑∫√",
    "",
]


def wordnet_text() -> str:
    """About 150 noun glosses from WordNet (installed by the Makefile), or the Python license text."""
    if WORDNET.is_file():
        lines = WORDNET.read_text(encoding="utf-8", errors="replace").splitlines()
        glosses = [ln.split(" | ", 1)[1].strip() for ln in lines[3000:3150] if " | " in ln]
        return " ".join(glosses)
    import sys

    return (Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" /
            "LICENSE.txt").read_text(encoding="utf-8")[:12000]


def assert_same_tokenizer(new, ref) -> None:
    """Same class, specials and vocabulary size; same ids, offsets, word ids and decoding on every text."""
    assert type(new) is type(ref)
    assert len(new) == len(ref)
    assert (new.bos_token_id, new.eos_token_id, new.pad_token_id, new.unk_token_id) == (
        ref.bos_token_id, ref.eos_token_id, ref.pad_token_id, ref.unk_token_id)
    texts = [wordnet_text(), *MIXED, f"{ref.bos_token or ''}{MIXED[0]}{ref.eos_token or ''}"]
    assert len(texts[0]) > 2000
    for text in texts:
        a = new(text, return_offsets_mapping=True)
        b = ref(text, return_offsets_mapping=True)
        assert a["input_ids"] == b["input_ids"], text[:80]
        assert a["offset_mapping"] == b["offset_mapping"], text[:80]
        assert a.word_ids() == b.word_ids(), text[:80]
        assert new.decode(a["input_ids"]) == ref.decode(b["input_ids"])
        assert new.decode(a["input_ids"], skip_special_tokens=True) == ref.decode(b["input_ids"], skip_special_tokens=True)
    batch_a = new(texts[:3], padding=True, return_offsets_mapping=True)
    batch_b = ref(texts[:3], padding=True, return_offsets_mapping=True)
    assert batch_a["input_ids"] == batch_b["input_ids"] and batch_a["attention_mask"] == batch_b["attention_mask"]


def tokenizer_files(folder: Path, to: Path) -> Path:
    """A cache folder as an older version left it: the tokenizer files transformers wrote, no prepared parts."""
    to.mkdir(parents=True, exist_ok=True)
    for p in folder.iterdir():
        if p.is_file() and (p.name.startswith("tokenizer") or p.name.startswith("chat_template")):
            shutil.copyfile(p, to / p.name)
    return to


@pytest.fixture(scope="module")
def smol_folder(smollm2) -> Path:
    folder = converted_folder(catalog.resolve("smollm2"))
    assert folder is not None
    return folder


def test_smollm2_loads_from_prepared_parts(smollm2, smol_folder):
    # The load wrote the parts beside the cache's tokenizer.json and read the tokenizer from them.
    assert (smol_folder / prepared_tokenizer.PREPARED / prepared_tokenizer.PARTS).is_file()
    assert smollm2.tokenizer.name_or_path == str(smol_folder)
    from transformers import AutoTokenizer

    previous = AutoTokenizer.from_pretrained(str(smol_folder), local_files_only=True, trust_remote_code=False)
    assert smollm2.tokenizer.backend_tokenizer.to_str() == previous.backend_tokenizer.to_str()
    assert_same_tokenizer(smollm2.tokenizer, previous)
    chat = [{"role": "user", "content": "What is 2+2?"}]
    assert smollm2.tokenizer.apply_chat_template(chat, tokenize=False) == previous.apply_chat_template(chat, tokenize=False)


def test_smollm2_same_as_the_gguf_tokenizer(smollm2):
    # The independent reference: transformers reading the tokenizer straight from the bundled GGUF file.
    from transformers import AutoTokenizer

    entry = catalog.resolve("smollm2")
    ref = AutoTokenizer.from_pretrained(entry.location, gguf_file=entry.gguf_file, local_files_only=True)
    assert_same_tokenizer(smollm2.tokenizer, ref)


def test_old_cache_is_upgraded_and_saves_the_same_files(smol_folder, tmp_path):
    old = tokenizer_files(smol_folder, tmp_path / "old")
    tok = prepared_tokenizer.load(old, local_files_only=True, trust_remote_code=False)
    assert tok is not None and (old / prepared_tokenizer.PREPARED / "check.json").is_file()
    from transformers import AutoTokenizer

    ref = AutoTokenizer.from_pretrained(str(old), local_files_only=True, trust_remote_code=False)
    assert tok.backend_tokenizer.to_str() == ref.backend_tokenizer.to_str()
    # A model saved from the app (fine-tuning) carries the same tokenizer files as before.
    tok.save_pretrained(tmp_path / "a")
    ref.save_pretrained(tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "a").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    # The backend was handed over without a copy, but a deep copy of the tokenizer is still a copy.
    clone = copy.deepcopy(tok)
    assert clone.backend_tokenizer is not tok.backend_tokenizer
    assert not hasattr(tok.backend_tokenizer, "__deepcopy__")


def test_damaged_parts_are_rewritten(smol_folder, tmp_path):
    folder = tokenizer_files(smol_folder, tmp_path / "c")
    parts = prepared_tokenizer.prepare(folder) / prepared_tokenizer.PARTS
    good = parts.read_bytes()
    # Same size, other bytes (a token renamed): the checksum notices it and the parts are written again.
    parts.write_bytes(good.replace(b'"hello"', b'"HELLO"', 1))
    assert parts.read_bytes() != good and len(parts.read_bytes()) == len(good)
    tok = prepared_tokenizer.load(folder, local_files_only=True)
    assert parts.read_bytes() == good
    assert tok.backend_tokenizer.to_str() == Tokenizer.from_file(str(folder / "tokenizer.json")).to_str()


def test_unreadable_parts_fall_back_to_tokenizer_json(smol_folder, tmp_path):
    folder = tokenizer_files(smol_folder, tmp_path / "d")
    prepared = prepared_tokenizer.prepare(folder)
    parts = prepared / prepared_tokenizer.PARTS
    lines = parts.read_text(encoding="utf-8").splitlines(keepends=True)
    parts.write_text("".join(lines[:-3]), encoding="utf-8")  # cut short, and the checksum list agrees
    prepared_tokenizer._write_check(prepared)
    with pytest.raises(ValueError):
        prepared_tokenizer.build_backend(parts)
    assert prepared_tokenizer.load(folder, local_files_only=True) is None  # the broken folder is removed
    tok = _load_tokenizer(str(folder), True, {"local_files_only": True, "trust_remote_code": False})
    assert tok.backend_tokenizer.to_str() == Tokenizer.from_file(str(folder / "tokenizer.json")).to_str()
    assert (folder / prepared_tokenizer.PREPARED).is_dir()  # and written again by that load


def test_not_a_bpe_tokenizer_is_left_alone(tmp_path):
    # MiniLM's WordPiece tokenizer.json: nothing is prepared, the ordinary load is used.
    minilm = Path(catalog.resolve("minilm").location)
    folder = tokenizer_files(minilm, tmp_path / "wp")
    assert json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["model"]["type"] == "WordPiece"
    assert prepared_tokenizer.prepare(folder) is None
    assert prepared_tokenizer.load(folder) is None
    assert not (folder / prepared_tokenizer.PREPARED).exists()


def test_gemma3_prepared_same_as_before(gemma3, gemma3_tokenizer):
    # gemma3's tokenizer (262,144 tokens, 514,906 merges, 6,384 added tokens, class GemmaTokenizer) loaded by
    # load_model from its parts, against transformers' own load of the same converted folder.
    folder = converted_folder(catalog.resolve("gemma3"))
    assert (folder / prepared_tokenizer.PREPARED / prepared_tokenizer.PARTS).is_file()
    assert gemma3.tokenizer.backend_tokenizer.to_str() == gemma3_tokenizer.backend_tokenizer.to_str()
    assert_same_tokenizer(gemma3.tokenizer, gemma3_tokenizer)


def test_damaged_tokenizer_json_is_left_to_the_ordinary_load(smol_folder, tmp_path):
    folder = tokenizer_files(smol_folder, tmp_path / "e")
    data = (folder / "tokenizer.json").read_bytes()
    (folder / "tokenizer.json").write_bytes(data[: len(data) // 2])  # cut in the middle of the merges
    assert prepared_tokenizer.prepare(folder) is None
    assert not (folder / prepared_tokenizer.PREPARED).exists()
    assert not list(folder.glob(f"{prepared_tokenizer.PREPARED}.tmp*"))
