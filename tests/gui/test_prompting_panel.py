"""The Prompting panel with the real SmolLM2: prompt editor and token count, streamed generation that does not
block the event loop and cancels, label scoring, a tiny sweep with its chart and table, exports and state."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def panel(qtbot, ctx_with_models):
    from explorer.gui.panels.prompting.panel import PromptingPanel

    p = PromptingPanel(ctx_with_models)
    qtbot.addWidget(p)
    p.resize(1400, 900)
    p.show()
    p.model_picker.select("smollm2")
    return p


def test_editor_builds_the_prompt_with_its_token_count(panel, smollm2):
    panel.set_task("addition")
    panel.shots_spin.setValue(3)
    panel.draw_examples()
    assert panel.examples_table.rowCount() == 3
    built = panel.rebuild_prompt()
    assert built.text == panel.prompt_view.toPlainText()
    assert built.text.count("\nA: ") == 3 and built.text.endswith("A:")
    assert f"<b>{len(smollm2.tokenizer(built.text)['input_ids'])}</b> tokens of 8192" in panel.token_label.text()
    # Editing a cell changes the prompt.
    panel.examples_table.item(0, 2).setText("999")
    assert "A: 999" in panel.rebuild_prompt().text
    panel.remove_selected_rows()
    panel.examples_table.selectRow(0)
    panel.remove_selected_rows()
    assert panel.examples_table.rowCount() == 2 and "A: 999" not in panel.rebuild_prompt().text
    panel.template_edit.setText("Q: {a} plus {b}")
    panel.rebuild_prompt()
    assert "output" in panel.token_label.text()  # the template error is shown, not raised


def test_generation_streams_and_matches_core(qtbot, panel, smollm2):
    from explorer.core.prompting.generation import generate

    panel.set_task("qa")
    panel.stop_edit.setText("")
    panel.max_tokens_spin.setValue(6)
    built = panel.rebuild_prompt()
    pieces = []
    panel.run_generation()
    panel.gen_job.callbacks["partial"] = (lambda d, cb=panel.gen_job.callbacks["partial"]: (pieces.append(d), cb(d)))
    qtbot.waitUntil(lambda: panel.gen_job.done, timeout=120000)
    want = generate(smollm2, built.text, panel._settings())
    assert panel.result.text == want.text == panel.output_view.toPlainText()
    assert pieces and panel.step_list.count() == len(want.steps)
    panel.step_list.setCurrentRow(1)
    assert "step 2" in panel.dist_chart.spec.title


def test_cancel_stops_generation(qtbot, panel):
    panel.set_task("addition")
    panel.stop_edit.setText("")
    panel.max_tokens_spin.setValue(400)
    panel.run_generation()
    assert panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: panel.step_list.count() >= 1, timeout=60000)
    panel.cancel_generation()
    qtbot.waitUntil(lambda: panel.gen_job.done, timeout=10000)
    assert panel.result is None and panel.step_list.count() < 400
    assert panel.output_status.text() == "Cancelled." and panel.run_button.isEnabled()


def test_scoring_and_tiny_sweep_with_chart_table_and_exports(qtbot, panel, tmp_path):
    panel.set_task("sentiment")
    panel.run_scoring()
    qtbot.waitUntil(lambda: panel.gen_job.done, timeout=60000)
    assert panel.score_result.prediction.strip() in ("positive", "negative")
    assert len(panel.dist_chart.spec.series[0].y) == 2

    panel.sweep_shots_edit.setText("0,1")
    panel.sweep_draws_spin.setValue(1)
    panel.sweep_limit_spin.setValue(2)
    panel.run_sweep()
    qtbot.waitUntil(lambda: panel.sweep_job.done, timeout=120000)
    spec = panel.sweep_chart.spec
    assert spec.series[0].name == "smollm2" and spec.series[0].x == [0.0, 1.0]
    assert panel.results_table.rowCount() == 2 and panel.results_table.item(1, 1).text() == "1"
    panel.show_point_details(1)
    assert "K = 1" in panel.point_details.toPlainText() and "expected" in panel.point_details.toPlainText()
    csv_text = panel.table_csv()
    assert csv_text.splitlines()[0].startswith("model,task,shots,accuracy,ci_low,ci_high,n")
    written = panel.export_all(tmp_path / "out")
    names = {p.name for p in written}
    assert any(n.startswith("accuracy-vs") and n.endswith(".png") for n in names)
    assert any(n.endswith(".svg") for n in names) and "settings.json" in names


def test_state_round_trip_and_http_settings_hold_no_key(qtbot, ctx_with_models, panel, monkeypatch):
    from explorer.gui.panels.prompting.panel import PromptingPanel

    monkeypatch.setenv("LMX_KEY", "sk-very-secret")
    panel.set_task("nli")
    panel.shots_spin.setValue(1)
    panel.draw_examples()
    panel.backend_combo.setCurrentIndex(1)
    panel.key_env_edit.setText("LMX_KEY")
    panel.description_edit.setText("Decide.")
    state = panel.state_dict()
    assert "sk-very-secret" not in repr(state) and state["api_key_env"] == "LMX_KEY"
    other = PromptingPanel(ctx_with_models)
    qtbot.addWidget(other)
    other.restore_state(state)
    assert other.backend_combo.currentIndex() == 1
    assert other.rebuild_prompt().text == panel.rebuild_prompt().text
    assert other.rebuild_prompt().text.startswith("Decide.\n")


def test_dropped_labelled_file_becomes_a_task(panel, ctx_with_models):
    from explorer.core.io.fileio import TextFile

    text = "review,label\nGood,pos\nBad,neg\nFine,pos\nAwful,neg\n"
    ctx_with_models.add_files([TextFile("/tmp/drop/moods.csv", text, "utf-8"),
                               TextFile("/tmp/drop/notes.txt", "just prose", "utf-8")])
    assert panel.task.name == "moods" and panel.task.labels == ["pos", "neg"]
    assert panel.task_combo.findData("moods") >= 0 and panel.task_combo.findData("notes") < 0
    assert panel.rebuild_prompt().text.endswith("Label:")


def test_sweep_over_two_models_draws_the_size_chart(qtbot, panel, gemma3, tmp_path):
    panel.ctx.models.loaded["gemma3"] = gemma3
    panel.ctx.models.changed.emit()
    assert set(panel.sweep_model_checks) == {"smollm2", "gemma3"}
    assert panel.sweep_model_checks["smollm2"].isChecked() and not panel.sweep_model_checks["gemma3"].isChecked()
    panel.sweep_model_checks["gemma3"].setChecked(True)
    assert panel.sweep_models() == ["smollm2", "gemma3"]
    panel.set_task("qa")
    panel.sweep_shots_edit.setText("0,1")
    panel.sweep_draws_spin.setValue(1)
    panel.sweep_limit_spin.setValue(2)
    panel.run_sweep()
    qtbot.waitUntil(lambda: panel.sweep_job.done, timeout=300000)
    assert [s.name for s in panel.sweep_chart.spec.series] == ["smollm2", "gemma3"]
    size = panel.size_chart.spec
    assert size.log_x and [s.name for s in size.series] == ["K = 0 (zero-shot)", "K = 1 (one-shot)"]
    assert size.series[0].x == [float(panel.ctx.models.loaded[n].card.num_parameters) for n in ("smollm2", "gemma3")]
    assert "not a size ladder" in size.note and panel.size_chart._note_item is not None
    panel.size_axis.setCurrentIndex(1)
    assert panel.size_chart.spec.series[0].x[0] == float(gemma3.card.num_parameters_non_embedding)
    assert panel.results_table.rowCount() == 4
    assert panel.table_csv().splitlines()[0].endswith("parameters,parameters_non_embedding")
    for suffix in (".png", ".svg", ".csv", ".json"):
        assert panel.size_chart.export(tmp_path / f"size{suffix}").stat().st_size > 200
    assert "ladder" in (tmp_path / "size.svg").read_text(encoding="utf-8")  # the note is in the picture


def test_window_sends_the_key_only_to_the_endpoint_it_was_named_for(qtbot, ctx, monkeypatch):
    from explorer.gui.panels.prompting.panel import PromptingPanel

    ENV, SECRET = "LMX_TEST_SECRET_KEY", "sk-test-7f3a9c1e-DO-NOT-STORE"
    monkeypatch.setenv(ENV, SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    panel = PromptingPanel(ctx)
    qtbot.addWidget(panel)
    panel.backend_combo.setCurrentIndex(1)
    panel.url_edit.setText("http://127.0.0.1:8001/v1")
    assert panel.backend()._api_key is None  # nothing named: no key, although OPENAI_API_KEY is set
    panel.key_env_edit.setText(ENV)
    panel.key_env_edit.editingFinished.emit()
    assert panel.backend()._api_key == SECRET
    state = panel.state_dict()
    assert state["api_key_origin"] == "http://127.0.0.1:8001" and SECRET not in json.dumps(state)
    panel.url_edit.setText("http://127.0.0.1:8002/v1")  # another endpoint
    panel.url_edit.editingFinished.emit()
    assert panel.key_env_edit.text() == "" and panel.backend()._api_key is None
    other = PromptingPanel(ctx)
    qtbot.addWidget(other)
    other.restore_state(state)
    assert other.backend()._api_key == SECRET  # restored with its endpoint, it stays tied
    other.restore_state({**state, "api_key_origin": ""})  # an old session: a name without its endpoint
    assert other.key_env_edit.text() == "" and other.backend()._api_key is None
