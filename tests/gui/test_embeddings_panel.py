"""Embeddings panel: presets, similarity with baseline, token heatmap, layer mix, corpus view; exports."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from explorer.core.io.fileio import TextFile
from explorer.gui.panels.embeddings import EmbeddingsPanel


@pytest.fixture
def panel(qtbot, ctx_with_models):
    p = EmbeddingsPanel(ctx_with_models)
    qtbot.addWidget(p)
    p.resize(1200, 800)
    p.show()
    return p


def _choose(panel, qtbot, name_part):
    i = next(i for i in range(panel.preset_combo.count()) if name_part in panel.preset_combo.itemText(i))
    panel.result = None
    panel.preset_combo.setCurrentIndex(i)
    qtbot.waitUntil(lambda: panel.result is not None, timeout=60_000)
    return panel.result


def test_bank_preset_falls_and_exports(panel, qtbot, tmp_path):
    r = _choose(panel, qtbot, "bank: river vs money (one sentence each)")
    assert r.model_name == "minilm" and panel.picker.current_name() == "minilm"
    layers = np.array(r.pairs[0].layers)
    assert layers[-1] < layers[0] - 0.1
    spec = panel.sim_chart.spec
    assert len(spec.series) == 2 and spec.series[1].dashed and "baseline" in spec.series[1].name
    assert "goes from" in panel.note.text()
    # layer mix: mean of last 2 layers gives the mean-vector cosine
    panel.mix_mode.setCurrentIndex(panel.mix_mode.findData("last_n"))
    panel.mix_layer.setValue(2)
    assert "mean of last 2 layers" in panel.mix_label.text()
    # token similarity heatmap at a chosen layer
    panel.tabs.setCurrentIndex(1)
    panel.token_layer.setValue(2)
    a = r.analyses[0]
    n = a.num_tokens - sum(a.special_mask)
    assert panel.token_chart.spec.matrix.shape == (n, n) and "layer 2" in panel.token_chart.spec.title
    panel.token_use_mix.setCurrentIndex(1)
    assert "mean of last 2" in panel.token_chart.spec.title
    for suffix in (".png", ".svg", ".csv"):
        assert panel.sim_chart.export(tmp_path / f"sim{suffix}").stat().st_size > 100
        assert panel.token_chart.export(tmp_path / f"tok{suffix}").stat().st_size > 100
    assert panel.state_dict()["contexts"][0][1] == "bank"


def test_two_senses_and_the_corrected_view(panel, qtbot, tmp_path):
    r = _choose(panel, qtbot, "bank: river twice")
    assert [panel.table.item(i, 3).text() for i in range(4)] == ["river", "river", "money", "money"]
    # the note counts what the progress bar counts: the 4 sentences and the baseline's reference pool
    panel.result = None
    panel.compare()
    assert f"your 4 sentences and {r.pool_sentences - 4} reference sentences" in panel.note.text()
    assert f"({r.pool_sentences} in all)" in panel.note.text()
    qtbot.waitUntil(lambda: panel.result is not None, timeout=60_000)
    r = panel.result
    names = [s.name for s in panel.sim_chart.spec.series]
    assert "same sense: mean of 2 pairs" in names
    assert "different sense: mean of 4 pairs" in names
    assert "best layer" in panel.note.text()
    panel.view_combo.setCurrentIndex(panel.view_combo.findData("centred"))
    spec = panel.sim_chart.spec
    assert spec.meta["view"] == "centred" and spec.series[-1].y == r.baseline_centred
    best = r.best_layer("centred")
    m = r.sense_means("centred")
    assert m["same"][best] > m["different"][best]
    assert f"best layer {best}" in panel.note.text()
    # the layer-mix line follows the view: mean-centred cosines under the centred chart (it printed raw ones)
    last = r.pairs[0].centred[-1]
    assert panel.mix_label.text().startswith("Mean-centred cosine under the layer mix (layer -1)")
    assert f"1·2: {last:.3f}" in panel.mix_label.text() and f"{r.pairs[0].layers[-1]:.3f}" not in panel.mix_label.text()
    panel.view_combo.setCurrentIndex(panel.view_combo.findData("minus-baseline"))
    assert panel.sim_chart.spec.series[-1].y == [0.0] * len(r.baseline)
    assert f"1·2: {r.pairs[0].layers[-1] - r.baseline[-1]:.3f}" in panel.mix_label.text()
    state = panel.state_dict()
    assert state["view"] == "minus-baseline" and state["contexts"][0][3] == "river"
    assert panel.sim_chart.export(tmp_path / "two.csv").stat().st_size > 100


def test_chinese_dog_preset_runs_on_gemma3(panel, qtbot, gemma3):
    panel.ctx.models.loaded["gemma3"] = gemma3
    panel.ctx.models.changed.emit()
    r = _choose(panel, qtbot, "狗")
    assert r.model_name == "gemma3" and panel.picker.current_name() == "gemma3"
    assert all(len(o.pieces) == 1 for o in r.occurrences)  # 狗 is one SentencePiece piece in Gemma's vocabulary
    assert len(r.baseline) == 19


def test_corpus_view_neighbours(panel, qtbot, tmp_path):
    panel.ctx.add_files([
        TextFile("river.txt", "The bank of the river was muddy. Fish swam near the bank.", "utf-8"),
        TextFile("money.txt", "He robbed a bank. The bank lent him money for a house.", "utf-8"),
    ])
    assert "2 file" in panel.files_label.text()
    panel.picker.select("minilm")
    panel.tabs.setCurrentIndex(2)
    panel.corpus_word.setText("bank")
    qtbot.keyClick(panel.corpus_word, Qt.Key.Key_Return)  # Enter in the word box searches
    qtbot.waitUntil(lambda: panel.corpus is not None, timeout=60_000)
    spec = panel.corpus_chart.spec
    assert [s.name for s in spec.series] == ["river.txt", "money.txt"]
    assert "[bank]" in spec.series[1].hover[0]
    panel.corpus_chart.pointClicked.emit("money.txt", 0)  # He robbed a bank.
    items = [panel.neighbours.item(i).text() for i in range(panel.neighbours.count())]
    assert items[0].startswith("▶ money.txt: He robbed") and items[1].split()[1] == "money.txt:"
    panel.corpus_color.setCurrentIndex(1)
    assert {s.name for s in panel.corpus_chart.spec.series} <= {"cluster 1", "cluster 2"}
    assert panel.corpus_chart.export(tmp_path / "corpus.png").stat().st_size > 1000
