"""Models → Smaller models: int8 against float32, accuracy against heads pruned and the distillation lineage and
comparison, run through the window's job runner; the view shows the core result's own numbers."""

from __future__ import annotations


def _run(qtbot, view, button, attr, timeout=300_000):
    setattr(view, attr, None)
    button.click()
    qtbot.waitUntil(lambda: getattr(view, attr) is not None, timeout=timeout)
    qtbot.waitUntil(button.isEnabled, timeout=10_000)
    return getattr(view, attr)


def test_smaller_models_view(window, qtbot, minilm, tmp_path):
    from explorer.core.models.format import human_bytes

    window.ctx.models.loaded["minilm"] = minilm
    window.ctx.models.changed.emit()
    panel = window.show_panel("models")
    panel.tabs.setCurrentWidget(panel.shrink)
    view = panel.shrink
    assert panel.tabs.tabText(panel.tabs.currentIndex()) == "Smaller models"

    # Distillation: the lineage is read from the card as soon as the model is chosen.
    assert "nreimers/MiniLM-L6-H384-uncased" in view.d_lineage.text() and "distilled" in view.d_lineage.text()

    view.q_model.select("minilm")
    r = _run(qtbot, view, view.q_run, "quantize_result")
    assert r.model == "minilm" and r.int8.bytes_on_disk < r.float32.bytes_on_disk
    assert human_bytes(r.int8.bytes_on_disk) in view.q_text.text()
    assert f"{r.agreement['cosine_mean']:.3f}" in view.q_text.text()
    assert view.q_chart.spec.series[1].y[1] == r.int8.bytes_on_disk / r.float32.bytes_on_disk

    view.p_model.select("minilm")
    view.p_step.setValue(33)
    p = _run(qtbot, view, view.p_run, "prune_result")
    assert [s.removed for s in p.steps] == [0, 33, 66]
    assert view.p_chart.spec.series[0].y == [s.accuracy for s in p.steps]
    assert view.p_chart.spec.x_label == "heads removed"

    # A bigger model from a folder: loaded, chosen and compared with MiniLM.
    from tests.tiny import make_tiny_checkpoint

    folder = make_tiny_checkpoint(tmp_path / "bert-folder", "base")
    view.load_teacher(str(folder))
    qtbot.waitUntil(lambda: view.d_teacher.current_name() not in (None, "minilm"), timeout=120_000)
    view.d_model.select("minilm")
    c = _run(qtbot, view, view.d_run, "distill_result")
    assert c.student.name == "minilm" and c.teacher.layers == 2
    assert f"{c.student.parameters / 1e6:.1f} M" in view.d_text.text()


def test_smaller_models_kshot_sweep(window, qtbot, smollm2):
    window.ctx.models.loaded["smollm2"] = smollm2
    window.ctx.models.changed.emit()
    panel = window.show_panel("models")
    panel.tabs.setCurrentWidget(panel.shrink)
    view = panel.shrink
    view.q_model.select("smollm2")
    view.sweep_results = None
    view.run_sweep(shots="0", limit=2)
    qtbot.waitUntil(lambda: view.sweep_results is not None, timeout=300_000)
    f, q = view.sweep_results
    assert q.model == "smollm2 (int8)"
    ys = [s.y for s in view.q_sweep_chart.spec.series if s.name in ("smollm2", "smollm2 (int8)")]
    assert [f.points[0].accuracy] in ys and [q.points[0].accuracy] in ys


def test_smaller_models_settings_round_trip(window):
    panel = window.show_panel("models")
    view = panel.shrink
    view.tabs.setCurrentIndex(1)
    view.p_data.setCurrentText("entailment")
    view.p_step.setValue(11)
    saved = panel.state_dict()
    assert (saved["shrink_tab"], saved["prune_data"], saved["prune_step"]) == (1, "entailment", 11)
    view.tabs.setCurrentIndex(0)
    view.p_step.setValue(6)
    view.p_data.setCurrentText("sentiment")
    assert panel.apply_state(saved) == []
    assert (view.tabs.currentIndex(), view.p_data.currentText(), view.p_step.value()) == (1, "entailment", 11)
    # A saved step of the wrong shape starts from its default alone; the other settings are kept.
    notes = panel.apply_state(dict(saved, prune_step="many"))
    assert notes and view.p_data.currentText() == "entailment"
