"""Generation on the bundled SmolLM2: greedy equals model.generate, streaming equals non-streaming, stop, cancel."""

from __future__ import annotations

import threading

import pytest

from explorer.core.io.errors import Cancelled, InputError
from explorer.core.models.tokens import show_token
from explorer.core.prompting.generation import GenerationSettings, generate, step_chart

PROMPT = "Q: What is the capital of France?\nA: Paris\nQ: What is the capital of Japan?\nA:"


def test_greedy_equals_model_generate(smollm2):
    import torch

    tok = smollm2.tokenizer
    enc = tok(PROMPT, return_tensors="pt")
    with torch.no_grad():
        ref = smollm2.model.generate(**enc, max_new_tokens=12, do_sample=False)
    want = tok.decode(ref[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    res = generate(smollm2, PROMPT, GenerationSettings(max_new_tokens=12))
    assert res.text == want
    assert res.n_prompt_tokens == enc["input_ids"].shape[1]
    # Greedy: every chosen token is the top-1 of its step's distribution, listed best first.
    for step in res.steps:
        probs = [p for _, p in step.top]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-5
        assert step.top[0][0] == step.token and step.prob == pytest.approx(probs[0])


def test_streaming_gives_the_same_text_as_plain(smollm2):
    for settings in (
        GenerationSettings(max_new_tokens=16, stop=["\nQ:"]),
        GenerationSettings(max_new_tokens=16, do_sample=True, temperature=0.9, top_k=40, top_p=0.9, seed=7),
    ):
        plain = generate(smollm2, PROMPT, settings)
        deltas: list[str] = []
        streamed = generate(smollm2, PROMPT, settings, partial=lambda d, out=deltas: out.append(d["delta"]))
        assert streamed.text == plain.text == "".join(deltas)
        assert [s.token_id for s in streamed.steps] == [s.token_id for s in plain.steps]


def test_sampling_is_seeded(smollm2):
    s = GenerationSettings(max_new_tokens=12, do_sample=True, temperature=1.2, seed=1)
    a = generate(smollm2, "Once upon a time", s).text
    assert generate(smollm2, "Once upon a time", s).text == a
    others = {generate(smollm2, "Once upon a time", GenerationSettings(12, True, 1.2, seed=k)).text for k in (2, 3)}
    assert others - {a}
    # top_k = 1 sampling can only pick the argmax.
    greedy = generate(smollm2, "Once upon a time", GenerationSettings(max_new_tokens=8)).text
    assert generate(smollm2, "Once upon a time", GenerationSettings(8, True, 1.5, top_k=1, seed=5)).text == greedy


def test_stop_sequence_cuts_the_text(smollm2):
    res = generate(smollm2, PROMPT, GenerationSettings(max_new_tokens=20, stop=["\n"]))
    assert res.stop_reason == "stop"
    assert "\n" not in res.text and res.text.strip()


def test_cancel_stops_between_tokens(smollm2):
    cancel = threading.Event()
    seen = []

    def on_token(d):
        seen.append(d)
        if len(seen) == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        generate(smollm2, "Once upon a time", GenerationSettings(max_new_tokens=40), partial=on_token, cancel=cancel)
    assert len(seen) == 2


def test_bad_settings_are_refused(smollm2):
    with pytest.raises(InputError, match="Temperature"):
        generate(smollm2, "Hi", GenerationSettings(do_sample=True, temperature=0))
    with pytest.raises(InputError, match="empty"):
        generate(smollm2, "", GenerationSettings())
    with pytest.raises(InputError, match="context"):
        generate(smollm2, "Hi", GenerationSettings(max_new_tokens=smollm2.max_length))


def test_step_chart_shows_the_distribution(smollm2):
    res = generate(smollm2, PROMPT, GenerationSettings(max_new_tokens=3, top_n=5))
    spec = step_chart(res, 1)
    assert len(spec.series[0].y) == 5
    assert spec.series[0].y[0] == pytest.approx(res.steps[1].top[0][1])
    assert "step 2" in spec.title and spec.to_csv().count("\n") == 6
    chosen = show_token(res.steps[1].token) or "∅"
    assert f"(chosen: {chosen}," in spec.title and "'" not in chosen  # as the Steps list shows it, no repr quotes
