"""The masked-LM head the project trained for the bundled MiniLM: what ships, how it attaches, and fill-mask
checked against an independent reference (transformers' BertForMaskedLM + pipeline("fill-mask"))."""

from __future__ import annotations

import pytest

from explorer.core.io.errors import InputError, ModelError
from explorer.core.models import mlm_head
from explorer.core.pretraining.fillmask import fill_text

SINGLE = [
    "The capital of France is [MASK].",
    "She poured the [MASK] into a glass and drank it.",
    "He opened the [MASK] and walked into the room.",
    "The children were playing in the [MASK] after school.",
]


@pytest.fixture(scope="module")
def reference_mlm(minilm):
    """An independent BertForMaskedLM: MiniLM's own weights from its folder, the stored head copied in."""
    import torch
    from safetensors.torch import load_file
    from transformers import BertForMaskedLM

    model = BertForMaskedLM.from_pretrained(minilm.entry.location, attn_implementation="eager").eval()
    stored = load_file(str(mlm_head.head_dir() / mlm_head.HEAD_FILE))
    with torch.no_grad():
        params = dict(model.cls.named_parameters())
        for key, value in stored.items():
            params[key].copy_(value.float())
    assert model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    return model


def test_shipped_head_is_small_and_documented():
    from safetensors.torch import load_file

    path = mlm_head.head_dir() / mlm_head.HEAD_FILE
    assert path.stat().st_size < 500_000  # dense + LayerNorm + bias in float16; the decoder is tied
    stored = load_file(str(path))
    assert set(stored) == set(mlm_head.STORED_KEYS)
    assert stored["predictions.transform.dense.weight"].shape == (384, 384)
    assert stored["predictions.bias"].shape == (30522,)
    meta = mlm_head.head_metadata()
    for key in ("corpus", "corpus_licence", "steps", "wall_seconds", "seed", "masking", "heldout"):
        assert meta[key] not in (None, "")
    held = meta["heldout"]["project_text"]
    assert held["masked_tokens"] >= 500 and 0 < held["top1"] <= held["top5"] < 1
    assert "public domain" in meta["corpus_licence"]


def test_minilm_card_says_where_the_head_came_from(minilm):
    assert minilm.mlm_head is not None
    assert "mlm" in minilm.heads
    assert "scripts/train_mlm_head.py" in minilm.card.extra["mlm_head"]
    acc = minilm.card.extra["mlm_head_accuracy"]["project_text"]
    ref = minilm.card.extra["mlm_head_frequency_only"]["project_text"]
    assert 0 < ref["top1"] <= acc["top1"] and 0 < ref["top5"] <= acc["top5"]
    # the user is told the head's accuracy next to what naming the most frequent tokens scores
    from explorer.core.pretraining.fillmask import head_note

    note = head_note(minilm)
    assert f"top-1 {acc['top1']:.0%}" in note and f"{ref['top1']:.0%} / {ref['top5']:.0%}" in note
    assert "frequency" in minilm.card.extra["mlm_head"] or "frequent" in minilm.card.extra["mlm_head"]
    # the decoder is MiniLM's own input embedding matrix, not a copy
    decoder = minilm.mlm_head.predictions.decoder.weight
    assert decoder is minilm.model.embeddings.word_embeddings.weight


def test_fill_matches_transformers_pipeline(minilm, reference_mlm):
    from transformers import pipeline

    pipe = pipeline("fill-mask", model=reference_mlm, tokenizer=minilm.tokenizer, top_k=5, device="cpu")
    for sentence in SINGLE:
        ours = fill_text(minilm, sentence, top_k=5)["masks"]
        theirs = pipe(sentence)
        assert len(ours) == 1
        assert [c["token"] for c in ours[0]["candidates"]] == [t["token_str"] for t in theirs]
        for c, t in zip(ours[0]["candidates"], theirs, strict=True):
            assert c["probability"] == pytest.approx(t["score"], abs=1e-5)


def test_every_mask_in_one_pass_matches_bert_for_masked_lm(minilm, reference_mlm):
    import torch

    text = "The [MASK] sat on the [MASK] and looked out of the [MASK]."
    out = fill_text(minilm, text, top_k=3)
    assert len(out["masks"]) == 3
    enc = minilm.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(reference_mlm(**enc).logits[0], dim=-1)  # [seq, vocab]
    for m in out["masks"]:
        assert out["tokens"][m["position"]] == "[MASK]"
        top = torch.topk(probs[m["position"]], 3)
        assert [c["token"] for c in m["candidates"]] == [minilm.tokenizer.decode([t]).strip() for t in top.indices]
        assert [c["probability"] for c in m["candidates"]] == pytest.approx(top.values.tolist(), abs=1e-5)


def test_fill_refuses_plainly(minilm, smollm2):
    with pytest.raises(InputError):
        fill_text(minilm, "No mask here.")
    with pytest.raises(ModelError, match="mlm head"):
        fill_text(smollm2, "The capital of France is [MASK].")


def test_described_card_names_the_head_as_the_loaded_one_does(minilm):
    """`info minilm` (a card described without loading the weights) lists the head `fill` uses."""
    from explorer.core.models.loading import describe

    card = describe("minilm")
    assert card.heads == minilm.card.heads and "mlm" in card.heads
    assert card.extra["mlm_head"] == minilm.card.extra["mlm_head"]
