"""Every task head on tiny random checkpoints (real loading and plumbing), checked against direct forwards."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from explorer.core.io.errors import Cancelled, InputError, ModelError
from explorer.core.models.loading import load_model
from explorer.core.models.tokens import show_token
from explorer.core.tuning import heads

NER = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture(scope="module")
def seqcls(tiny_factory):
    return load_model(str(tiny_factory("sequence-classification", ["negative", "neutral", "positive"])))


def _softmax_logits(lm, *texts):
    enc = lm.tokenizer(*texts, return_tensors="pt")
    with torch.no_grad():
        return torch.softmax(lm.model(**enc).logits[0], -1).numpy()


def test_classify_uses_id2label_and_matches_a_direct_forward(seqcls):
    r = heads.run_head(seqcls, "classify", "a good movie")
    assert list(r.scores) == ["negative", "neutral", "positive"]
    assert sum(r.scores.values()) == pytest.approx(1.0, abs=1e-5)
    direct = _softmax_logits(seqcls, "a good movie")
    assert np.allclose(list(r.scores.values()), direct, atol=1e-5)
    assert r.label == ["negative", "neutral", "positive"][int(direct.argmax())]


def test_pair_encodes_both_sentences_together(seqcls):
    r = heads.run_head(seqcls, "pair", "john lives in paris", "john lives in london")
    direct = _softmax_logits(seqcls, "john lives in paris", "john lives in london")
    assert np.allclose(list(r.scores.values()), direct, atol=1e-5)
    single = heads.run_head(seqcls, "classify", "john lives in paris")
    assert not np.allclose(list(r.scores.values()), list(single.scores.values()), atol=1e-6)
    with pytest.raises(InputError, match="two texts"):
        heads.run_head(seqcls, "pair", "only one")


def test_token_labels_cover_the_text(tiny_factory):
    lm = load_model(str(tiny_factory("token-classification", NER)))
    text = "mary works at google in berlin"
    r = heads.run_head(lm, "tokens", text)
    assert r.labels == NER
    assert [text[t.start:t.end] for t in r.tokens] == text.split()
    enc = lm.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        pred = lm.model(**enc).logits[0].argmax(-1).tolist()[1:-1]
    assert [t.label for t in r.tokens] == [NER[i] for i in pred]
    for e in r.entities:
        assert e.text == text[e.start:e.end] and e.label in {"PER", "LOC"}
    assert heads.label_color("B-PER", NER) == heads.label_color("I-PER", NER) != heads.label_color("B-LOC", NER)
    assert heads.label_color("O", NER) == heads.O_COLOR


def test_qa_probabilities_span_matrix_and_best_spans(tiny_factory):
    lm = load_model(str(tiny_factory("question-answering")))
    context = "john lives in paris and works at google in berlin"
    r = heads.answer(lm, "where does john live?", context, max_answer_len=3, top_k=4)
    n = len(context.split())
    assert len(r.tokens) == n and r.span_scores.shape == (n, n)
    assert r.start_probs.sum() == pytest.approx(1.0, abs=1e-5) and r.end_probs.sum() == pytest.approx(1.0, abs=1e-5)
    i, j = np.indices(r.span_scores.shape)
    assert np.all(r.span_scores[(j < i) | (j - i >= 3)] == 0)
    inside = (j >= i) & (j - i < 3)
    assert np.allclose(r.span_scores[inside], np.outer(r.start_probs, r.end_probs)[inside], atol=1e-7)
    assert len(r.spans) == 4 and r.spans[0].score == pytest.approx(float(r.span_scores.max()))
    assert [s.score for s in r.spans] == sorted((s.score for s in r.spans), reverse=True)
    for s in r.spans:
        assert s.text == context[s.start:s.end] and 0 <= s.end_token - s.start_token < 3
    spec = heads.qa_span_chart(r)
    assert spec.kind == "heatmap" and spec.matrix.shape == (n, n) and spec.row_labels == r.tokens
    assert [s.name for s in heads.qa_curves_chart(r).series] == ["P(start)", "P(end)"]


def test_fill_mask_fills_every_mask_in_one_pass(tiny_factory):
    lm = load_model(str(tiny_factory("mlm")))
    r = heads.fill_mask(lm, "the [MASK] is very [MASK] .", top_k=3)
    assert len(r.masks) == 2 and all(len(m.candidates) == 3 for m in r.masks)
    enc = lm.tokenizer("the [MASK] is very [MASK] .", return_tensors="pt")
    with torch.no_grad():
        logits = lm.model(**enc).logits[0]
    for m in r.masks:
        best = int(logits[m.position].argmax())
        assert m.candidates[0][0] == show_token(lm.tokenizer.convert_ids_to_tokens(best))
    assert "[MASK]" not in r.filled and r.filled.startswith("the ")
    # every candidate reads as a person reads it: a WordPiece continuation "##s" is "s" (the chips, the combo and
    # the chart showed "##s")
    every = heads.fill_mask(lm, "the [MASK] .", top_k=len(lm.tokenizer)).masks[0].candidates
    pieces = [t for t, _ in every]
    assert not any(t.startswith("##") for t in pieces) and "s" in pieces and "[MASK]" in pieces
    with pytest.raises(InputError, match="MASK"):
        heads.fill_mask(lm, "no mask here")


@pytest.mark.parametrize("head", ["causal-lm", "seq2seq-lm"])
def test_generation_causal_and_seq2seq(tiny_factory, head):
    lm = load_model(str(tiny_factory(head)))
    seen: list[str] = []
    a = heads.generate(lm, "the movie is", max_new_tokens=6, temperature=1.0, seed=3, partial=seen.append)
    b = heads.generate(lm, "the movie is", max_new_tokens=6, temperature=1.0, seed=3)
    assert a.kind == head and a.text == b.text and 1 <= a.new_tokens <= 6
    assert seen and seen[-1] == a.text
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        heads.generate(lm, "the movie is", max_new_tokens=6, cancel=cancel)


def test_missing_head_is_a_clear_model_error(minilm, seqcls):
    with pytest.raises(ModelError, match="needs a sequence-classification head.*[Ff]ine-tune"):
        heads.run_head(minilm, "classify", "hello")
    with pytest.raises(ModelError, match="mlm"):
        heads.run_head(seqcls, "fill-mask", "the [MASK] .")
    assert heads.tasks_for(seqcls.heads) == ["classify", "pair"]
    assert heads.tasks_for(["causal-lm"]) == ["generate"]


def test_class_chart_bars(seqcls):
    r = heads.classify(seqcls, "bad film")
    spec = heads.class_chart(r)
    assert [t for _, t in spec.x_ticks] == list(r.scores)
    assert spec.series[0].y == list(r.scores.values())
    assert spec.to_csv().count("\n") == 4


def test_a_long_text_is_read_from_its_start_without_tokenizing_it_whole(seqcls, tiny_factory, monkeypatch):
    """A dropped file of thousands of tokens: each head reads the tokens the model takes, exactly as tokenizing
    the whole text and truncating it would, says it was truncated, and never hands the tokenizer the whole text."""
    words = "john lives in paris and works at google in berlin with mary".split()
    long = " ".join(words[i % len(words)] for i in range(30_000))  # ~180k characters
    limit = heads._model_max(seqcls)
    enc = seqcls.tokenizer(long, truncation=True, max_length=limit, return_tensors="pt")
    with torch.no_grad():
        direct = torch.softmax(seqcls.model(**enc).logits[0], -1).numpy()

    lms = {"classify": seqcls, "tokens": load_model(str(tiny_factory("token-classification", NER))),
           "qa": load_model(str(tiny_factory("question-answering")))}
    longest = []
    for lm in lms.values():
        tok_cls = type(lm.tokenizer)
        real_call = tok_cls.__call__

        def spy(self, text=None, *args, _real=real_call, **kwargs):
            longest.append(max((len(t) for t in (text, *args[:1]) if isinstance(t, str)), default=0))
            return _real(self, text, *args, **kwargs)

        monkeypatch.setattr(tok_cls, "__call__", spy)
    r = heads.run_head(seqcls, "classify", long)
    assert r.truncated and np.allclose(list(r.scores.values()), direct, atol=1e-5)
    t = heads.run_head(lms["tokens"], "tokens", long)
    assert t.truncated and [long[x.start:x.end] for x in t.tokens] == long.split()[:len(t.tokens)]
    assert len(t.tokens) == heads._model_max(lms["tokens"]) - 2
    q = heads.answer(lms["qa"], "where does john live?", long)
    assert q.truncated and all(s.text == long[s.start:s.end] for s in q.spans)
    assert longest and max(longest) < len(long) // 4


def test_the_class_hint_says_what_this_model_reads(seqcls):
    """The run view's hint comes from the model (it said '[CLS] position' for a mean-pooled frozen head too)."""
    import transformers

    from explorer.core.tuning.probe import frozen_model, sentence_reading

    r = heads.run_head(seqcls, "classify", "a good movie")
    assert r.reads == "the [CLS] position through BERT's pooler, tanh(dense([CLS]))" and r.to_dict()["reads"] == r.reads
    small = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=99)
    encoder = transformers.BertModel(transformers.BertConfig(**small), add_pooling_layer=False)
    for pooling, words in (("mean", "mean of the token vectors"), ("cls", "the [CLS] vector"),
                           ("max", "max over the token vectors")):
        frozen = frozen_model(encoder, torch.nn.Linear(32, 2), pooling, "classify", encoder.config)
        assert sentence_reading(frozen, seqcls.tokenizer).startswith(words), pooling
    gpt = transformers.GPT2ForSequenceClassification(transformers.GPT2Config(n_embd=32, n_layer=1, n_head=2,
                                                                             vocab_size=99, pad_token_id=0))
    assert sentence_reading(gpt, None).startswith("the last token's vector")
    roberta = transformers.RobertaForSequenceClassification(transformers.RobertaConfig(**small))
    assert sentence_reading(roberta, type("T", (), {"cls_token": "<s>"})()) == "the <s> position's vector"
