"""The Heads panel: the right inputs per head, each result drawn, and the fine-tune lab end to end on a tiny
encoder (figures before training, live chart, result opened in the run view)."""

from __future__ import annotations

import pytest

from explorer.core.models.loading import load_model
from explorer.gui.panels.heads.panel import HeadsPanel


@pytest.fixture
def panel(qtbot, ctx, tiny_factory):
    ctx.models.loaded.update({
        "cls": load_model(str(tiny_factory("sequence-classification", ["neg", "pos"]))),
        "qa": load_model(str(tiny_factory("question-answering"))),
        "tiny-base": load_model(str(tiny_factory("base"))),
    })
    ctx.models.changed.emit()
    p = HeadsPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1100, 800)
    p.show()
    return p


def _run(qtbot, p, model, task, a, b=""):
    p.picker.select(model)
    p.task_combo.setCurrentIndex(p.task_combo.findData(task))
    p.edit1.setPlainText(a)
    p.edit2.setPlainText(b)
    p.result = None
    p.run()
    qtbot.waitUntil(lambda: p.result is not None, timeout=30000)


def test_inputs_follow_the_head_and_results_are_drawn(qtbot, panel):
    p = panel
    p.picker.select("cls")
    assert [p.task_combo.itemData(i) for i in range(p.task_combo.count())] == ["classify", "pair"]
    p.task_combo.setCurrentIndex(p.task_combo.findData("classify"))
    assert p.edit2.isHidden() and p.label1.text() == "Text"
    p.task_combo.setCurrentIndex(p.task_combo.findData("pair"))
    assert not p.edit2.isHidden() and p.label2.text() == "Sentence B"
    p.picker.select("qa")  # before any run, the empty result view is the task's own
    assert p.views.currentWidget().isAncestorOf(p.qa_curves)
    p.picker.select("cls")
    assert p.views.currentWidget().isAncestorOf(p.class_chart)
    _run(qtbot, p, "cls", "pair", "good movie", "bad film")
    assert p.result.text_pair == "bad film"
    assert [t for _, t in p.class_chart.spec.x_ticks] == ["neg", "pos"]
    assert p.result.label in p.class_label.text()

    _run(qtbot, p, "qa", "qa", "where does john live?", "john lives in paris")
    assert p.label1.text() == "Question" and p.label2.text() == "Context"
    assert p.qa_matrix.spec.kind == "heatmap" and p.qa_matrix.spec.matrix.shape == (4, 4)
    assert p.spans.count() == len(p.result.spans) > 0
    best = p.result.spans[0]
    assert best.text in p.qa_text.toPlainText()
    p._cell_clicked(0, 3)  # a heatmap click highlights that span
    assert "Tokens 0–3" in p.qa_text.toPlainText()
    # The class chart of the earlier model is gone: only the QA result's two charts are on screen.
    assert set(p.charts()) == {p.qa_curves, p.qa_matrix}
    assert p.class_chart.spec is None and p.class_label.text() == ""


def test_bare_encoder_says_to_fine_tune(panel):
    panel.picker.select("tiny-base")
    assert panel.task_combo.count() == 0 and not panel.run_button.isEnabled()
    assert "Fine-tune lab" in panel.run_note.text()


def test_finetune_lab_end_to_end(qtbot, panel, tmp_path):
    p = panel
    bad = tmp_path / "bad.csv"
    bad.write_text("words,x\nhello,1\n")
    p.set_data_file(str(bad))
    assert p.data is None and "found: words, x" in p.data_note.text()

    good = tmp_path / "good.csv"
    good.write_text("text,label\n" + "good movie,pos\nbad movie,neg\ngreat film,pos\nterrible film,neg\n" * 3)
    p.ft_picker.select("tiny-base")
    p.set_data_file(str(good))
    assert p.data.task == "classify" and p.preview.rowCount() == 8
    qtbot.waitUntil(lambda: p.costs is not None, timeout=30000)
    assert [p.cost_table.item(r, 0).text() for r in range(3)] == ["frozen", "full", "adapter"]
    assert p.cost_table.item(0, 1).text() == f"{32 * 2 + 2:,}"

    assert p.cost_table.rowCount() == 4 and p.cost_table.item(3, 0).text() == "scratch"
    assert not p.pooling.isHidden() and "L-BFGS" in p.rule_note.text()
    assert p.pooling.itemText(0) == "the model's own: pooler"  # the tiny BERT checkpoint holds pooler weights

    p.mode_group.button(2).setChecked(True)  # adapter
    assert p.epochs.value() == 3 and p.pooling.isHidden() and p.epochs_label.text() == "Epochs"
    p.epochs.setValue(2)
    p.train()
    qtbot.waitUntil(lambda: p.ft_result is not None, timeout=60000)
    r = p.ft_result
    assert r.mode == "adapter" and len(r.history) == 2
    assert p.cost_table.item(2, 3).text().endswith("written") and str(r.stored_bytes // 1000) in p.ft_note.text()
    names = [s.name for s in p.train_chart.spec.series]
    assert "validation accuracy" in names and "batch loss" in names
    # the session brings the run back: its note, its bytes written and its curves (they were lost on restart)
    import json

    again = HeadsPanel(p.ctx)
    qtbot.addWidget(again)
    again.restore_state(json.loads(json.dumps(p.state_dict())))
    back = again.ft_result
    assert (back.val_accuracy, back.stored_bytes, back.mode) == (r.val_accuracy, r.stored_bytes, "adapter")
    assert again.ft_note.text() == p.ft_note.text() and again.open_result.isEnabled()
    assert [(s.name, list(s.x), list(s.y)) for s in again.train_chart.spec.series] == [
        (s.name, list(s.x), list(s.y)) for s in p.train_chart.spec.series]
    qtbot.waitUntil(lambda: again.costs is not None and again.cost_table.item(2, 3) is not None, timeout=30000)
    assert again.cost_table.item(2, 3).text() == p.cost_table.item(2, 3).text()

    # evaluate the fine-tune on a file: the confusion matrix is drawn and exportable
    p.evaluate_finetune(str(good))
    qtbot.waitUntil(lambda: p.eval_result is not None, timeout=30000)
    assert p.lab_eval_chart.spec.kind == "heatmap" and p.lab_eval_chart.spec.matrix.sum() == 12
    assert "macro-F1" in p.lab_eval_text.toPlainText()
    p.lab_eval_chart.export(str(tmp_path / "confusion.csv"))
    assert (tmp_path / "confusion.csv").read_text().count("\n") >= 3

    # "why pre-train": the same architecture from pre-trained and from random weights
    p.epochs.setValue(1)
    p.compare_scratch()
    qtbot.waitUntil(lambda: p.why_result is not None, timeout=60000)
    names = [s.name for s in p.why_chart.spec.series]
    assert "scratch accuracy" in names and "pre-trained loss" in names
    p.why_chart.export(str(tmp_path / "why.png"))
    assert (tmp_path / "why.png").read_bytes()[:4] == b"\x89PNG"

    # saving into an earlier fine-tune asks first; a folder of the user's own files is refused
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "NOTES.md").write_text("mine")
    p.out_edit.setText(str(busy))
    p.ft_result = None
    p.train()
    assert "not empty" in p.ft_note.text() and p.ft_result is None
    asked = []
    p.confirm_replace = lambda out: asked.append(out) or False
    p.out_edit.setText(r.out_dir)
    p.train()
    assert asked and "Not trained" in p.ft_note.text()

    p.ft_result = r
    p.open_result.click()
    qtbot.waitUntil(lambda: p.current_task() == "classify", timeout=30000)
    assert p.tabs.currentIndex() == 0 and p.picker.current_model().heads == ["sequence-classification"]
    p.eval_result = None
    p.evaluate_file(str(good))
    qtbot.waitUntil(lambda: p.eval_result is not None, timeout=30000)
    assert p.views.currentIndex() == 5 and p.eval_chart.spec.matrix.shape == (2, 2)

    state = p.state_dict()
    assert state["mode"] == "adapter" and state["data_path"] == str(good)


def test_frozen_live_chart_coalesces_rounds_and_ends_on_every_rounds_values(qtbot, panel, tmp_path):
    """The lab redraws its live chart at most once per frame, in the finished chart's layout (loss and accuracy per
    L-BFGS round), and ends showing the result: each round's loss and validation accuracy as the run reported."""
    from explorer.core.tuning.finetune_results import TrainUpdate
    from explorer.gui.frames import frame_ms

    p = panel
    good = tmp_path / "good.csv"
    good.write_text("text,label\n" + "good movie,pos\nbad movie,neg\ngreat film,pos\nterrible film,neg\n" * 6)
    p.ft_picker.select("tiny-base")
    p.set_data_file(str(good))
    p.mode_group.button(0).setChecked(True)  # frozen
    drawn, updates = [], []
    set_spec = p.train_chart.set_spec
    p.train_chart.set_spec = lambda spec: (drawn.append(spec), set_spec(spec))[1]
    on_update = p._train_update
    p._train_update = lambda u: (updates.append(u), on_update(u))[1]
    p.out_edit.setText(str(tmp_path / "frozen"))
    p.train()
    qtbot.waitUntil(lambda: p.ft_result is not None and p._ft_job.done, timeout=60000)
    r = p.ft_result
    assert r.mode == "frozen" and len(r.history) == len(updates) >= 1
    live = drawn[1:-1]  # between the cleared chart and the result's
    assert len(live) <= len(updates)
    assert all(s.x_label == "L-BFGS round" and "batch loss" not in [x.name for x in s.series] for s in live)
    final = p.train_chart.spec
    assert final is drawn[-1] and final.meta["mode"] == "frozen"
    curves = {item.name(): item.getData() for item in p.train_chart._xy_items}
    assert list(curves["loss"][0]) == [float(h.epoch) for h in r.history]
    assert list(curves["loss"][1]) == pytest.approx([h.loss for h in r.history])
    assert list(curves["validation accuracy"][1]) == pytest.approx(
        [r.initial_val_accuracy] + [h.val_accuracy for h in r.history])

    # A frame still pending when the result arrives never paints the older state over it.
    stale = TrainUpdate(1, 1, 1, 9.0, r.history[:1], r.initial_val_accuracy, epoch_done=True, mode="frozen")
    p._train_update(stale)
    p._train_done(r)
    qtbot.wait(3 * frame_ms())
    assert p.train_chart.spec.meta["mode"] == "frozen" and len(p.train_chart._xy_items[0].getData()[0]) == len(r.history)


def test_progress_messages_repaint_the_note_not_the_lab(qtbot, panel, minilm):
    """A new progress message re-wraps the settings' note; the lab's chart and tables are not repainted for it
    (1024×700, MiniLM's figures shown), and a real change of the settings' size still reaches the panel."""
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    from tests.gui.conftest import EventLog

    p = panel
    p.ctx.models.loaded["minilm"] = minilm
    p.ctx.models.changed.emit()
    p.resize(1024, 700)
    p.tabs.setCurrentIndex(1)
    p.ft_picker.select("minilm")
    # MiniLM's figures, and no earlier model's figures still on their way (they would repaint the lab mid-watch)
    qtbot.waitUntil(lambda: p.costs is not None and not p.ctx.runner.active, timeout=30000)
    p._show_progress(0.0, "Encoding the data…")  # the note's first line: a real change of the pane's height
    for _ in range(3):  # the tab's first paints, and the chart's deferred ones, are over
        QApplication.processEvents()
        qtbot.wait(50)
    watch = EventLog(QEvent.Type.Paint)
    painted = watch.objects
    QApplication.instance().installEventFilter(watch)
    try:
        for i in range(3):
            p._show_progress(i / 10, f"Computing features: batch {i + 1} of 8…")
            for _ in range(3):
                QApplication.processEvents()
                qtbot.wait(20)
    finally:
        QApplication.instance().removeEventFilter(watch)
    chain, w = set(), p.ft_note  # the note and what lies under it, painted in the note's rectangle only
    while w is not None:
        chain.add(w)
        w = w.parentWidget()
    assert p.ft_note in painted
    assert not [type(w).__name__ for w in painted if w not in chain and w is not p.progress]
    settings = p.ft_note.parentWidget()
    before = p.minimumSizeHint().height()
    settings.setMinimumHeight(before + 300)  # a real change of the settings' needs reaches the panel
    qtbot.waitUntil(lambda: p.minimumSizeHint().height() >= before + 300, timeout=3000)


def test_lab_trains_and_scores_extractive_qa(qtbot, panel, tmp_path):
    """The bundled QA set in the lab: figures for three modes, a frozen span head trained, scored with SQuAD exact
    match / F1 on the held-out file, and opened in the run view (start/end probabilities, span heatmap)."""
    from explorer.core.io.paths import resources_dir

    p = panel
    p.ft_picker.select("tiny-base")
    p.sample_combo.setCurrentIndex(p.sample_combo.findData("qa.jsonl"))
    assert p.data.task == "qa" and "SQuAD" in p.data_note.text() and p.preview.columnCount() == 3
    qtbot.waitUntil(lambda: p.costs is not None and len(p.costs) == 3, timeout=30000)
    assert [c.mode for c in p.costs] == ["frozen", "full", "adapter"]
    p.mode_group.button(3).setChecked(True)  # scratch is refused for QA
    p.train()
    assert "frozen, full or adapter" in p.ft_note.text() and p.ft_result is None
    p.mode_group.button(0).setChecked(True)
    p.epochs.setValue(2)
    p.out_edit.setText(str(tmp_path / "qa"))
    p.train()
    qtbot.waitUntil(lambda: p.ft_result is not None and p._ft_job.done, timeout=120000)
    assert p.ft_result.task == "qa" and "exact match" in p.ft_note.text()
    p.evaluate_finetune(str(resources_dir() / "data" / "qa-test.jsonl"))
    qtbot.waitUntil(lambda: p.eval_result is not None, timeout=60000)
    assert p.eval_result.n >= 100 and "Exact match" in p.lab_eval_text.toPlainText()
    assert [t for _, t in p.lab_eval_chart.spec.x_ticks] == ["exact match", "F1"]


def test_seq2seq_view_trains_both_designs_side_by_side(qtbot, ctx, tiny_factory, tmp_path):
    """v1 on an encoder and v2 on a decoder, the same pairs: both curves in one exportable chart, and a trained
    design generates from the input line."""
    ctx.models.loaded.update({"tiny-base": load_model(str(tiny_factory("base"))),
                              "tiny-gpt": load_model(str(tiny_factory("causal-lm")))})
    ctx.models.changed.emit()
    p = HeadsPanel(ctx)
    qtbot.addWidget(p)
    v = p.seq2seq
    v.encoder.select("tiny-base")
    v.decoder.select("tiny-gpt")
    v.steps["v1"].setValue(2)
    v.steps["v2"].setValue(2)
    v.eval_every.setValue(1)
    v.train()
    qtbot.waitUntil(lambda: len(v.results) == 2 and v.train_button.isEnabled(), timeout=180000)
    names = {s.name for s in v.chart.spec.series}
    assert names == {"v1 exact match", "v1 chrF", "v2 exact match", "v2 chrF"}
    assert all(len(s.x) == 3 for s in v.chart.spec.series)  # steps 0, 1, 2
    v.chart.export(str(tmp_path / "designs.csv"))
    assert "v2 chrF" in (tmp_path / "designs.csv").read_text()
    v.output.setText("")
    v.generate("v1")
    qtbot.waitUntil(lambda: v.output.text().startswith("v1:"), timeout=60000)


def test_frozen_hint_follows_the_task(qtbot, panel):
    """A per-token task's frozen head reads each token's vector: no sentence pooling offered or described (the
    hint spoke of mean pooling for the NER set); a classification set brings the pooling back."""
    from explorer.core.io.paths import resources_dir

    p = panel
    p.ft_picker.select("tiny-base")
    p.set_data_file(str(resources_dir() / "data" / "ner.jsonl"))
    assert p.data.task == "tokens"
    assert p.pooling.isHidden() and "each token's last-layer vector, a label per token" in p.rule_note.text()
    assert "pooler" not in p.rule_note.text() and "mean" not in p.rule_note.text()
    p.set_data_file(str(resources_dir() / "data" / "sentiment.csv"))
    assert not p.pooling.isHidden() and "each token" not in p.rule_note.text()
