"""The compact (top-k) attention of long inputs holds transformers' own eager weights, and rollout from it
stays close to dense rollout."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from explorer.core.inspect.analysis import analyse
from explorer.core.inspect.attention import (
    attention_heatmap_spec,
    attention_rows,
    compact_rollout,
    layer_matrix,
    rollout,
    rows_ready,
)
from explorer.core.inspect.attention_store import CompactAttentions, capture_forward
from explorer.core.io.errors import Cancelled, InputError

LONG = ("The students read the lecture notes about pre-trained language models and their attention heads. "
        "Then they went home, tired but happy, and wrote a long essay about what the heads had learnt. ") * 6


def _check_compact(store: CompactAttentions, dense: list[np.ndarray]) -> None:
    """Top-k weights equal the dense weights at their keys, are the k largest, and recomputed layers match
    within float16 rounding (half a float16 step below 1 is 2.44e-4): the recompute itself is exact."""
    assert store.stored_query_key_bytes() == 0  # queries/keys are made again from each layer's input
    for layer, full in enumerate(dense):  # full: [head, query, key]
        idx, w = store.sparse_layer(layer)
        np.testing.assert_allclose(np.take_along_axis(full, idx.astype(np.int64), axis=-1), w, atol=1e-6)
        largest = -np.sort(-full, axis=-1)[..., : w.shape[-1]]
        np.testing.assert_allclose(w, largest, atol=1e-6)
        recomputed = store[layer]
        assert recomputed.dtype == np.float16
        np.testing.assert_allclose(recomputed.astype(np.float32), full, rtol=0, atol=2.5e-4)


@pytest.mark.parametrize("head", ["mlm", "causal-lm"])
def test_capture_equals_output_attentions_on_tiny_models(tiny_factory, head):
    from explorer.core.models.loading import load_model

    lm = load_model(str(tiny_factory(head)))
    enc = lm.tokenizer("the cat sat on the mat and the dog lay on the rug", return_tensors="pt")
    inputs = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        bare = lm.model(**inputs, output_attentions=True, output_hidden_states=True)
    with lm.lock:
        out, store = capture_forward(lm.model, inputs, top_k=3, causal=head == "causal-lm",
                                     output_hidden_states=True)
    assert lm.model.config._attn_implementation == "eager"  # restored after the pass
    assert store.shape == (2, 2, enc["input_ids"].shape[1], enc["input_ids"].shape[1])
    _check_compact(store, [a[0].numpy() for a in bare.attentions])
    torch.testing.assert_close(out.hidden_states[-1], bare.hidden_states[-1], atol=1e-5, rtol=1e-5)


def test_capture_handles_grouped_query_attention_and_blocks(monkeypatch):
    """A tiny Llama with 4 query heads sharing 2 key/value heads, queries split in blocks of 5."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from explorer.core.inspect import attention_store

    monkeypatch.setattr(attention_store, "QUERY_BLOCK", 5)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      attn_implementation="eager")
    model = LlamaForCausalLM(cfg).eval()
    ids = torch.randint(0, 50, (1, 23))
    with torch.no_grad():
        bare = model(input_ids=ids, output_attentions=True)
    out, store = capture_forward(model, {"input_ids": ids}, top_k=4, causal=True, use_cache=False)
    _check_compact(store, [a[0].numpy() for a in bare.attentions])
    torch.testing.assert_close(out.logits, bare.logits, atol=1e-5, rtol=1e-5)
    assert np.all(store.weights[:, :, 0, 1:] == 0)  # the first token sees only itself


def test_queries_and_keys_made_again_equal_the_pass(monkeypatch):
    """A layer's queries and keys made again from its input hidden state are the pass's own (bit for bit); a
    block the capture cannot trace (no ModuleList parent) keeps its queries/keys and gives the same weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from explorer.core.inspect import attention_store

    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      attn_implementation="eager")
    model = LlamaForCausalLM(cfg).eval()
    inputs = {"input_ids": torch.randint(0, 50, (1, 19))}
    with torch.no_grad():
        bare = model(**inputs, output_attentions=True, output_hidden_states=True)
    out, store = capture_forward(model, inputs, top_k=4, causal=True, use_cache=True, output_hidden_states=True)
    hidden = np.stack([t[0].numpy() for t in out.hidden_states])  # [layer+1, token, dim]
    store.attach_hidden_states(hidden)
    assert all(src.hidden is None and src.hidden_index == i for i, src in enumerate(store._sources))
    monkeypatch.setattr(attention_store, "_hook_blocks", lambda model, rec: [])  # nothing traced: keep q/k
    _out, kept = capture_forward(model, inputs, top_k=4, causal=True, use_cache=False)
    assert kept.stored_query_key_bytes() == 3 * 19 * 8 * (4 + 2) * 4  # layers x tokens x head_dim x heads x fp32
    for layer in range(3):
        made, stored = store._layer_inputs(layer), kept._sources[layer].inputs
        assert torch.equal(made.query, stored.query) and torch.equal(made.key, stored.key)
        np.testing.assert_array_equal(store.recompute(layer), kept.recompute(layer))
        np.testing.assert_allclose(store.rows(layer, [18, 3]).astype(np.float32),
                                   bare.attentions[layer][0, :, [18, 3]].numpy(), rtol=0, atol=2.5e-4)
    assert model.config._attn_implementation == "eager"  # restored after each recompute


def test_minilm_compact_matches_dense_and_rollout_error(minilm):
    dense = analyse(minilm, LONG)
    compact = analyse(minilm, LONG, compact=True, top_k=32)
    assert dense.exact and not compact.exact and "top 32" not in dense.note and "32 strongest" in compact.note
    assert compact.tokens == dense.tokens and compact.attentions.shape == dense.attentions.shape
    np.testing.assert_array_equal(compact.hidden_states, dense.hidden_states)
    _check_compact(compact.attentions, list(dense.attentions))
    exact = rollout(np.asarray(dense.attentions))[-1]  # [query, key]
    approx = layer_matrix(compact.attentions, -1, "rollout")
    np.testing.assert_allclose(approx.sum(-1), 1.0, atol=1e-5)
    assert np.abs(approx - exact).max() < 0.02  # measured 0.007 on this text (k=32 of 246 keys)
    rows = compact_rollout(compact.attentions, 5, rows=[3, 40, 100])
    np.testing.assert_allclose(rows, approx[[3, 40, 100]], atol=1e-6)
    # Keeping every key makes the compact rollout exact.
    full = analyse(minilm, LONG, compact=True, top_k=dense.num_tokens)
    np.testing.assert_allclose(layer_matrix(full.attentions, 2, "rollout"), rollout(np.asarray(dense.attentions)[:3])[-1],
                               atol=1e-5)
    # Mean and max over heads of the rows on screen come from the float32 weights (before float16 rounding).
    shown = [0, 7, 100, dense.num_tokens - 1]
    compact.attentions._cache.clear()  # the whole layers recomputed above: rows on screen are computed alone
    assert not rows_ready(compact.attentions, 3, "mean", shown)
    np.testing.assert_allclose(attention_rows(compact.attentions, 3, "mean", shown),
                               np.asarray(dense.attentions[3]).mean(axis=0)[shown], rtol=0, atol=1e-6)
    assert rows_ready(compact.attentions, 3, "max", shown) and rows_ready(compact.attentions, 3, 5, shown)
    np.testing.assert_allclose(attention_rows(compact.attentions, 3, "max", shown),
                               np.asarray(dense.attentions[3]).max(axis=0)[shown], rtol=0, atol=1e-6)
    spec = attention_heatmap_spec(compact, 4, "mean", hide_special=True)
    ref = attention_heatmap_spec(dense, 4, "mean", hide_special=True)
    np.testing.assert_allclose(spec.matrix, ref.matrix, atol=1e-3)
    with pytest.raises(InputError, match="one layer at a time"):
        np.asarray(compact.attentions)


def test_smollm2_long_input_goes_compact(smollm2):
    from explorer.core.inspect import analysis

    limit = analysis.analysis_limit(smollm2)
    assert limit >= 4096 > 1024 > analysis.dense_limit(smollm2)  # 1,024 tokens: compact (bench row)
    # The dense path's cost counts the layer in flight and the hidden states, not only the kept maps.
    n = analysis.dense_limit(smollm2)
    assert analysis.dense_bytes(smollm2, n) <= analysis.ATTENTION_BUDGET_BYTES < analysis.dense_bytes(smollm2, n + 1)
    assert analysis.dense_bytes(smollm2, 1024) == 4 * 32 * 9 * 1024**2 + 4 * 31 * 1024 * 576
    parts = analysis.compact_estimate(smollm2, 4096)
    assert sum(v for k, v in parts.items() if k != "dense_attentions") <= analysis.COMPACT_BUDGET_BYTES
    a = analyse(smollm2, LONG, compact=True, top_k=8)
    assert a.causal and a.attentions.causal and a.attentions.top_k == 8
    # What a long input keeps: top-k (int16 keys, float32 weights), the causal mask, no queries/keys;
    # the hidden states (float32) are the analysis's own, which the recompute reads.
    store = a.attentions
    assert store.indices.dtype == np.int16 and store.weights.dtype == np.float32
    assert store.stored_query_key_bytes() == 0 and store._hidden is a.hidden_states
    assert a.hidden_states.dtype == np.float32
    n = a.num_tokens
    assert store.nbytes() == 6 * 30 * 9 * n * 8 + 4 * n * n  # top-k + one shared [n, n] float32 mask
    idx, w = a.attentions.sparse_layer(7)
    query = np.broadcast_to(np.arange(a.num_tokens)[None, :, None], idx.shape)
    assert (idx[w > 0] <= query[w > 0]).all()  # never a key on the right
    np.testing.assert_allclose(layer_matrix(a.attentions, -1, "rollout").sum(-1), 1.0, atol=1e-5)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        analyse(smollm2, LONG, compact=True, cancel=cancel)


def test_gemma3_compact_equals_output_attentions(gemma3):
    """Gemma 3 (sliding-window and global layers, grouped keys) through the same capture."""
    text = "The students read the lecture notes about language models and their attention heads."
    dense = analyse(gemma3, text)
    compact = analyse(gemma3, text, compact=True, top_k=8)
    _check_compact(compact.attentions, list(dense.attentions))
    np.testing.assert_array_equal(compact.hidden_states, dense.hidden_states)
