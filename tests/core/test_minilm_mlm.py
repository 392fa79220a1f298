"""minilm-mlm, MiniLM with masked-LM pre-training continued by this project: what ships, its card, fill-mask
checked against an independent reference (transformers' BertForMaskedLM + pipeline("fill-mask")), the lecture's
both-sides / left-only contrast, and ELECTRA's generator."""

from __future__ import annotations

import pytest

from explorer.core.io.errors import InputError, ModelError
from explorer.core.models import catalog
from explorer.core.models import minilm_mlm as project_mlm
from explorer.core.pretraining.fillmask import compare_blank, fill_text, head_note, left_context_guesses

SINGLE = [
    "The capital of France is [MASK].",
    "She poured the [MASK] into a glass and drank it.",
    "He opened the [MASK] and walked into the room.",
    "The children were playing in the [MASK] after school.",
]


@pytest.fixture(scope="module")
def reference_mlm(minilm_mlm):
    """An independent BertForMaskedLM read straight from the shipped folder by transformers."""
    import torch
    from transformers import BertForMaskedLM

    return BertForMaskedLM.from_pretrained(minilm_mlm.entry.location, attn_implementation="eager",
                                           dtype=torch.float32).eval()


def test_shipped_model_is_float16_and_documented():
    from safetensors import safe_open

    folder = project_mlm.model_dir()
    weights = folder / "model.safetensors"
    assert 40_000_000 < weights.stat().st_size < 50_000_000  # 22.7 M parameters in float16, decoder tied
    with safe_open(str(weights), "pt") as f:
        import torch

        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    meta = project_mlm.card_metadata()
    for key in ("corpus", "steps", "tokens_seen", "train_minutes", "seed", "heldout", "reference_frequency_only",
                "reference_frozen_head", "optimizer", "method"):
        assert meta[key] not in (None, "", {}), key
    # stage 3 continued stage 2, which continued stage 1: all three are on the card, and the totals add up
    stages = [*meta["earlier_stages"], meta]
    assert [stage["steps"] for stage in meta["earlier_stages"]] == [1700, 1300]
    assert meta["all_stages"]["steps"] == 1700 + 1300 + meta["steps"]
    corpus = {name: v for stage in stages for name, v in stage["corpus"].items()}
    assert {"wordnet", "debian_handbook", "gnome_help", "freeciv", "fortunes", "smollm2_everyday"} <= set(corpus)
    assert all(v["licence"] and v["sentences"] > 0 for v in corpus.values())
    assert meta["heldout"]["python_manual"]["top5"] >= 0.35  # the target for the manual
    # stage 3's everyday prose moved the project texts on from where stage 2 left them
    before = meta["earlier_stages"][-1]["heldout"]["project_text"]
    assert meta["heldout"]["project_text"]["top5"] > before["top5"] + 0.02
    held, ref = meta["heldout"]["project_text"], meta["reference_frequency_only"]["project_text"]
    assert held["masked_tokens"] >= 500
    assert ref["top1"] < held["top1"] <= held["top5"] < 1 and ref["top5"] < held["top5"]
    # better than the head the project once trained on the frozen encoder
    old = meta["reference_frozen_head"]["project_text"]
    assert held["top1"] > old["top1"] and held["top5"] > old["top5"]


def test_card_says_how_it_was_made(minilm_mlm, minilm):
    assert minilm_mlm.heads == ["mlm"]
    assert minilm_mlm.card.num_layers == 6 and minilm_mlm.card.hidden_size == 384
    text = minilm_mlm.card.extra["mlm_pretraining"]
    assert "scripts/pretrain_mlm.py" in text and "WordNet" in text and "CC-BY-SA-3.0" in text
    acc = minilm_mlm.card.extra["mlm_accuracy"]["project_text"]
    ref = minilm_mlm.card.extra["mlm_frequency_only"]["project_text"]
    from explorer.core.models.format import card_lines

    assert ("Masked-LM pre-training", text) in card_lines(minilm_mlm.card)  # the card view and `info` show it
    note = head_note(minilm_mlm)
    assert f"{acc['top1']:.0%}" in note and f"{ref['top1']:.0%} / {ref['top5']:.0%}" in note
    # the published MiniLM stays the sentence encoder, without a masked-LM head
    assert "mlm" not in minilm.heads and "mlm_pretraining" not in minilm.card.extra
    with pytest.raises(ModelError, match="minilm-mlm"):
        fill_text(minilm, "The capital of France is [MASK].")
    # the one rule the CLI and the Masking panel share: minilm-mlm fills the published MiniLM's masks
    from explorer.core.pretraining.fillmask import filler_name

    assert filler_name(minilm) == "minilm-mlm"
    assert filler_name(minilm_mlm) is None


def test_fill_matches_transformers_pipeline(minilm_mlm, reference_mlm):
    from transformers import pipeline

    pipe = pipeline("fill-mask", model=reference_mlm, tokenizer=minilm_mlm.tokenizer, top_k=5, device="cpu")
    for sentence in SINGLE:
        ours = fill_text(minilm_mlm, sentence, top_k=5)["masks"]
        theirs = pipe(sentence)
        assert len(ours) == 1
        assert [c["token"] for c in ours[0]["candidates"]] == [t["token_str"] for t in theirs]
        for c, t in zip(ours[0]["candidates"], theirs, strict=True):
            assert c["probability"] == pytest.approx(t["score"], abs=1e-5)


def test_every_mask_in_one_pass_matches_bert_for_masked_lm(minilm_mlm, reference_mlm):
    import torch

    text = "The [MASK] sat on the [MASK] and looked out of the [MASK]."
    out = fill_text(minilm_mlm, text, top_k=3)
    assert len(out["masks"]) == 3
    enc = minilm_mlm.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(reference_mlm(**enc).logits[0], dim=-1)  # [seq, vocab]
    for m in out["masks"]:
        top = torch.topk(probs[m["position"]], 3)
        assert [c["token"] for c in m["candidates"]] == [minilm_mlm.tokenizer.decode([t]).strip() for t in top.indices]
        assert [c["probability"] for c in m["candidates"]] == pytest.approx(top.values.tolist(), abs=1e-5)


def test_fills_everyday_blanks_in_context(minilm_mlm):
    """The 40 held-out everyday cloze sentences: the frozen-encoder head had none in its top 5."""
    from pathlib import Path

    rows = [line.split("\t") for line in (Path(__file__).resolve().parents[2] / "scripts" / "mlm_eval" / "everyday.tsv")
            .read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    assert len(rows) == 40
    firsts = [[c["token"] for c in fill_text(minilm_mlm, s, top_k=5)["masks"][0]["candidates"]] for s, _ in rows]
    hits = sum(answer in top for (_, answer), top in zip(rows, firsts, strict=True))
    assert hits >= 14
    assert minilm_mlm.card.extra["mlm_accuracy"]  # the card's record is of these weights
    assert firsts[[s for s, _ in rows].index("A week has seven [MASK].")][0] == "days"
    assert "paris" in firsts[[s for s, _ in rows].index("The capital of France is [MASK].")]  # the check


def test_fill_refuses_plainly(minilm_mlm, smollm2):
    with pytest.raises(InputError):
        fill_text(minilm_mlm, "No mask here.")
    with pytest.raises(ModelError, match="mlm head"):
        fill_text(smollm2, "The capital of France is [MASK].")


def test_left_only_guesses_match_the_causal_lm(smollm2):
    """A causal LM's row is its next-token distribution after the words before the blank, computed here
    independently from the model's own logits."""
    import torch

    got = left_context_guesses(smollm2, "The capital of France is ", top_k=5)
    ids = smollm2.tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        probs = torch.softmax(smollm2.model(input_ids=ids).logits[0, -1].float(), dim=-1)
    top = torch.topk(probs, 5)
    assert [p for _, p in got.candidates] == pytest.approx(top.values.tolist(), abs=1e-5)
    assert [t for t, _ in got.candidates] == [smollm2.tokenizer.decode([i]).strip() or "␣" for i in top.indices]
    assert got.context == "left only" and got.seen == "The capital of France is"


def test_compare_blank_sets_both_sides_beside_left_only(minilm_mlm, smollm2):
    out = compare_blank(minilm_mlm, [smollm2], "The capital of France is [MASK], a city on the Seine.")
    assert [(r["model"], r["context"]) for r in out["rows"]] == [("minilm-mlm", "both sides"), ("smollm2", "left only")]
    assert out["rows"][1]["seen"] == "The capital of France is"
    assert all(len(r["candidates"]) == 5 for r in out["rows"])
    with pytest.raises(ModelError, match="not a causal LM"):
        compare_blank(minilm_mlm, [minilm_mlm], "A week has seven [MASK].")


def test_electra_replaces_whole_words_with_words_from_minilm_mlm(minilm, minilm_mlm):
    from explorer.core.pretraining.objectives import run_objective

    text = ("The committee approved the new budget for roads and schools after a long debate, and the mayor "
            "thanked everyone who had waited outside in the rain for the decision.")
    replaced = 0
    for seed in range(8):
        res = run_objective("electra", minilm.tokenizer, text, seed=seed, generator=[minilm, minilm_mlm])
        assert res.generator.startswith("minilm-mlm (masked LM")
        tt = res.tt
        chosen = set(res.extra["sampled_positions"])
        for s, e in tt.word_spans:  # a word is taken whole or not at all
            assert len(chosen & set(range(s, e))) in (0, e - s)
        for p in chosen:
            tok = res.input_tokens[p]
            assert tok.lstrip("#").isalnum(), tok  # never punctuation or a special token
            first = any(s == p for s, _ in tt.word_spans)
            assert tok.startswith("##") != first  # first pieces stay first pieces
            replaced += res.input_actions[p] == "replaced"
    assert replaced > 0


def test_described_card_matches_the_loaded_one(minilm_mlm):
    from explorer.core.models.loading import describe

    card = describe(catalog.MINILM_MLM)
    assert card.heads == minilm_mlm.card.heads == ["mlm"]
    assert card.extra["mlm_pretraining"] == minilm_mlm.card.extra["mlm_pretraining"]
    # float16 on disk, float32 once loaded: the described card says what loading will take
    assert card.dtype == minilm_mlm.card.dtype == "float32"
    assert card.bytes_in_memory == pytest.approx(minilm_mlm.card.bytes_in_memory, rel=0.01)
