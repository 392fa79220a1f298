"""Attention utilities: aggregates, rollout, dropping special tokens, top-k and exBERT's threshold."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core.inspect.analysis import analyse
from explorer.core.inspect.attention import (
    attention_heatmap_spec,
    drop_tokens,
    head_max,
    head_mean,
    layer_matrix,
    rollout,
    threshold_mask,
    top_k_edges,
)
from explorer.core.io.errors import InputError


@pytest.fixture(scope="module")
def pair_analysis(minilm):
    return analyse(minilm, "The bank of the river.", "She deposits money.")


def test_head_aggregates(pair_analysis):
    att = pair_analysis.attentions
    np.testing.assert_allclose(head_mean(att)[3], att[3].mean(0), atol=1e-7)
    assert (head_max(att) >= head_mean(att) - 1e-7).all()
    np.testing.assert_array_equal(layer_matrix(att, 1, 4), att[1, 4])
    with pytest.raises(InputError):
        layer_matrix(att, 9, 0)
    with pytest.raises(InputError):
        layer_matrix(att, 0, 12)


def test_rollout_by_hand():
    rng = np.random.default_rng(0)
    att = rng.random((3, 2, 4, 4))
    att /= att.sum(-1, keepdims=True)
    r = rollout(att)
    eye = np.eye(4)
    acc = eye
    for layer in range(3):
        a = 0.5 * att[layer].mean(0) + 0.5 * eye
        a /= a.sum(-1, keepdims=True)
        acc = a @ acc
    np.testing.assert_allclose(r[-1], acc, atol=1e-6)
    np.testing.assert_allclose(r.sum(-1), 1.0, atol=1e-5)  # still distributions
    # a single layer's rollout is that layer with the residual added
    np.testing.assert_allclose(r[0], (0.5 * att[0].mean(0) + 0.5 * eye) / (0.5 * att[0].mean(0) + 0.5 * eye).sum(-1, keepdims=True), atol=1e-6)


def test_drop_special_renormalises(pair_analysis):
    a = pair_analysis
    m = a.attentions[0, 0]
    keep = ~np.array(a.special_mask)
    sub = drop_tokens(m, keep)
    assert sub.shape == (keep.sum(), keep.sum())
    np.testing.assert_allclose(sub.sum(-1), 1.0, atol=1e-5)
    row = m[1][keep]
    np.testing.assert_allclose(sub[0], row / row.sum(), atol=1e-6)


def test_top_k_and_threshold():
    m = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.0, 0.5, 0.5]], dtype=np.float32)
    edges = top_k_edges(m, 2)
    assert [(e.query, e.key) for e in edges] == [(0, 0), (1, 2)]
    mask = threshold_mask(m, 0.8)
    # row 0: 0.6 < 0.8 so 0.3 is also kept (reaching 0.9); 0.1 dropped
    assert mask[0].tolist() == [True, True, False]
    # row 1: 0.6 then one 0.2 reaches 0.8
    assert mask[1].sum() == 2 and mask[1, 2]
    # zero weights never kept; share 0 keeps only each row's top link
    assert not mask[2, 0]
    assert threshold_mask(m, 0.0).sum(-1).tolist() == [1, 1, 1]
    assert threshold_mask(m, 1.0).sum() == 8


def test_heatmap_spec_hides_specials_and_thresholds(pair_analysis):
    a = pair_analysis
    spec = attention_heatmap_spec(a, layer=2, head="mean", hide_special=True, share=0.5)
    n = a.num_tokens - sum(a.special_mask)
    assert spec.matrix.shape == (n, n)
    assert "[CLS]" not in spec.row_labels and spec.meta["layer"] == 2
    assert (spec.matrix > 0).sum() < n * n
    full = attention_heatmap_spec(a, layer=-1, head=5)
    np.testing.assert_allclose(full.matrix, a.attentions[-1, 5])
    assert "head 5" in full.title and full.meta["layer"] == 5
    ranged = attention_heatmap_spec(a, layer=0, head="rollout", token_range=(2, 6))
    assert ranged.matrix.shape == (4, 4) and ranged.row_labels == a.labels[2:6]
    assert "query" in spec.to_csv().splitlines()[0] or spec.to_csv().startswith(",")


def test_shown_rows_counts_from_the_kept_tokens():
    from explorer.core.inspect.attention import shown_rows

    special = [True, False, False, False, True]  # [CLS] a b c [SEP]
    assert shown_rows(special, True, 1, 2).tolist() == [2, 3]
    assert shown_rows(special, False, 1, 2).tolist() == [1, 2]
    assert shown_rows(special, True, 10, 5).tolist() == [3]  # 'Tokens from' past the end: the last one
    assert shown_rows(special, False, 0, 0).tolist() == [0]  # at least one
