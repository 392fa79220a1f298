"""Smaller models, measured (issue #27 part 3): int8 quantisation, head pruning, lineage and the distillation
comparison, on the bundled MiniLM and SmolLM2 and a tiny BERT folder."""

from __future__ import annotations

import pytest

SENTENCES = ["The film was a delight from start to finish.", "The service was slow and the food was cold.",
             "Paris is the capital of France.", "I would not buy this laptop again."]


def test_int8_minilm_is_smaller_and_close(minilm):
    import torch

    from explorer.core.tuning.quantize import compare_int8

    r = compare_int8(minilm, SENTENCES)
    # The loaded model is untouched: its layers are still float nn.Linear.
    assert type(minilm.model.encoder.layer[0].attention.self.query) is torch.nn.Linear
    # Independent count of the float model's bytes: every parameter and buffer, once.
    plain = sum(t.numel() * t.element_size() for t in list(minilm.model.parameters()) + list(minilm.model.buffers()))
    assert r.float32.bytes_in_memory == plain
    # 6 layers × 6 Linear + the pooler: all of them int8, none left float.
    assert (r.int8.int8_linear, r.int8.float_linear, r.float32.float_linear) == (37, 0, 37)
    # Each Linear weight goes from 4 bytes an element to 1: the saving is 3 bytes per weight element.
    weights = sum(m.weight.numel() for m in minilm.model.modules() if isinstance(m, torch.nn.Linear))
    saved = r.float32.bytes_in_memory - r.int8.bytes_in_memory
    assert abs(saved - 3 * weights) < 0.001 * weights
    assert r.int8.bytes_on_disk < 0.7 * r.float32.bytes_on_disk
    assert r.inputs == 4 and r.int8.seconds_per_input > 0 and r.float32.seconds_per_input > 0
    assert 0.8 < r.agreement["cosine_min"] <= r.agreement["cosine_mean"] < 1.0
    assert "probe_accuracy_int8" not in r.agreement  # own texts: no probe


def test_int8_minilm_mlm_fill_overlap(minilm_mlm):
    from explorer.core.tuning.quantize import compare_int8

    r = compare_int8(minilm_mlm, SENTENCES)
    assert 0.0 <= r.agreement["fill_top5_overlap"] <= 1.0
    assert r.int8.float_linear == 1  # the MLM decoder (the output embedding, tied to the input) stays float


def test_int8_smollm2_decoder(smollm2):
    import math

    from explorer.core.tuning.quantize import compare_int8

    text = ("BERT is pre-trained by masking some of the words in a sentence and asking the model to fill them in. "
            "GPT is trained to predict the next word, so it only sees the words to the left.")
    r = compare_int8(smollm2, [text])
    assert r.kind == "decoder" and r.inputs == 1
    # 30 layers × 7 projections quantised; the output projection tied to the embedding stays float.
    assert (r.int8.int8_linear, r.int8.float_linear) == (210, 1)
    assert r.int8.bytes_in_memory < 0.6 * r.float32.bytes_in_memory
    assert 0.0 < r.agreement["next_token_top1_agreement"] <= 1.0
    # Perplexity recomputed independently from the float model's own loss on the same tokens.
    import torch

    ids = smollm2.tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = [smollm2.tokenizer.bos_token_id] if smollm2.tokenizer.bos_token_id is not None else []
    x = torch.tensor([bos + ids])
    with torch.no_grad():
        loss = smollm2.model(input_ids=x, labels=x).loss
    assert r.agreement["perplexity_float32"] == pytest.approx(math.exp(float(loss)), rel=1e-3)


def test_int8_refuses_empty_text(minilm):
    from explorer.core.io.errors import InputError
    from explorer.core.tuning.quantize import compare_int8

    with pytest.raises(InputError):
        compare_int8(minilm, ["   "])


def test_prune_heads_removes_and_still_runs(minilm):
    import copy

    import torch

    from explorer.core.tuning.probe import encoder_of
    from explorer.core.tuning.prune import gate_heads, head_count, prune_heads

    enc = copy.deepcopy(encoder_of(minilm.model))
    batch = minilm.tokenizer(SENTENCES, return_tensors="pt", padding=True)
    gates = torch.ones(6, 12)
    gates[0, [0, 1]] = 0
    gates[3, 5] = 0
    gates[3, 11] = 0
    handles = gate_heads(enc, gates)
    with torch.no_grad():
        gated = enc(**batch).last_hidden_state
    for h in handles:
        h.remove()
    with torch.no_grad():
        full = enc(**batch).last_hidden_state
    before = sum(p.numel() for p in enc.parameters())
    prune_heads(enc, {0: [0, 1], 3: [5]})
    prune_heads(enc, {3: [11, 5]})  # numbered as in the unpruned model; 5 is already gone
    assert head_count(enc) == [10, 12, 12, 10, 12, 12]
    assert enc.encoder.layer[3].attention.self.query.out_features == 10 * 32
    # 4 heads × (3 × (384×32 + 32) + 32×384) parameters fewer.
    assert before - sum(p.numel() for p in enc.parameters()) == 4 * (3 * (384 * 32 + 32) + 32 * 384)
    with torch.no_grad():
        cut = enc(**batch).last_hidden_state
    assert not torch.allclose(gated, full, atol=1e-3)  # the gates do something
    assert torch.allclose(cut, gated, atol=1e-4)  # and pruning is the same as gating to 0
    assert encoder_of(minilm.model).encoder.layer[0].attention.self.query.out_features == 384  # the original is intact


def test_prune_sweep_on_sentiment(minilm):
    from explorer.core.io.bundled_data import resolve_data
    from explorer.core.tuning import finetune as ft
    from explorer.core.tuning.datasets import load_task_data
    from explorer.core.tuning.prune import prune_chart, prune_sweep

    r = prune_sweep(minilm, "sentiment", step=33)
    assert [s.removed for s in r.steps] == [0, 33, 66]
    assert [s.heads_left for s in r.steps] == [72, 39, 6]
    assert r.steps[0].parameters > r.steps[1].parameters > r.steps[2].parameters
    assert len(r.importance) == 6 and len(r.importance[0]) == 12 and len(r.order) == 66
    assert all(sum(1 for l_, _h in r.order if l_ == layer) == 11 for layer in range(6))  # one head kept per layer
    assert r.check["max_logit_difference"] < 1e-3 and r.check["argmax_agreement"] == 1.0
    # With no head removed, the accuracy is the frozen fine-tune's own (finetune --mode frozen, same split).
    data = load_task_data(resolve_data("sentiment"), seed=0)
    assert r.steps[0].accuracy == pytest.approx(ft.finetune(minilm, data, "frozen").val_accuracy)
    spec = prune_chart(r)
    assert spec.series[0].y == [s.accuracy for s in r.steps]


def test_prune_refuses_token_data(minilm):
    from explorer.core.io.errors import InputError
    from explorer.core.tuning.prune import prune_sweep

    with pytest.raises(InputError, match="classif"):
        prune_sweep(minilm, "ner")


def test_lineage_from_the_cards():
    from explorer.core.models.lineage import lineage

    mini = lineage("minilm")
    assert mini.distilled
    assert mini.steps[0].name == "nreimers/MiniLM-L6-H384-uncased" and mini.steps[0].source.startswith("README.md line")
    smol = lineage("smollm2")
    assert not smol.distilled
    assert any("Q4_1" in s.relation for s in smol.steps)


def test_distill_comparison_against_a_folder(minilm, tmp_path):
    from explorer.core.models.loading import load_model
    from explorer.core.tuning.distill import compare_models, distill_chart
    from tests.tiny import make_tiny_checkpoint

    other = load_model(str(make_tiny_checkpoint(tmp_path / "bert", "base")))
    c = compare_models(minilm, other, SENTENCES)
    assert c.student.parameters == sum(p.numel() for p in minilm.model.parameters())
    assert (c.student.layers, c.student.hidden) == (6, 384) and (c.teacher.layers, c.teacher.hidden) == (2, 32)
    assert c.student.parameters > c.teacher.parameters
    assert 0.0 <= c.teacher.probe_accuracy <= 1.0 and c.student.probe_accuracy > 0.9
    spec = distill_chart(c)
    assert spec.series[1].y[0] == pytest.approx(c.student.parameters / c.teacher.parameters)


def test_int8_kshot_sweep_same_items(smollm2):
    import torch

    from explorer.core.prompting.int8_sweep import int8_sweep
    from explorer.core.prompting.sweep import run_sweep
    from explorer.core.prompting.tasks import load_task

    f, q = int8_sweep(smollm2, "qa", "0,1", limit=2)
    assert (f.model, q.model) == ("smollm2", "smollm2 (int8)")
    assert [p.shots for p in f.points] == [p.shots for p in q.points] == [0, 1]
    # The same items and demonstrations for both: the prompts asked are identical.
    assert [(d.item, d.draw) for p in f.points for d in p.details] == [(d.item, d.draw) for p in q.points for d in p.details]
    assert type(smollm2.model.model.layers[0].self_attn.q_proj) is torch.nn.Linear  # the loaded model is unchanged
    # The float32 half is exactly the ordinary sweep of the loaded model.
    alone = run_sweep(smollm2, load_task("qa"), "0,1", draws=1, limit=2, seed=0)
    assert [p.accuracy for p in alone.points] == [p.accuracy for p in f.points]
    assert [d.prediction for p in alone.points for d in p.details] == [d.prediction for p in f.points for d in p.details]
