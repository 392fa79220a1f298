"""The analysis pass returns exactly what bare transformers returns, for the bundled encoder and decoder."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from explorer.core.inspect.analysis import analyse
from explorer.core.io.errors import Cancelled, InputError


def _bare(loaded, text, pair=None):
    enc = loaded.tokenizer(text, pair, return_tensors="pt") if pair else loaded.tokenizer(text, return_tensors="pt")
    if loaded.kind == "decoder":
        enc.pop("token_type_ids", None)
    with torch.no_grad():
        out = loaded.model(**enc, output_attentions=True, output_hidden_states=True)
    return enc, out


def test_encoder_pair_matches_bare_transformers(minilm):
    text, pair = "The bank of the river was muddy.", "He went to the bank to get money."
    a = analyse(minilm, text, pair)
    enc, out = _bare(minilm, text, pair)
    assert a.tokens == minilm.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    assert a.attentions.shape == (6, 12, len(a.tokens), len(a.tokens))
    assert a.attentions.dtype == np.float32
    bare_att = torch.stack([t[0] for t in out.attentions]).numpy()
    np.testing.assert_allclose(a.attentions, bare_att, atol=1e-5)
    bare_hidden = torch.stack([t[0] for t in out.hidden_states]).numpy()
    assert a.hidden_states.shape == (7, len(a.tokens), 384)
    np.testing.assert_allclose(a.hidden_states, bare_hidden, atol=1e-5)
    # segment ids: first sentence and its [SEP] are 0, the pair is 1
    assert a.segment_ids == enc["token_type_ids"][0].tolist()
    assert a.segment_ids[0] == 0 and a.segment_ids[-1] == 1 and set(a.segment_ids) == {0, 1}
    assert a.special_mask[0] and a.special_mask[-1] and sum(a.special_mask) == 3
    assert not a.causal
    # every attention row is a distribution
    np.testing.assert_allclose(a.attentions.sum(-1), 1.0, atol=1e-4)
    # offsets point into the right text
    i = a.tokens.index("river")
    s, e = a.offsets[i]
    assert a.segment_text(i)[s:e] == "river"
    j = len(a.tokens) - 1 - a.tokens[::-1].index("bank")
    assert a.segment_ids[j] == 1 and pair[slice(*a.offsets[j])] == "bank"


def test_decoder_matches_bare_and_is_causal(smollm2):
    text = "我家的哈巴狗很可爱. The cat sat."
    a = analyse(smollm2, text)
    _enc, out = _bare(smollm2, text)
    bare_att = torch.stack([t[0] for t in out.attentions]).numpy()
    np.testing.assert_allclose(a.attentions, bare_att, atol=1e-5)
    np.testing.assert_allclose(a.hidden_states, torch.stack([t[0] for t in out.hidden_states]).numpy(), atol=1e-4)
    assert a.causal
    n = a.num_tokens
    upper = np.triu(np.ones((n, n), bool), k=1)
    assert np.abs(a.attentions[..., upper]).max() < 1e-6  # nothing looks right
    # the three byte pieces of 狗 are all labelled with the character
    assert [lab for lab in a.labels if lab.startswith("狗")] == ["狗", "狗·2", "狗·3"]


def test_truncation_is_reported_and_unk_is_not_special(minilm):
    a = analyse(minilm, "word " * 600)
    assert a.truncated and "512" in a.note
    assert a.attentions.shape[-1] == 512 and a.tokens[-1] == "[SEP]"
    b = analyse(minilm, "哈巴狗")
    assert "[UNK]" in b.tokens
    assert not b.special_mask[b.tokens.index("[UNK]")]


def test_empty_and_cancelled(minilm):
    with pytest.raises(InputError):
        analyse(minilm, "   ")
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        analyse(minilm, "hello", cancel=ev)


def test_slices_in_to_dict(minilm):
    a = analyse(minilm, "a short text")
    d = a.to_dict(layer=2, head=3)
    np.testing.assert_allclose(np.array(d["attentions"]), a.attentions[2, 3], atol=1e-7)
    assert np.array(a.to_dict(head=1)["attentions"]).shape == (6, a.num_tokens, a.num_tokens)


def test_encoder_decoder_cross_attention(tiny_factory):
    from explorer.core.inspect.attention import attention_heatmap_spec
    from explorer.core.models.loading import load_model

    lm = load_model(str(tiny_factory("seq2seq-lm")))
    assert lm.kind == "encoder-decoder"
    a = analyse(lm, "the cat is good", "the dog is bad")
    enc = lm.tokenizer("the cat is good", return_tensors="pt")
    dec_ids = torch.tensor([[lm.model.config.decoder_start_token_id]
                            + lm.tokenizer(text_target="the dog is bad")["input_ids"][:-1]])
    with torch.no_grad():
        out = lm.model(**enc, decoder_input_ids=dec_ids, output_attentions=True, output_hidden_states=True)
    n_enc, n_dec = enc["input_ids"].shape[1], dec_ids.shape[1]
    assert a.attentions.shape == (2, 2, n_enc, n_enc)
    assert a.decoder_attentions.shape == (2, 2, n_dec, n_dec)
    assert a.cross_attentions.shape == (2, 2, n_dec, n_enc)
    np.testing.assert_allclose(a.cross_attentions, torch.stack([t[0] for t in out.cross_attentions]).numpy(), atol=1e-6)
    np.testing.assert_allclose(a.decoder_attentions[..., np.triu_indices(n_dec, 1)[0], np.triu_indices(n_dec, 1)[1]], 0,
                               atol=1e-6)
    assert a.decoder_tokens[0] == lm.tokenizer.convert_ids_to_tokens(int(dec_ids[0, 0]))
    spec = attention_heatmap_spec(a, 1, "mean", source="cross")
    assert spec.matrix.shape == (n_dec, n_enc) and spec.row_labels == a.decoder_labels
    assert attention_heatmap_spec(a, 0, 1, source="decoder").meta["causal"]


def test_decoder_limit_keeps_attention_in_memory(smollm2, monkeypatch):
    from explorer.core.inspect import analysis

    limit = analysis.analysis_limit(smollm2)
    assert analysis.dense_limit(smollm2) < limit < smollm2.max_length  # 8192 tokens of 30x9 maps would be 72 GB
    assert 4 * 30 * 9 * analysis.dense_limit(smollm2) ** 2 <= analysis.ATTENTION_BUDGET_BYTES
    fits = sum(v for k, v in analysis.compact_estimate(smollm2, 40).items() if k != "dense_attentions")
    monkeypatch.setattr(analysis, "COMPACT_BUDGET_BYTES", fits)  # room for 40 tokens
    a = analyse(smollm2, "word " * 100)
    assert a.num_tokens == 40 and a.truncated and "fits in memory" in a.note


def test_require_finite_checks_hidden_states_without_a_copy():
    """A long input's hidden states (0.3 GB at 4,096 SmolLM2 tokens) are checked in blocks: no float64 copy of
    them at the analysis's peak, and a NaN in the very last value is still found."""
    import tracemalloc

    from explorer.core.io.errors import ModelError
    from explorer.core.models.loading import require_finite

    hidden = np.zeros((9, 1024, 576), dtype=np.float32)  # 21 MB
    tracemalloc.start()
    require_finite(hidden, "m", "hidden states")
    _now, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < hidden.nbytes / 4  # blocks of 4M booleans at most, never the whole array again
    hidden[-1, -1, -1] = np.nan
    with pytest.raises(ModelError, match="NaN or infinite hidden states"):
        require_finite(hidden, "m", "hidden states")
    require_finite(np.arange(6).reshape(2, 3), "m")  # integers: fine
    with pytest.raises(ModelError):
        require_finite(np.array([1.0, np.inf], dtype=np.float16), "m")


@pytest.mark.parametrize("model", ["minilm", "smollm2"])
def test_preview_hands_over_one_layer_during_the_pass(model, request):
    """With ``partial``, the layer asked for comes over once, before the pass ends, holding the very weights the
    finished analysis (and bare transformers) has; the hooks are gone afterwards."""
    loaded = request.getfixturevalue(model)
    text = "The bank of the river was muddy after the rain."
    seen = []
    hooks = sum(len(m._forward_hooks) for m in loaded.model.modules())

    def held_elsewhere() -> bool:
        got = []
        t = threading.Thread(target=lambda: got.append(loaded.lock.acquire(blocking=False)))
        t.start()
        t.join()
        if got[0]:
            loaded.lock.release()
        return not got[0]

    def partial(preview):
        seen.append((preview, held_elsewhere()))  # the model still runs: its lock is held

    a = analyse(loaded, text, partial=partial, preview_layer=2)
    assert len(seen) == 1
    p, during_pass = seen[0]
    assert during_pass and p.layer == 2 and p.model_name == loaded.name and p.text == text
    assert p.num_layers == a.num_layers
    assert p.attention.shape == a.attentions[2].shape
    assert np.array_equal(p.attention, a.attentions[2]) and np.shares_memory(p.attention, a.attentions[2])
    assert (p.labels, p.segment_ids, p.special_mask) == (a.labels, a.segment_ids, a.special_mask)
    _enc, out = _bare(loaded, text)
    np.testing.assert_allclose(p.attention, out.attentions[2][0].numpy(), atol=1e-6)
    assert sum(len(m._forward_hooks) for m in loaded.model.modules()) == hooks
    analyse(loaded, text)  # no partial: nothing is handed over
    assert len(seen) == 1


@pytest.mark.parametrize("model", ["minilm", "smollm2"])
def test_a_compact_pass_hands_over_and_keeps_the_rows_on_screen(model, request):
    """A long input's pass hands over the rows on screen of one layer ([head, rows, key], float16 values as the
    store serves them) and keeps them: no recompute after the pass, the same numbers as a recompute, and within
    float16 rounding of bare transformers."""
    from explorer.core.inspect.attention import attention_rows, rows_ready, shown_rows

    loaded = request.getfixturevalue(model)
    text = "The bank of the river was muddy after the long rain, and she went to the bank to deposit money."
    got = []
    a = analyse(loaded, text, compact=True, partial=got.append, preview_layer=1, preview_rows=(2, 5, True))
    rows = shown_rows(a.special_mask, True, 2, 5)
    assert not a.exact and len(got) == 1 and got[0].layer == 1 and np.array_equal(got[0].rows, rows)
    assert got[0].attention.shape == (a.num_heads, 5, a.num_tokens)
    assert all(rows_ready(a.attentions, 1, h, rows) for h in ("mean", "max", 0))  # kept: nothing to recompute
    np.testing.assert_array_equal(a.attentions.rows(1, rows).astype(np.float32), got[0].attention)
    block, mean, top = a.attentions._compute_rows(1, rows)  # what a recompute would give
    np.testing.assert_array_equal(block.astype(np.float32), got[0].attention)
    np.testing.assert_array_equal(attention_rows(a.attentions, 1, "mean", rows), mean)
    np.testing.assert_array_equal(attention_rows(a.attentions, 1, "max", rows), top)
    _enc, out = _bare(loaded, text)
    np.testing.assert_allclose(got[0].attention, out.attentions[1][0][:, rows].numpy(), atol=5e-4)


def test_preview_pays_with_a_free_core_or_a_long_pass(monkeypatch):
    import os

    from explorer.core.inspect import analysis

    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr("torch.get_num_threads", lambda: cores)  # the model's threads take every core
    assert analysis.preview_pays(None) and analysis.preview_pays(analysis.PREVIEW_AFTER_SECONDS)
    assert not analysis.preview_pays(0.03)
    monkeypatch.setattr("torch.get_num_threads", lambda: cores - 1)  # one core free for the drawing
    assert analysis.preview_pays(0.03)


def test_watch_layer_hands_over_softmax_weights_not_another_square_output():
    """A block whose first submodule returns some other [1, head, n, n] tensor (a position bias) before its
    attention does: the weights handed over are the attention's softmax rows."""
    from explorer.core.inspect.analysis import _watch_layer

    n, heads = 5, 2

    class Bias(torch.nn.Module):
        def forward(self, x):
            return x, torch.full((1, heads, n, n), 3.0)

    class Attention(torch.nn.Module):
        def forward(self, x):
            return x, torch.softmax(torch.randn(1, heads, n, n), dim=-1)

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bias, self.attention = Bias(), Attention()

        def forward(self, x):
            return self.attention(self.bias(x)[0])[0]

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList([Block(), Block()])

        def forward(self, x):
            for b in self.layers:
                x = b(x)
            return x

    net, got = Net(), []
    hooks = _watch_layer(net, 2, 1, n, got.append)
    net(torch.zeros(1, n, 4))
    for h in hooks:
        h.remove()
    assert len(got) == 1 and got[0].shape == (heads, n, n)
    np.testing.assert_allclose(got[0].sum(-1), 1.0, atol=1e-6)
    assert _watch_layer(net, 3, 0, n, got.append) == []  # no stack of that many blocks: no hooks
