"""Objectives: exact inputs, targets and attention masks of BART, MASS, XLNet, UniLM, ELECTRA and GPT."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.core.io.errors import InputError
from explorer.core.pretraining.objectives import (
    OBJECTIVES,
    ObjectiveParams,
    attention_chart,
    run_objective,
    split_source_target,
)

TEXT = ("BERT masks some words and predicts them. GPT predicts the next word from the left! "
        "XLNet permutes the factorisation order. BART corrupts and rebuilds whole documents.")


def run(kind, lm, seed=0, **kw):
    return run_objective(kind, lm.tokenizer, TEXT, seed=seed, generator=lm, **kw)


def test_gpt_is_causal(minilm):
    r = run("gpt", minilm)
    n = r.tt.n
    assert (r.attention_mask == np.tril(np.ones((n, n)))).all()
    assert r.target_tokens[:-1] == r.tt.tokens[1:] and r.target_tokens[-1] is None


def test_unilm_masks(minilm):
    bi, l2r = run("unilm-bidirectional", minilm, seed=3), run("unilm-left-to-right", minilm, seed=3)
    n = bi.tt.n
    assert bi.attention_mask.all()
    assert (l2r.attention_mask == np.tril(np.ones((n, n)))).all()
    assert bi.input_tokens == l2r.input_tokens  # same seed, same BERT masking
    masked = [i for i, a in enumerate(bi.input_actions) if a]
    assert len(masked) == round(0.15 * len(bi.tt.candidates))
    assert all(bi.target_tokens[i] == bi.tt.tokens[i] for i in masked)


def test_unilm_seq2seq_mask(minilm):
    r = run("unilm-seq2seq", minilm, seed=1)
    seg = np.array(r.tt.segments)
    m = r.attention_mask
    src, tgt = np.flatnonzero(seg == 0), np.flatnonzero(seg == 1)
    assert len(src) > 2 and len(tgt) > 2
    assert m[np.ix_(src, src)].all() and not m[np.ix_(src, tgt)].any()  # source never sees the target
    assert m[np.ix_(tgt, src)].all()
    sub = m[np.ix_(tgt, tgt)]
    assert (sub == np.tril(np.ones_like(sub))).all()  # target: itself and its left
    assert all(r.tt.segments[i] == 1 for i, a in enumerate(r.input_actions) if a)  # only the target is masked


def test_split_source_target():
    assert split_source_target("One. Two three.") == ("One.", "Two three.")
    assert split_source_target("a b c d") == ("a b", "c d")
    with pytest.raises(InputError):
        split_source_target("x")


def test_xlnet_streams(minilm):
    r = run("xlnet", minilm, seed=4)
    cand = r.tt.candidates
    assert sorted(r.order) == cand
    rank = {p: k for k, p in enumerate(r.order)}
    c, q = r.attention_mask, r.query_mask
    for i in cand:
        for j in cand:
            assert c[i, j] == (rank[j] <= rank[i])
            assert q[i, j] == (rank[j] < rank[i])
    first = r.order[0]
    assert q[first, cand].sum() == 0  # the first in the order sees no content at all
    predicted = [i for i, t in enumerate(r.target_tokens) if t is not None]
    assert sorted(predicted) == sorted(r.order[-math.ceil(len(cand) / 6):])
    r2 = run("xlnet", minilm, seed=5)
    assert r2.order != r.order


def test_bart_token_mask_and_delete(smollm2):
    tm = run("token-mask", smollm2, seed=2)
    n_c = len(tm.tt.candidates)
    assert tm.input_tokens.count("<mask>") == round(0.15 * n_c)
    assert tm.target_tokens == tm.tt.tokens
    assert tm.attention_mask.shape == (2 * tm.tt.n, 2 * tm.tt.n)
    td = run("token-delete", smollm2, seed=2)
    assert len(td.input_tokens) == td.tt.n - round(0.15 * n_c)
    assert td.original_actions.count("deleted") == round(0.15 * n_c)
    assert td.input_tokens == [t for t, a in zip(td.tt.tokens, td.original_actions, strict=True) if a != "deleted"]


def test_encoder_decoder_matrix(minilm):
    r = run("mass", minilm, seed=0)
    e = r.n_encoder
    m = r.attention_mask
    d = m.shape[0] - e
    assert d == len(r.target_tokens)
    assert m[:e, :e].all() and not m[:e, e:].any()  # encoder never sees the decoder
    assert m[e:, :e].all()  # cross-attention to the whole input
    assert (m[e:, e:] == np.tril(np.ones((d, d)))).all()


def test_mass_fragment(minilm):
    r = run("mass", minilm, seed=6)
    masked = [i for i, a in enumerate(r.input_actions) if a == "mask"]
    assert masked == list(range(masked[0], masked[-1] + 1))  # one contiguous fragment
    assert len(masked) == round(0.5 * len(r.tt.candidates))
    assert r.target_tokens == [r.tt.tokens[i] for i in masked]


def test_text_infill(minilm):
    lengths = []
    for seed in range(40):
        r = run("text-infill", minilm, seed=seed)
        kept = [r.input_source[k] for k, a in enumerate(r.input_actions) if a is None]
        assert kept == sorted(kept)  # the unmasked input is the original, in order
        covered = [i for i, a in enumerate(r.original_actions) if a == "mask"]
        # each maximal covered run became exactly one mask token
        runs = 0 if not covered else 1 + int((np.diff(covered) > 1).sum())
        assert r.input_actions.count("mask") == runs
        words = {r.tt.words[i] for i in covered}
        assert len(words) <= math.ceil(0.3 * len(r.tt.word_spans))
        for w in words:
            s, e = r.tt.word_spans[w]
            assert all(r.original_actions[i] == "mask" for i in range(s, e))  # whole words
        lengths += r.extra["span_lengths_words"][:-1]  # the last is trimmed to the budget
    assert np.mean(lengths) == pytest.approx(3.0, abs=0.5)  # Poisson(λ = 3)
    assert 0 in lengths  # 0-length spans exist (and insert a mask)
    r = run_objective("text-infill", minilm.tokenizer, TEXT, seed=0, params=ObjectiveParams(poisson_lambda=1.0))
    assert r.extra["span_lengths_words"] != run("text-infill", minilm, seed=0).extra["span_lengths_words"]


def test_sentence_permutation_and_rotation(minilm):
    seen = set()
    for seed in range(10):
        r = run("sentence-permute", minilm, seed=seed)
        assert Counter(r.input_tokens) == Counter(r.tt.tokens)
        seen.add(tuple(r.extra["sentence_order"]))
    assert len(seen) > 1 and all(sorted(s) == [0, 1, 2, 3] for s in seen)
    r = run("document-rotate", minilm, seed=1)
    cand = r.tt.candidates
    start = cand.index(r.extra["rotation_start"])
    assert start > 0
    assert r.input_source == [0] + cand[start:] + cand[:start] + [r.tt.n - 1]


def test_electra_generators(minilm, minilm_mlm, smollm2, tiny_factory):
    from explorer.core.models.loading import load_model

    r1 = run_objective("electra", minilm.tokenizer, TEXT, seed=0, generator=[minilm, minilm_mlm])
    assert r1.generator.startswith("minilm-mlm (masked LM") and r1.extra["generator_kind"] == "mlm"
    r = run("electra", smollm2, seed=0)
    assert "causal LM" in r.generator and r.extra["generator_kind"] == "causal-lm"
    mlm = load_model(str(tiny_factory("mlm")))
    r3 = run_objective("electra", mlm.tokenizer, "the dog and the cat love paris", seed=0, generator=mlm)
    assert "masked LM" in r3.generator
    r4 = run_objective("electra", minilm.tokenizer, TEXT, seed=0, generator=None)
    assert r4.extra["generator_kind"] == "random" and "random" in r4.generator
    for res in (r1, r, r3, r4):
        for i, t in enumerate(res.target_tokens):
            if t is None:
                assert res.tt.special[i]
            else:
                assert (t == "replaced") == (res.input_tokens[i] != res.tt.tokens[i])
        assert res.attention_mask.all()
    # a causal LM's sample often IS the original token (a random one almost never is): labelled "original"
    kept = sum(run("electra", smollm2, seed=s).input_actions.count("keep") for s in range(3))
    assert kept >= 1


def test_seeds_reproducible_for_every_objective(minilm):
    for kind in OBJECTIVES:
        a = run(kind, minilm, seed=9).to_dict()
        b = run(kind, minilm, seed=9).to_dict()
        assert a == b, kind


def test_attention_chart(minilm):
    r = run("xlnet", minilm, seed=0)
    c, q = attention_chart(r), attention_chart(r, "query")
    assert c.kind == "heatmap" and c.matrix.shape == (r.tt.n, r.tt.n)
    assert "content" in c.title and "query" in q.title
    assert (c.matrix - q.matrix).sum() == len(r.tt.candidates)  # content = query + the diagonal


def test_unknown_objective(minilm):
    with pytest.raises(InputError):
        run("nope", minilm)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=1, max_size=60), seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(OBJECTIVES))
def test_random_unicode_text(minilm, text, seed, kind):
    try:
        r = run_objective(kind, minilm.tokenizer, text, seed=seed, max_length=64)
    except InputError:
        return
    m = r.attention_mask
    assert m.shape[0] == m.shape[1] == len(r.row_labels)
    assert set(np.unique(m)) <= {0, 1}
    assert len(r.input_actions) == len(r.input_tokens) == len(r.input_source)
    assert run_objective(kind, minilm.tokenizer, text, seed=seed, max_length=64).to_dict() == r.to_dict()


def test_electra_generator_choice_and_no_special_or_unused(minilm, minilm_mlm, smollm2):
    from explorer.core.pretraining.objectives import pick_generator, replacement_ids

    # a masked LM sharing the vocabulary first, then a causal LM, then random
    assert pick_generator(minilm.tokenizer, [smollm2, minilm, minilm_mlm]) == (minilm_mlm, "mlm")
    assert pick_generator(smollm2.tokenizer, [smollm2, minilm]) == (smollm2, "causal-lm")
    assert pick_generator(minilm.tokenizer, [smollm2, minilm]) == (None, "random")  # published MiniLM: no MLM head
    allowed = set(replacement_ids(minilm.tokenizer).tolist())
    assert not allowed & set(minilm.tokenizer.all_special_ids)
    assert minilm.tokenizer.convert_tokens_to_ids("[unused252]") not in allowed
    for gen in (minilm_mlm, None):
        for seed in range(4):
            r = run_objective("electra", minilm.tokenizer, TEXT, seed=seed, generator=gen,
                              params=ObjectiveParams(ratio=0.5))
            for i in r.extra["sampled_positions"]:
                assert not r.input_tokens[i].startswith("[")  # never [unused…], [MASK], [CLS], …


def test_electra_mlm_generator_samples_real_words(minilm, minilm_mlm):
    """minilm-mlm's samples are real words, never punctuation, special or unused tokens."""
    kept = replaced = 0
    for seed in range(10):
        r = run_objective("electra", minilm.tokenizer, TEXT, seed=seed, generator=minilm_mlm)
        kept += r.input_actions.count("keep")
        replaced += r.input_actions.count("replaced")
        for i, a in enumerate(r.input_actions):
            if a == "replaced":
                assert r.input_tokens[i].lstrip("#").isalnum()
    assert replaced >= 3 and kept + replaced >= 10
