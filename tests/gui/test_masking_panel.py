"""Masking panel: strips coloured by action, compare view, statistics charts, objectives' attention masks,
fill-mask message, export and saved state, driven through the real job runner."""

from __future__ import annotations

import json

import numpy as np

from explorer.gui.panels.masking import MaskingPanel

TEXT = ("SpanBERT masks contiguous spans of whole words. Google hired John Smith in New York. "
        "The unbelievably quick brown fox jumps over the lazy dog.")


def make(qtbot, ctx, model="minilm"):
    ctx.text.set_text(TEXT)
    panel = MaskingPanel(ctx)
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.show()
    panel.picker.select(model)
    return panel


def wait_jobs(qtbot, ctx):
    qtbot.waitUntil(lambda: not ctx.runner.active, timeout=60000)


def masked(qtbot, ctx, strategy):
    """A panel that has masked the text with ``strategy``."""
    panel = make(qtbot, ctx)
    panel.strategy_combo.setCurrentIndex(panel.strategy_combo.findData(strategy))
    panel.run()
    wait_jobs(qtbot, ctx)
    return panel


def test_span_masking_strips_compare_and_stats(qtbot, ctx_with_models, tmp_path):
    ctx = ctx_with_models
    panel = masked(qtbot, ctx, "span")
    mk = panel.result
    assert mk is not None and mk.strategy == "span" and mk.masked
    strip = panel.original_strip
    assert strip.tokens[0] == "[CLS]" and len(strip.tokens) == mk.tt.n
    assert {strip.actions[i] for i in mk.masked} <= {"mask", "random", "keep"}
    assert all(strip.actions[i] is None for i in range(mk.tt.n) if i not in mk.masked)
    assert len(panel.target_strip.tokens) == len(mk.masked)
    # every strategy shown on the same text at once, each never splitting a word except random
    assert [m.strategy for m in panel.compare] == ["random", "wwm", "phrase", "entity", "span"]
    for m in panel.compare:
        acts = panel.compare_strips[m.strategy].actions
        assert sum(a is not None for a in acts) == len(m.masked)
    # resample draws another masking
    before = list(mk.masked)
    panel.resample()
    wait_jobs(qtbot, ctx)
    assert panel.seed_spin.value() == 1 and panel.result.masked != before

    panel.samples_spin.setValue(500)
    panel.run_stats()
    wait_jobs(qtbot, ctx)
    hist = panel.hist_chart.spec
    assert hist is not None and "theory" in hist.series[-1].name
    assert panel.freq_chart.spec.series[0].y[0] == 0.0  # [CLS] never masked
    assert "mask ratio" in panel.stats_label.text()
    paths = panel.export_all(tmp_path / "out")
    names = {p.name for p in paths}
    assert any(n.endswith(".svg") for n in names) and any(n.endswith(".csv") for n in names)
    assert len([n for n in names if n.endswith(".png")]) == 3  # attention mask, span lengths, frequency
    panel.grab().save(str(tmp_path / "panel.png"))


def test_objectives_draw_their_attention_mask(qtbot, ctx_with_models):
    ctx = ctx_with_models
    panel = make(qtbot, ctx)
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("objective"))
    for kind in ("gpt", "xlnet", "mass", "token-delete"):
        panel.objective_combo.setCurrentIndex(panel.objective_combo.findData(kind))
        panel.run()
        wait_jobs(qtbot, ctx)
        res = panel.result
        assert res.kind == kind
        m = np.asarray(panel.attention_chart.spec.matrix)
        k = panel.mask_count.value()  # the chart shows a window of positions (all when they fit)
        assert m.shape == np.asarray(res.attention_mask)[:k, :k].shape
        if kind == "gpt":
            assert (m == np.tril(np.ones_like(m))).all()
        if kind == "xlnet":
            assert panel.stream_combo.isVisibleTo(panel)
            panel.stream_combo.setCurrentIndex(1)
            assert "query" in panel.attention_chart.spec.title
        if kind == "token-delete":
            assert "deleted" in panel.original_strip.actions
            assert len(panel.input_strip.tokens) < len(panel.original_strip.tokens)
    assert panel.ratio_spin.value() == 0.15  # token-delete's own ratio (MASS had set 0.5)


def test_fill_mask_minilm_mlm_beside_left_only_and_causal(qtbot, ctx_with_models):
    ctx = ctx_with_models
    panel = masked(qtbot, ctx, "wwm")
    assert "minilm-mlm" not in ctx.models.loaded
    panel.run_fill()  # MiniLM as published cannot fill: minilm-mlm (same vocabulary) is loaded and fills
    qtbot.waitUntil(lambda: "GPT only the left" in panel.fill_view.toPlainText(), timeout=60000)
    wait_jobs(qtbot, ctx)
    shown = panel.fill_view.toPlainText()
    assert "one forward pass" in shown and "continued by this project" in shown
    # the lecture's contrast for the first mask: minilm-mlm sees both sides, the loaded decoder only the left
    contrast = shown.split("GPT only the left", 1)[1]
    assert "minilm-mlm" in contrast and "both sides" in contrast
    assert "smollm2" in contrast and "left only" in contrast
    assert shown.count("[MASK]") + shown.count("~") >= 1 or "model saw" in shown
    panel.picker.select("smollm2")
    panel.run()
    wait_jobs(qtbot, ctx)
    panel.run_fill()
    wait_jobs(qtbot, ctx)
    assert "left" in panel.fill_view.toPlainText()


def test_state_round_trip_and_no_model(qtbot, ctx):
    panel = MaskingPanel(ctx)
    qtbot.addWidget(panel)
    panel.run()
    assert "Load a model" in panel.note.text()
    panel.mode_combo.setCurrentIndex(1)
    panel.objective_combo.setCurrentIndex(panel.objective_combo.findData("xlnet"))
    panel.seed_spin.setValue(7)
    panel.p_spin.setValue(0.3)
    state = json.loads(json.dumps(panel.state_dict()))
    other = MaskingPanel(ctx)
    qtbot.addWidget(other)
    other.restore_state(state)
    assert other.state_dict() == state
    assert other.objective_combo.currentData() == "xlnet" and other.seed_spin.value() == 7


def test_electra_on_minilm_samples_from_minilm_mlm(qtbot, ctx_with_models):
    ctx = ctx_with_models
    panel = make(qtbot, ctx)
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("objective"))
    panel.objective_combo.setCurrentIndex(panel.objective_combo.findData("electra"))
    panel.run()  # loads minilm-mlm, ELECTRA's generator for MiniLM's vocabulary, then builds
    qtbot.waitUntil(lambda: getattr(panel.result, "kind", None) == "electra", timeout=60000)
    wait_jobs(qtbot, ctx)
    res = panel.result
    assert res.extra["generator_kind"] == "mlm"
    assert "Generator: minilm-mlm (masked LM" in panel.note.text()
    replaced = [res.input_tokens[i] for i, a in enumerate(res.input_actions) if a == "replaced"]
    assert replaced and not any(t.startswith("[") for t in replaced)
    assert "replaced" in panel.input_strip.actions


def test_fill_mask_predictions_leave_with_the_masks_they_were_for(qtbot, ctx_with_models):
    """Predictions belong to one masking: a new objective or a new masking replaces them with what to do next,
    and predictions that arrive for masks no longer on screen are not shown."""
    ctx = ctx_with_models
    panel = masked(qtbot, ctx, "wwm")
    first = panel.result
    panel.run_fill()
    qtbot.waitUntil(lambda: "fill" in panel.jobs, timeout=60000)  # after minilm-mlm has loaded
    wait_jobs(qtbot, ctx)
    fill = panel.jobs["fill"]
    assert "model saw" in panel.fill_view.toPlainText()

    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("objective"))
    panel.run()
    wait_jobs(qtbot, ctx)
    shown = panel.fill_view.toPlainText()
    assert "model saw" not in shown and "choose BERT-family masking" in shown

    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("masking"))
    panel.seed_spin.setValue(panel.seed_spin.value() + 1)
    panel.run()
    wait_jobs(qtbot, ctx)
    assert panel.result is not first and "predict the masks shown now" in panel.fill_view.toPlainText()
    # The first masking's predictions, arriving late, are not drawn over the new masks.
    assert fill.done
    from explorer.core.pretraining.fillmask import fill_masks

    late = fill_masks(ctx.models.get("minilm-mlm"), first.tt.ids, first.input_ids, first.masked, top_k=5)
    panel._show_fill(late, first)
    assert "model saw" not in panel.fill_view.toPlainText()
    panel.run_fill()
    wait_jobs(qtbot, ctx)
    assert "model saw" in panel.fill_view.toPlainText()


def test_fill_masks_fills_the_mask_the_user_typed(qtbot, ctx_with_models):
    """"The capital of France is [MASK]." — Fill masks fills the typed [MASK] (as ``lm-explorer fill`` does), not
    words the strategy drew; without a typed mask it fills the strategy's masks."""
    ctx = ctx_with_models
    panel = masked(qtbot, ctx, "wwm")
    ctx.text.set_text("The capital of France is [MASK].")
    panel.run_fill()
    wait_jobs(qtbot, ctx)
    shown = panel.fill_view.toPlainText()
    assert "1 mask(s) filled" in shown and "Filled:" in shown
    table = shown[shown.index("top guesses"):].split()
    assert table[2:4] == ["1", "6"]  # mask 1 is token 6: [CLS] the capital of france is [MASK]
    assert "model saw" not in shown  # not the strategy's table
    panel.picker.select("smollm2")  # a causal LM cannot fill a typed mask: said in one line, as the CLI says it
    panel.run_fill()
    wait_jobs(qtbot, ctx)
    assert "mask" in panel.fill_view.toPlainText().lower() and "Filled:" not in panel.fill_view.toPlainText()
    ctx.text.set_text(TEXT)  # no typed mask: the strategy's masks again
    panel.picker.select("minilm")
    panel.run()
    wait_jobs(qtbot, ctx)
    panel.run_fill()
    wait_jobs(qtbot, ctx)
    assert "model saw" in panel.fill_view.toPlainText()


def test_statistics_and_fills_of_other_inputs_are_not_shown_as_current(qtbot, ctx_with_models):
    """Statistics sampled from another text or recipe are veiled "stale: press F5"; a typed mask's fill goes
    when the model changes (it said "1 mask(s) filled…" under the new model's name)."""
    ctx = ctx_with_models
    panel = masked(qtbot, ctx, "span")
    panel.samples_spin.setValue(200)
    panel.run_stats()
    wait_jobs(qtbot, ctx)
    assert panel.stats is not None and not panel.stats_veil.isVisible()
    ctx.text.set_text(TEXT + " One more sentence.")
    assert panel.stats_veil.isVisible()
    ctx.text.set_text(TEXT)
    assert not panel.stats_veil.isVisible()
    panel.strategy_combo.setCurrentIndex(panel.strategy_combo.findData("wwm"))
    assert panel.stats_veil.isVisible()
    ctx.text.set_text("The capital of France is [MASK].")
    panel.run_fill()
    wait_jobs(qtbot, ctx)
    assert "1 mask(s) filled" in panel.fill_view.toPlainText()
    panel.picker.select("smollm2")
    assert "filled" not in panel.fill_view.toPlainText()


def test_chips_and_axes_show_tokens_as_text_on_a_byte_level_model(qtbot, ctx_with_models):
    """SmolLM2's pieces ("Ġwas", "3:Ġfox") read as words in the masking chips and the objective's axes."""
    ctx = ctx_with_models
    panel = make(qtbot, ctx, "smollm2")
    panel.strategy_combo.setCurrentIndex(panel.strategy_combo.findData("random"))
    panel.ratio_spin.setValue(0.5)
    panel.run()
    wait_jobs(qtbot, ctx)
    for strip in (panel.original_strip, panel.input_strip, panel.target_strip):
        assert strip.tokens and not any("Ġ" in t or "▁" in t for t in strip.tokens), strip.tokens
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("objective"))
    panel.objective_combo.setCurrentIndex(panel.objective_combo.findData("xlnet"))
    panel.run()
    wait_jobs(qtbot, ctx)
    spec = panel.attention_chart.spec
    assert any("fox" in label for label in spec.col_labels)
    assert not any("Ġ" in label for label in spec.col_labels + spec.row_labels)


def test_the_strips_follow_the_text(qtbot, ctx_with_models):
    """A new text re-masks by itself after a pause in typing (the strips never show the last text as this one);
    a hidden panel does it when shown again."""
    ctx = ctx_with_models
    panel = masked(qtbot, ctx, "random")
    assert "contiguous" in panel.original_strip.tokens
    ctx.text.set_text("The capital of France is [MASK].")
    qtbot.waitUntil(lambda: "France" in " ".join(panel.original_strip.tokens), timeout=60_000)
    panel.hide()
    ctx.text.set_text("Bees make honey in the summer.")
    qtbot.wait(600)
    assert "Bees" not in " ".join(panel.original_strip.tokens)
    panel.show()
    qtbot.waitUntil(lambda: "Bees" in " ".join(panel.original_strip.tokens), timeout=60_000)


def test_the_first_note_says_what_is_still_missing(qtbot, ctx_with_models):
    """Before the first Show the note follows the text and the model: no text, then a text and a model."""
    ctx = ctx_with_models
    ctx.text.set_text("")
    panel = MaskingPanel(ctx)
    qtbot.addWidget(panel)
    panel.picker.select("minilm")
    assert "Type or drop a text" in panel.note.text()
    ctx.text.set_text("Bees make [MASK] in the summer.")
    assert panel.note.text().startswith("Press Show (F5)")
