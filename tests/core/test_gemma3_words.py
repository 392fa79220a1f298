"""The SentencePiece "▁" word rule on a real SentencePiece tokenizer (Gemma 3's, 262k pieces): whole words,
phrases, entities and SpanBERT spans in English and Chinese. Only the tokenizer is loaded (fixture
``gemma3_tokenizer``), not the model."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core.io.paths import resources_dir
from explorer.core.pretraining.masking import mask_text, sample_masks
from explorer.core.pretraining.units import units_for
from explorer.core.pretraining.words import tokenize_words, word_ids_split_words

EN = "Unbelievably, the tokenizers split GPT-3's pre-training corpus into pieces."
SHORT = "Google hired John Smith in New York. The quick brown fox jumps over the unbelievably lazy dog."
ZH = "我喜欢哈巴狗，他是单身狗。哈巴狗很可爱，单身狗很孤独。"
LONG = (resources_dir() / "samples" / "long-pretraining.txt").read_text(encoding="utf-8")[:1500]


def words_of(tt):
    return [tt.word_text(w).strip() for w in range(len(tt.word_spans))]


def assert_whole_words(tt, chosen: np.ndarray) -> None:
    for s, e in tt.word_spans:
        block = chosen[:, s:e]
        assert (block == block[:, :1]).all(), f"part of word {tt.tokens[s:e]} masked"


def test_gemma_word_ids_are_ignored_for_the_marker_rule(gemma3_tokenizer):
    tok = gemma3_tokenizer
    # The converted tokenizer's word_ids put the whole line in one word, "▁the" included.
    assert len({w for w in tok(EN).word_ids() if w is not None}) == 1
    assert not word_ids_split_words(tok)
    tt = tokenize_words(tok, EN)
    assert tt.grouping == "prefix"
    assert words_of(tt) == ["Unbelievably,", "the", "tokenizers", "split", "GPT-3's", "pre-training", "corpus",
                            "into", "pieces."]
    for i, t in enumerate(tt.tokens):
        if not tt.special[i]:
            assert (i == tt.word_spans[tt.words[i]][0]) == (t.startswith("▁") or tt.words[i - 1] is None), t
    assert any(e - s > 2 for s, e in tt.word_spans)  # "Un bel iev ably," is one word of several pieces


def test_gemma_newlines_start_words(gemma3_tokenizer):
    tt = tokenize_words(gemma3_tokenizer, "line one.\nSecond  line\n\nthird")
    assert words_of(tt) == ["line", "one.", "Second", "line", "third"]


def test_gemma_chinese_words_by_jieba_on_its_pieces(gemma3_tokenizer):
    tt = tokenize_words(gemma3_tokenizer, ZH)
    assert tt.grouping == "prefix+jieba"
    # Gemma keeps 哈 巴 狗 as three pieces and jieba joins them; "他是" is one piece, so one word.
    assert words_of(tt)[:8] == ["我", "喜欢", "哈巴狗", "，", "他是", "单身", "狗", "。"]
    first = words_of(tt).index("哈巴狗")
    s, e = tt.word_spans[first]
    assert tt.tokens[s:e] == ["哈", "巴", "狗"]


def test_gemma_mixed_chinese_and_english(gemma3_tokenizer):
    tt = tokenize_words(gemma3_tokenizer, "我喜欢哈巴狗。I like pugs very much.")
    assert words_of(tt) == ["我", "喜欢", "哈巴狗", "。", "I", "like", "pugs", "very", "much."]


@pytest.mark.parametrize("strategy", ["wwm", "span", "phrase", "entity"])
def test_gemma_english_masks_whole_words(gemma3_tokenizer, strategy):
    tt = tokenize_words(gemma3_tokenizer, LONG)
    chosen, _ = sample_masks(tt, strategy, samples=300, seed=3)
    assert chosen.any()
    assert_whole_words(tt, chosen)
    assert any(e - s > 1 for s, e in tt.word_spans)


@pytest.mark.parametrize("strategy", ["wwm", "span", "phrase", "entity"])
def test_gemma_chinese_masks_whole_words(gemma3_tokenizer, strategy):
    tt = tokenize_words(gemma3_tokenizer, ZH)
    chosen, _ = sample_masks(tt, strategy, samples=300, seed=4)
    assert_whole_words(tt, chosen)
    w = words_of(tt).index("哈巴狗")
    s, e = tt.word_spans[w]
    hit = chosen[:, s]
    assert hit.any() and (chosen[hit, s:e]).all()  # 哈 巴 狗 masked together whenever one is


def test_gemma_phrase_and_entity_units(gemma3_tokenizer):
    tt = tokenize_words(gemma3_tokenizer, SHORT)
    texts = {k: ["".join(tt.word_text(w) for w in range(a, b)).strip() for a, b in units_for(tt, k)[0]]
             for k in ("phrase", "entity")}
    assert "The quick brown fox" in texts["phrase"]
    # The "▁" rule keeps punctuation on the word before it (as ALBERT's SentencePiece WWM does): "York." is one word.
    assert "John Smith" in texts["entity"] and "New York." in texts["entity"]
    chosen, _ = sample_masks(tt, "entity", samples=400, seed=0)
    john = next(i for i, t in enumerate(tt.tokens) if t == "▁John")
    smith = next(i for i, t in enumerate(tt.tokens) if t == "▁Smith")
    assert (chosen[:, john] == chosen[:, smith]).all()


def test_gemma_span_masking_uses_its_mask_token(gemma3_tokenizer):
    tt = tokenize_words(gemma3_tokenizer, LONG)
    m = mask_text(tt, gemma3_tokenizer, "span", seed=1)
    assert m.masked and m.spans
    for s, e in m.spans:  # spans are whole words
        assert tt.words[s] is not None and tt.word_spans[tt.words[s]][0] == s
        assert tt.word_spans[tt.words[e - 1]][1] == e
    masked_ids = [m.input_ids[i] for i, a in zip(m.masked, m.actions, strict=True) if a == "mask"]
    assert masked_ids and set(masked_ids) == {gemma3_tokenizer.convert_tokens_to_ids("<mask>")}
    assert "no mask token" not in m.note
