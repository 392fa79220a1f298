"""Hostile inputs from issue 15: BOM-less UTF-16, huge texts (only what the model takes is tokenized), a word
that lies beyond the token limit, damaged GGUF headers."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import pytest

from explorer.core.io.errors import InputError, ModelError
from explorer.core.io.fileio import read_text_file

TEXTS = {
    "english": "The bank of the river is steep, and the bank in town lends money. " * 6,
    "chinese": "哈巴狗和单身狗都是狗，但它们的意思不一样。" * 6,
    "russian": "Берег реки крутой, а банк в городе даёт деньги. " * 6,
}


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le"])
@pytest.mark.parametrize("language", list(TEXTS))
def test_utf16_without_bom_is_read_not_refused(tmp_path, codec, language):
    path = tmp_path / "t.txt"
    path.write_bytes(TEXTS[language].encode(codec))
    tf = read_text_file(path)
    assert tf.text == TEXTS[language]
    assert tf.encoding == codec and "no byte-order mark" in tf.note


@pytest.mark.parametrize("blob", [os.urandom(8192), b"\x00" * 4096, bytes(range(256)) * 32])
def test_binary_with_nul_bytes_is_still_refused(tmp_path, blob):
    path = tmp_path / "b.txt"
    path.write_bytes(blob)
    with pytest.raises(InputError, match="binary"):
        read_text_file(path)


def _long_text(words: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    vocab = "the river bank money loan water account deposit shore fish boat 银行 河岸 café naïve".split()
    return " ".join(rng.choice(vocab) + ("." if rng.random() < 0.1 else "") for _ in range(words))


@pytest.mark.parametrize("model", ["minilm", "smollm2"])
def test_clip_keeps_exactly_the_tokens_the_model_sees(request, model):
    """Reference: the tokenizer on the whole text, truncated to the limit."""
    from explorer.core.models.truncate import clip_to_tokens

    tok = request.getfixturevalue(model).tokenizer
    text = _long_text(60_000)
    for limit in (64, 512, 2048):
        prefix, cut = clip_to_tokens(tok, text, limit)
        assert cut and len(prefix) < len(text) / 3
        full = tok(text, add_special_tokens=False)["input_ids"][:limit]
        assert tok(prefix, add_special_tokens=False)["input_ids"][:limit] == full
    short = "a short text"
    assert clip_to_tokens(tok, short, 512) == (short, False)


def test_huge_text_is_masked_from_its_first_tokens(minilm):
    from explorer.core.pretraining.words import tokenize_words

    text = _long_text(400_000)  # about 2.7 MB
    tt = tokenize_words(minilm.tokenizer, text, max_length=minilm.max_length)
    assert tt.truncated and "more than 512 tokens" in tt.note
    reference = minilm.tokenizer(text[:20_000], truncation=True, max_length=512)["input_ids"]
    assert tt.ids == reference


def test_huge_text_attention_analysis_uses_the_model_limit(minilm):
    from explorer.core.inspect.analysis import analyse

    text = _long_text(400_000)
    a = analyse(minilm, text)
    assert a.truncated and a.num_tokens == 512 and "more than 512" in a.note
    assert a.input_ids == minilm.tokenizer(text[:20_000], truncation=True, max_length=512)["input_ids"]


def test_word_beyond_the_limit_says_so(minilm):
    from explorer.core.inspect.embeddings import Context, compare_contexts

    late = " ".join(["water"] * 700) + " The bank was steep."
    with pytest.raises(InputError, match="occurs only beyond the first 512 tokens"):
        compare_contexts(minilm, [Context(late, "bank"), Context("the river bank", "bank")], n_pairs=10)
    with pytest.raises(InputError, match="does not occur"):
        compare_contexts(minilm, [Context(late, "loan"), Context("the river bank", "bank")], n_pairs=10)


def test_gguf_with_valid_magic_and_random_bytes_is_a_model_error(tmp_path):
    from explorer.core.models.gguf import gguf_summary

    rng = random.Random(15)
    for i in range(200):
        path = tmp_path / f"r{i}.gguf"
        path.write_bytes(b"GGUF" + struct.pack("<I", 3) + rng.randbytes(40 + 53 * i))
        with pytest.raises(ModelError):
            gguf_summary(path)


def test_cli_random_gguf_is_one_line(tmp_path, capsys):
    from explorer.cli import main

    folder = tmp_path / "g"
    folder.mkdir()
    (folder / "m.gguf").write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**62, 2**61) + os.urandom(4096))
    assert main(["info", str(folder)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "damaged" in err


def test_gguf_with_a_damaged_tensor_name_is_refused_not_loaded_half_random(tmp_path, capsys):
    """One flipped letter in a tensor's name ("blk.0.attn_q" -> "attn_r"): transformers would leave that weight
    at random values and load; the app refuses the file in one line."""
    from explorer.cli import main
    from explorer.core.models.catalog import resolve

    entry = resolve("smollm2")
    data = bytearray((Path(entry.location) / entry.gguf_file).read_bytes())
    at = data.find(b"blk.0.attn_q.weight")
    assert at > 0
    data[at + len("blk.0.attn_")] = ord("r")
    folder = tmp_path / "flipped"
    folder.mkdir()
    (folder / "model.gguf").write_bytes(bytes(data))
    assert main(["info", str(folder)]) == 2
    # the CLI's TQDM_DISABLE acts when tqdm is first imported, in its own process; in this suite it was earlier
    lines = [ln for ln in capsys.readouterr().err.strip().splitlines() if "de-quantizing GGUF tensors" not in ln]
    assert len(lines) == 1 and "lacks 1 weight(s)" in lines[0] and "q_proj" in lines[0], lines
