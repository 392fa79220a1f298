"""Whole-word grouping: word_ids first, prefix rules as fallback, jieba for Chinese, on the real tokenizers."""

from __future__ import annotations

import pytest

from explorer.core.io.errors import InputError
from explorer.core.pretraining.words import starts_from_prefixes, tokenize_words, word_ranges_for_chars

TEXT = "Unbelievably, the tokenizers split GPT-3's pre-training corpus into pieces."
ZH = "我喜欢哈巴狗，他是单身狗。"


def words_of(tt):
    return [tt.word_text(w).strip() for w in range(len(tt.word_spans))]


def test_wordpiece_groups_continuations(minilm):
    tt = tokenize_words(minilm.tokenizer, TEXT)
    assert tt.grouping == "word_ids"
    assert "Unbelievably" in words_of(tt)
    for i, tok in enumerate(tt.tokens):
        if tok.startswith("##"):
            assert tt.words[i] == tt.words[i - 1], tok
    assert tt.words[0] is None and tt.words[-1] is None  # [CLS], [SEP]
    # word spans are contiguous and cover every non-special token exactly once
    covered = [i for s, e in tt.word_spans for i in range(s, e)]
    assert covered == tt.candidates


def test_byte_level_bpe_words_start_at_g(smollm2):
    tt = tokenize_words(smollm2.tokenizer, TEXT)
    for i, tok in enumerate(tt.tokens):
        if tok.startswith("Ġ"):
            assert i == tt.word_spans[tt.words[i]][0], tok
    assert "Unbelievably" in words_of(tt)
    assert "tokenizers" in words_of(tt)


@pytest.mark.parametrize("which", ["minilm", "smollm2"])
def test_prefix_fallback_never_splits_a_word_ids_word(which, request):
    tok = request.getfixturevalue(which).tokenizer
    a = tokenize_words(tok, TEXT)
    b = tokenize_words(tok, TEXT, use_word_ids=False)
    assert b.grouping == "prefix"
    starts_a = {s for s, _ in a.word_spans}
    starts_b = {s for s, _ in b.word_spans}
    assert starts_b <= starts_a  # the fallback may glue punctuation on, never cut inside a word


def test_prefix_rules_on_sentencepiece_and_wordpiece_pieces():
    sp = ["<s>", "▁The", "▁un", "believ", "able", "▁cat", "</s>"]
    assert starts_from_prefixes(sp, [True, False, False, False, False, False, True]) == [
        False, True, True, False, False, True, False]
    wp = ["[CLS]", "the", "un", "##believ", "##able", "cat", "[SEP]"]
    assert starts_from_prefixes(wp, [True, False, False, False, False, False, True]) == [
        False, True, True, False, False, True, False]


@pytest.mark.parametrize("which", ["minilm", "smollm2"])
def test_chinese_is_grouped_by_jieba(which, request):
    tok = request.getfixturevalue(which).tokenizer
    tt = tokenize_words(tok, ZH)
    assert tt.grouping.endswith("+jieba")
    assert words_of(tt) == ["我", "喜欢", "哈巴狗", "，", "他", "是", "单身", "狗", "。"]


def test_no_jieba_when_asked(minilm):
    tt = tokenize_words(minilm.tokenizer, ZH, chinese="off")
    assert len(tt.word_spans) == len(ZH)  # WordPiece alone: one word per character


def test_truncation_is_reported(minilm):
    tt = tokenize_words(minilm.tokenizer, "word " * 100, max_length=20)
    assert tt.n == 20 and tt.truncated and "20" in tt.note


def test_empty_text_is_an_input_error(minilm):
    with pytest.raises(InputError):
        tokenize_words(minilm.tokenizer, "   \n")


def test_char_spans_expand_to_whole_words(minilm):
    tt = tokenize_words(minilm.tokenizer, "Unbelievably good")
    # a span covering only "believ" still takes the whole first word
    assert word_ranges_for_chars(tt, [(2, 6)]) == [(0, 1)]
    assert word_ranges_for_chars(tt, [(0, 3), (5, 17)]) == [(0, 2)]  # overlaps merge


@pytest.mark.parametrize("which", ["minilm", "smollm2"])
def test_word_ids_kept_where_they_split_words(which, request):
    from explorer.core.pretraining.words import word_ids_split_words

    tok = request.getfixturevalue(which).tokenizer
    assert word_ids_split_words(tok)
    assert tokenize_words(tok, TEXT).grouping == "word_ids"
