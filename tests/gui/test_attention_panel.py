"""Attention panel: every view opens on a real analysis and exports; 512 tokens stay usable."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.gui.panels.attention import HEAD_VIEW_MAX, AttentionPanel


@pytest.fixture
def panel(qtbot, ctx_with_models):
    p = AttentionPanel(ctx_with_models)
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    return p


def _run(panel, qtbot, text, model="minilm", pair=""):
    panel.ctx.text.set_text(text)
    panel.picker.select(model)
    panel.pair_edit.setText(pair)
    panel.run()
    qtbot.waitUntil(lambda: panel.analysis is not None and panel.analysis.text == text, timeout=60_000)
    return panel.analysis


def test_every_view_opens_and_exports(panel, qtbot, tmp_path):
    a = _run(panel, qtbot, "The bank of the river was muddy.", pair="She went to the bank.")
    assert a.pair == "She went to the bank." and set(a.segment_ids) == {0, 1}
    assert "sentence B" in panel.note.text()
    # head view: all heads of a layer, blue/orange segments, hover isolates a token's lines
    panel.set_view("head")
    panel.layer_spin.setValue(1)
    hv = panel.head_view
    assert hv.maps.shape == (12, a.num_tokens, a.num_tokens) and hv.segments == a.segment_ids
    np.testing.assert_allclose(hv.maps, a.attentions[1], atol=1e-7)
    for suffix in (".png", ".svg"):
        out = hv.export(tmp_path / f"head{suffix}")
        assert out.stat().st_size > 1000
    # heatmap of one head equals the analysis
    panel.set_view("heatmap")
    panel.head_combo.setCurrentIndex(panel.head_combo.findData("4"))
    np.testing.assert_allclose(panel.heatmap.spec.matrix, a.attentions[1, 4], atol=1e-7)
    # hide special tokens: rows renormalised, [CLS] gone
    panel.special_check.setChecked(True)
    assert "[CLS]" not in panel.heatmap.spec.row_labels
    np.testing.assert_allclose(panel.heatmap.spec.matrix.sum(-1), 1.0, atol=1e-5)
    # threshold keeps fewer links
    before = int((panel.heatmap.spec.matrix > 0).sum())
    panel.share_spin.setValue(0.5)
    assert int((panel.heatmap.spec.matrix > 0).sum()) < before
    # model view: a grid of layer x head tiles; clicking one opens it in the heatmap
    panel.share_spin.setValue(1.0)
    panel.set_view("model")
    spec = panel.model_chart.spec
    tr, tc = panel._model_tile
    assert spec.matrix.shape == (6 * tr - 2, 12 * tc - 2)
    panel._open_model_cell(3 * tr + 1, 7 * tc + 1)
    assert panel.state.view == "heatmap" and panel.state.layer == 3 and panel.state.head == "7"
    # aggregate and rollout
    panel.set_view("aggregate")
    assert "mean of heads" in panel.mean_chart.spec.title and "rollout" in panel.rollout_chart.spec.title
    written = panel.export_all(tmp_path / "all")
    names = {p.name for p in written}
    assert "settings.json" in names and sum(n.endswith(".svg") for n in names) == 4
    state = panel.state_dict()
    assert state["view"] == "aggregate" and state["pair"] == "She went to the bank."


def test_decoder_shows_causal_mask(panel, qtbot):
    a = _run(panel, qtbot, "The cat sat on the mat.", model="smollm2")
    assert a.causal and "causal" in panel.note.text()
    panel.set_view("heatmap")
    assert panel.heatmap.spec.meta["causal"] and panel.heatmap._overlay is not None
    assert "grey = masked (causal)" in panel.heatmap.spec.title  # in the exported picture too
    m = panel.heatmap.spec.matrix
    assert np.triu(m, 1).max() < 1e-6  # nothing to the right
    rgba = panel.heatmap._overlay.image
    assert rgba[0, -1, 3] == 255 and rgba[-1, 0, 3] == 0  # grey above the diagonal only


def test_512_tokens_range_and_search(panel, qtbot):
    text = "Pre-trained language models such as BERT learn contextual embeddings by predicting masked words. " * 40
    a = _run(panel, qtbot, text)
    assert a.num_tokens == 512 and "only the first 512" in panel.note.text()
    panel.set_view("heatmap")
    assert panel.heatmap.spec.matrix.shape == (512, 512)
    panel.set_view("head")
    assert len(panel.head_view.labels) == HEAD_VIEW_MAX  # paged, not a blur of 512 rows
    panel.start_spin.setValue(100)
    panel.count_spin.setValue(30)
    assert panel.head_view.labels == a.labels[100:130]
    panel.search_edit.setText("contextual")  # a word split into pieces is found
    hit = panel._search_hits[0]
    assert a.labels[hit] in ("context", "ual")
    assert panel.state.range_start <= hit < panel.state.range_start + 30
    panel.search_next()
    assert panel._search_pos == 1


def test_hover_isolates_a_tokens_lines(panel, qtbot):
    from PySide6.QtCore import QPoint

    a = _run(panel, qtbot, "The bank of the river.")
    panel.set_view("head")
    panel.head_combo.setCurrentIndex(panel.head_combo.findData("0"))
    hv = panel.head_view
    qtbot.mouseMove(hv, QPoint(20, int(hv.row_y(2))))
    qtbot.waitUntil(lambda: hv.hover == 2 and hv.hover_side == "left", timeout=3000)
    assert hv.labels[2] == a.labels[2] == "bank"
    hv.grab()  # paints only that token's lines without error
    qtbot.mouseMove(hv, QPoint(hv.width() - 5, 5))
    qtbot.waitUntil(lambda: hv.hover == -1, timeout=3000)


def test_encoder_decoder_cross_attention_views(panel, qtbot, tiny_factory, tmp_path):
    from explorer.core.models.loading import load_model

    lm = load_model(str(tiny_factory("seq2seq-lm")))
    panel.ctx.models.loaded["tiny-bart"] = lm
    panel.ctx.models.changed.emit()
    a = _run(panel, qtbot, "the cat is good", model="tiny-bart", pair="the dog")
    assert a.kind == "encoder-decoder" and panel.source_combo.isVisibleTo(panel)
    panel.source_combo.setCurrentIndex(panel.source_combo.findData("cross"))
    panel.set_view("heatmap")
    assert panel.heatmap.spec.matrix.shape == (len(a.decoder_tokens), a.num_tokens)
    panel.set_view("model")
    tr, tc = panel._model_tile
    assert panel.model_chart.spec.matrix.shape == (2 * tr - 2, 2 * tc - 2)
    panel.source_combo.setCurrentIndex(panel.source_combo.findData("decoder"))
    panel.set_view("heatmap")
    assert panel.heatmap.spec.meta["causal"] and panel.heatmap._overlay is not None
    assert panel.heatmap.export(tmp_path / "dec.png").stat().st_size > 1000


def test_long_input_compact_views_match_dense(panel, qtbot, minilm):
    """A compact (top-k) analysis draws every view; the exact parts equal the dense analysis."""
    from explorer.core.inspect.analysis import analyse

    text = ("The students read the lecture notes about language models and their attention heads. " * 12)
    dense = analyse(minilm, text)
    compact = analyse(minilm, text, compact=True, top_k=16)
    panel.set_view("heatmap")
    panel.head_combo.setCurrentIndex(panel.head_combo.findData("4"))
    panel.show_analysis(compact)
    panel.layer_spin.setValue(2)
    assert "16 strongest links" in panel.note.text() and "recomputed in full" in panel.note.text()
    qtbot.waitUntil(lambda: panel.heatmap.spec is not None and panel.heatmap.spec.meta["layer"] == 2, timeout=60_000)
    np.testing.assert_allclose(panel.heatmap.spec.matrix, dense.attentions[2, 4], atol=1e-3)
    assert panel.heatmap.spec.meta["exact"]
    panel.special_check.setChecked(True)
    qtbot.waitUntil(lambda: panel.heatmap.spec.meta["hide_special"], timeout=60_000)
    ref = panel.heatmap_spec().matrix
    panel.show_analysis(dense)
    np.testing.assert_allclose(panel.heatmap_spec().matrix, ref, atol=1e-3)
    panel.show_analysis(compact)
    panel.set_view("head")
    panel.head_combo.setCurrentIndex(panel.head_combo.findData("all"))
    qtbot.waitUntil(lambda: panel.head_view.maps.shape[0] == 12, timeout=60_000)
    kept = ~np.asarray(dense.special_mask)
    n_shown = min(HEAD_VIEW_MAX, int(kept.sum()))
    assert panel.head_view.maps.shape == (12, n_shown, n_shown)
    panel.set_view("aggregate")
    qtbot.waitUntil(lambda: panel.rollout_chart.spec is not None and not panel.rollout_chart.spec.meta["exact"],
                    timeout=60_000)
    assert "top 16 links" in panel.rollout_chart.spec.title
    panel.set_view("model")
    assert "top 16 links" in panel.model_chart.spec.title
    assert np.nanmax(panel.model_chart.spec.matrix) == pytest.approx(1.0)


def test_head_view_shows_the_weights_the_cli_prints(panel, qtbot, capsys, monkeypatch, minilm):
    """Analyse, then the head view of layer 2: its maps are the CLI's --json weights of that layer (both from the
    one core analysis); a second Analyse of a new text with the same model redraws with the new weights."""
    import json

    from explorer.cli import main

    monkeypatch.setattr("explorer.commands.attention.load", lambda name, trust_remote_code=False: minilm)
    panel.set_view("head")
    for text in ("The bank of the river.", "She deposits money at the bank."):
        a = _run(panel, qtbot, text)
        panel.layer_spin.setValue(2)
        assert main(["attention", text, "--model", "minilm", "--layer", "2", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert panel.head_view.labels == a.labels and len(out["tokens"]) == a.num_tokens
        np.testing.assert_allclose(panel.head_view.maps, np.array(out["attentions"]), atol=1e-6)
        assert panel.head_combo.count() == 4 + 12 and panel.head_combo.currentData() == "all"


def test_a_long_pass_draws_the_head_view_before_it_ends(panel, qtbot, monkeypatch):
    """When the model's last pass took long, the layer on screen is drawn from the pass's preview before the
    analysis is back, with the finished analysis's own weights; the analysis then finds it drawn (no second
    drawing). A quick model's pass, with no core to spare, is drawn once, at its end."""
    panel.set_view("head")
    _run(panel, qtbot, "The bank of the river.")
    panel.layer_spin.setValue(3)
    at_result = []
    show = panel.show_analysis

    def spy(analysis):
        at_result.append((list(panel.head_view.labels), panel.head_view.maps.copy(), panel.head_view._version))
        show(analysis)

    monkeypatch.setattr(panel, "show_analysis", spy)
    notes = []
    panel.note.setText = lambda text: (notes.append(text), type(panel.note).setText(panel.note, text))
    previews = []
    preview = panel._show_preview
    monkeypatch.setattr(panel, "_show_preview", lambda p: (previews.append(p.layer), preview(p)))
    # What a pass cancelled by a second Analyse hands over is not drawn.
    monkeypatch.setattr("explorer.core.inspect.analysis.PREVIEW_AFTER_SECONDS", 0.0)
    monkeypatch.setattr("torch.get_num_threads", lambda: 1024)  # no core to spare: the pass's length decides
    panel.ctx.text.set_text("An old text nobody waits for.")
    panel.run()
    stale = panel.job
    panel._runs += 1  # as a second Analyse would
    qtbot.waitUntil(lambda: stale.done, timeout=60_000)
    assert previews == []
    panel._runs -= 1

    a = _run(panel, qtbot, "She deposits money at the bank every week.")
    labels, maps, version = at_result[-1]
    assert previews == [3]
    assert labels == a.labels and np.array_equal(maps, a.attentions[3])  # drawn before the result came
    assert panel.head_view._version == version  # and not drawn again
    assert "layer 3" in panel.head_view.title
    assert "layer 3 is drawn, the other layers are still running" in notes[-2]  # then the analysis's own note
    assert notes[-1].startswith(f"minilm: {a.num_tokens} tokens")

    monkeypatch.setattr("explorer.core.inspect.analysis.PREVIEW_AFTER_SECONDS", 3600.0)
    a = _run(panel, qtbot, "The river bank flooded.")
    assert previews == [3]  # a quick model: no preview asked for
    assert at_result[-1][0] != a.labels and panel.head_view.labels == a.labels


@pytest.mark.parametrize("model", ["minilm", "smollm2"])
def test_the_preview_draws_what_the_finished_analysis_draws(panel, qtbot, monkeypatch, model):
    """With special tokens hidden, a threshold, one head or the mean, and a token range: the drawing made from the
    pass's preview is the finished analysis's drawing (the analysis draws nothing new)."""
    monkeypatch.setattr("torch.get_num_threads", lambda: 1024)
    monkeypatch.setattr("explorer.core.inspect.analysis.PREVIEW_AFTER_SECONDS", 0.0)
    panel.set_view("head")
    _run(panel, qtbot, "The bank of the river was muddy after the rain.", model=model)
    panel.layer_spin.setValue(1)
    panel.special_check.setChecked(True)
    panel.share_spin.setValue(0.6)
    panel.start_spin.setValue(2)
    versions = []
    show = panel.show_analysis
    monkeypatch.setattr(panel, "show_analysis", lambda a: (versions.append(panel.head_view._version), show(a)))
    for i, head in enumerate(("mean", "3", "all")):
        panel.head_combo.setCurrentIndex(panel.head_combo.findData(head))
        a = _run(panel, qtbot, f"Text {i}: she went to the bank to deposit her money on a rainy day.", model=model)
        assert panel.head_view._version == versions[-1]  # drawn from the preview, not again
        kept = ~np.asarray(a.special_mask)
        expected = a.attentions[1] if head == "all" else (
            a.attentions[1].mean(0)[None] if head == "mean" else a.attentions[1][3][None])
        expected = expected[:, kept][:, :, kept]
        expected = expected / expected.sum(-1, keepdims=True)
        np.testing.assert_allclose(panel.head_view.maps, expected[:, 2:, 2:], atol=1e-6)
        assert panel.head_view.keep is not None and panel.head_view.labels[0] == np.array(a.labels)[kept][2]


def test_a_long_input_draws_its_rows_on_screen_during_the_pass(panel, qtbot, monkeypatch):
    """A long (compact) pass hands over the rows on screen of the layer on screen as it makes them: the head view
    is drawn from them before the analysis is back, the analysis keeps them (no recompute job after the pass),
    and its drawing is the same one (the store serves those very rows)."""
    from explorer.core.inspect.attention import shown_rows

    monkeypatch.setattr("explorer.core.inspect.analysis.dense_limit", lambda loaded: 8)  # any text past 8 tokens is long
    monkeypatch.setattr("torch.get_num_threads", lambda: 1024)
    monkeypatch.setattr("explorer.core.inspect.analysis.PREVIEW_AFTER_SECONDS", 0.0)
    panel.set_view("head")
    panel.special_check.setChecked(True)
    text = "The students read the lecture notes about language models and their attention heads. " * 3
    first = _run(panel, qtbot, text)
    assert not first.exact
    panel.layer_spin.setValue(2)
    panel.start_spin.setValue(3)
    panel.count_spin.setValue(20)
    qtbot.waitUntil(lambda: panel.head_view.title.startswith("minilm · layer 2"), timeout=60_000)
    recompute = panel._prepare_job  # layer 2 of the first analysis had to be made again
    at_result = []
    show = panel.show_analysis
    monkeypatch.setattr(panel, "show_analysis",
                        lambda a: (at_result.append((list(panel.head_view.labels), panel.head_view._version)), show(a)))
    a = _run(panel, qtbot, "She deposits her money at the bank by the river every week. " * 3)
    rows = shown_rows(a.special_mask, True, 3, 20)
    labels, version = at_result[-1]
    assert labels == [a.labels[i] for i in rows]  # drawn from the preview, before the result
    assert panel._prepare_job is recompute and panel.head_view._version == version  # no recompute, no redraw
    kept = np.flatnonzero(~np.asarray(a.special_mask))
    block = a.attentions.rows(2, rows).astype(np.float32)[:, :, kept]
    block /= block.sum(-1, keepdims=True)
    np.testing.assert_allclose(panel.head_view.maps, block[:, :, 3:23], atol=1e-6)
    # The heatmap's rows (all 120 from 'Tokens from', not the head view's at most 96) are kept the same way.
    panel.count_spin.setValue(120)
    assert panel.count_spin.text() == "120 (head view: 96)"  # the head view draws at most 96: the box says so
    panel.set_view("heatmap")
    assert panel.count_spin.text() == "120"
    qtbot.waitUntil(lambda: panel.heatmap.spec is not None and panel.heatmap.spec.meta["layer"] == 2, timeout=60_000)
    recompute = panel._prepare_job
    panel.heatmap.spec = None
    a = _run(panel, qtbot, "A river bank is not a money bank, the lecture says, and context tells them apart. " * 8)
    qtbot.waitUntil(lambda: panel.heatmap.spec is not None, timeout=60_000)
    assert panel._prepare_job is recompute
    assert panel.heatmap.spec.matrix.shape == (120, 120) and panel.heatmap.spec.meta["layer"] == 2


def test_views_are_marked_stale_until_analysed_again(panel, qtbot):
    """Another model or text: the old analysis's drawing stays but is veiled "stale: press F5" until Analyse."""
    _run(panel, qtbot, "The cat sat on the mat.")
    assert not panel.stale_veil.isVisible()
    panel.picker.select("smollm2")
    assert panel.stale_veil.isVisible() and "stale: press F5" in panel.stale_veil.text()
    assert panel.stale_veil.geometry() == panel.stack.rect()
    panel.picker.select("minilm")  # back to what is drawn: not stale
    assert not panel.stale_veil.isVisible()
    panel.ctx.text.set_text("Another text entirely.")
    assert panel.stale_veil.isVisible()
    _run(panel, qtbot, "Another text entirely.", model="smollm2")
    assert not panel.stale_veil.isVisible()
