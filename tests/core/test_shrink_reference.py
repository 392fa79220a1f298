"""``shrink``'s figures equal an independent reference (tests/reference/shrink_reference.py: bare torch,
transformers and scikit-learn) on the bundled MiniLM."""

from __future__ import annotations

import pytest

from tests.reference import shrink_reference as ref

SENTENCES = ["The film was a delight from start to finish.", "The service was slow and the food was cold.",
             "I would not buy this laptop again."]


def test_int8_matches_the_reference(minilm):
    from explorer.core.tuning.quantize import compare_int8

    r = compare_int8(minilm, SENTENCES)
    want = ref.quantize(minilm.entry.location, SENTENCES)
    assert r.float32.bytes_in_memory == want["param_and_buffer_bytes_float32"]
    # The reference runs transformers' default (SDPA) attention, the app eager attention: float noise of 1e-7
    # moves a few activations across an int8 step, so the cosines agree to 1e-3, not exactly.
    assert r.agreement["cosine_mean"] == pytest.approx(want["cosine_mean"], abs=1e-3)
    assert r.agreement["cosine_min"] == pytest.approx(want["cosine_min"], abs=1e-3)
    # The app saves the state dict, the reference pickles the whole module: the same tensors, a little framing.
    for app, other in ((r.float32.bytes_on_disk, want["pickled_module_bytes_float32"]),
                       (r.int8.bytes_on_disk, want["pickled_module_bytes_int8"])):
        assert abs(app - other) < 0.01 * other


def test_pruning_accuracy_matches_the_reference(minilm):
    from explorer.core.tuning.prune import prune_sweep

    r = prune_sweep(minilm, "sentiment", step=33).to_dict()
    want = ref.prune(minilm.entry.location, r)
    for key in ("accuracy", "random_accuracy", "reverse_accuracy"):
        assert [s[key] for s in r["steps"]] == pytest.approx([want[key][s["removed"]] for s in r["steps"]], abs=1e-9)
