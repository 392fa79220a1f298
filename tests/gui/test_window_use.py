"""The window used as a person would (issue 16): keyboard focus, a window that keeps its size, no label cut
at 1024×700, and results that follow their inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QTabWidget

from explorer.gui.main_window import PANELS
from explorer.gui.widgets.flow import cut_labels

SAMPLE = ("The bank raised its interest rates on Monday. We sat on the river bank and watched the boats. "
          "BERT and GPT-3 were trained by Google and OpenAI in California.")


def settle(qtbot, ms: int = 50) -> None:
    for _ in range(3):
        QApplication.processEvents()
        qtbot.wait(ms)


@pytest.fixture
def small_window(window, qtbot, minilm, smollm2):
    window.resize(1024, 700)
    window.ctx.models.loaded.update({"minilm": minilm, "smollm2": smollm2})
    window.ctx.models.changed.emit()
    settle(qtbot)
    return window


def test_tab_leaves_the_text_box_and_the_text_is_unchanged(window, qtbot):
    window.text_input.set_text("a text that Tab must not change")
    edit = window.text_input.edit
    edit.setFocus()
    qtbot.waitUntil(edit.hasFocus, timeout=2000)
    qtbot.keyClick(edit, Qt.Key.Key_Tab)
    settle(qtbot, 10)
    assert not edit.hasFocus()
    edit.setFocus()
    for _ in range(5):
        qtbot.keyClick(QApplication.focusWidget() or edit, Qt.Key.Key_Tab)
    assert window.text_input.text() == "a text that Tab must not change"


def test_tab_walks_every_panel_round_without_a_trap_or_an_unmarked_stop(small_window, qtbot):
    """From the panel list, Tab reaches every table and text box of each panel and comes back round: no table or
    text box keeps the Tab key, and no scroll area (which draws no focus mark) takes the focus."""
    from PySide6.QtWidgets import QAbstractItemView, QPlainTextEdit, QScrollArea

    w = small_window
    for key, _cls, _label in PANELS:
        panel = w.show_panel(key)
        settle(qtbot, 10)
        w.nav.setFocus()
        qtbot.waitUntil(w.nav.hasFocus, timeout=2000)
        seen = []
        for _ in range(120):
            before = QApplication.focusWidget()
            qtbot.keyClick(before, Qt.Key.Key_Tab)
            now = QApplication.focusWidget()
            assert now is not before, f"{key}: Tab stays in {type(before).__name__}"
            assert not isinstance(now, QScrollArea), f"{key}: Tab stops on a scroll area"
            if now is w.nav:
                break
            seen.append(now)
        else:
            pytest.fail(f"{key}: Tab never comes back to the panel list")
        boxes = [v for v in (*panel.findChildren(QAbstractItemView), *panel.findChildren(QPlainTextEdit))
                 if v.isVisibleTo(panel) and v.isEnabled() and v.focusPolicy() & Qt.FocusPolicy.TabFocus]
        missed = [type(b).__name__ for b in boxes if b not in seen]
        assert not missed, f"{key}: Tab never reaches {missed}"


def test_no_label_is_cut_at_1024x700_in_any_panel_or_view(small_window, qtbot):
    w = small_window
    problems = []
    for key, _cls, _label in PANELS:
        panel = w.show_panel(key)
        settle(qtbot)
        tabs = [t for t in panel.findChildren(QTabWidget) if t.isVisible()]
        views = [(None, 0)] + [(t, i) for t in tabs for i in range(t.count())]
        for tab, i in views:
            if tab is not None:
                tab.setCurrentIndex(i)
                settle(qtbot, 20)
            problems += [f"{key} view {i}: {p}" for p in cut_labels(w)]
        assert w.width() == 1024, f"{key} widened the window to {w.width()} px"
        assert w.height() == 700, f"{key} made the window {w.height()} px high"
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_window_width_unchanged_after_strategy_switch_and_analysis(small_window, qtbot):
    w = small_window
    w.text_input.set_text(SAMPLE * 3)
    masking = w.show_panel("masking")
    masking.picker.select("smollm2")
    settle(qtbot)
    width = w.width()
    for i in range(masking.strategy_combo.count()):
        masking.strategy_combo.setCurrentIndex(i)
        masking.run()
        qtbot.waitUntil(lambda: not w.ctx.runner.active, timeout=60_000)
        settle(qtbot, 20)
        assert w.width() == width, masking.strategy_combo.currentText()
    attention = w.show_panel("attention")
    attention.picker.select("smollm2")
    attention.run()
    qtbot.waitUntil(lambda: not w.ctx.runner.active, timeout=120_000)
    settle(qtbot)
    assert w.width() == width
    assert not cut_labels(w), cut_labels(w)


# Every setting of every panel, set to something other than its default.
PANEL_SETTINGS = {
    "models": {"selected": "smollm2", "tab": 1},
    "masking": {"model": "smollm2", "mode": "objective", "strategy": "entity", "objective": "xlnet", "seed": 7,
                "ratio": 0.3, "p_mask": 0.7, "p_random": 0.2, "geometric_p": 0.3, "max_span": 6,
                "poisson_lambda": 2.5, "samples": 1500, "stream": "query", "tab": 2, "mask_from": 10, "mask_count": 30},
    "attention": {"model": "smollm2", "pair": "a second sentence", "view": "heatmap", "layer": 5, "head": "3",
                  "source": "self", "hide_special": True, "share": 0.5, "range_start": 4, "range_count": 100,
                  "search": "bank"},
    "embeddings": {"model": "smollm2", "view": "centred",
                   "contexts": [["I sat by the bank.", "bank", "1", "river"], ["The bank lent money.", "bank", "1", "money"]],
                   "mix_mode": "last_n", "mix_layer": 3, "mix_weights": "0,1,1", "corpus_word": "bank",
                   "corpus_layer": 2, "corpus_method": "pca", "corpus_color": "cluster"},
    "heads": {"model": "smollm2", "text": "Once upon a time", "text2": "", "tab": 1, "ft_task": "classify",
              "ft_model": "minilm", "mode": "adapter", "epochs": 3, "seed": 5, "max_new_tokens": 40,
              "max_answer_len": 20},
    "prompting": {"task": "sentiment", "shots": 4, "seed": 3, "chat": True, "backend": "http",
                  "model": "smollm2", "base_url": "http://127.0.0.1:9000/v1", "http_model": "served",
                  "api_key_env": "MY_API_KEY", "api_key_origin": "http://127.0.0.1:9000", "max_new_tokens": 30, "sample": True, "temperature": 0.7,
                  "top_k": 20, "top_p": 0.9, "stop": ".", "sweep_shots": "0,2", "sweep_draws": 2, "sweep_limit": 10,
                  "sweep_models": ["smollm2", "gemma3"]},  # gemma3 not loaded: its tick waits for it
}


def _differences(state: dict, wanted: dict) -> list[str]:
    return [f"{k}: {state.get(k)!r} != {v!r}" for k, v in wanted.items()
            if not (state.get(k) == v or isinstance(v, float) and abs(float(state.get(k, 0)) - v) < 1e-6)]


def test_session_round_trip_of_every_panel_setting_and_finetuned_model(qtbot, data_dir, minilm, smollm2, tiny_factory):
    from explorer.gui.main_window import MainWindow

    folder = str(tiny_factory("sequence-classification"))
    w = MainWindow(restore=False)
    qtbot.addWidget(w)
    w.ctx.models.loaded.update({"minilm": minilm, "smollm2": smollm2})
    w.ctx.models.load(folder)
    qtbot.waitUntil(lambda: folder in w.ctx.models.loaded, timeout=60_000)
    w.ctx.models.changed.emit()
    for key, wanted in PANEL_SETTINGS.items():
        panel = w.panel(key)
        panel.restore_state(wanted)
        settle(qtbot, 10)
        assert not _differences(panel.state_dict(), wanted), (key, _differences(panel.state_dict(), wanted))
    w.save_session()
    w.ctx.runner.wait(10_000)
    w.close()

    w2 = MainWindow(restore=True)
    qtbot.addWidget(w2)
    w2.after_first_paint()  # loads the session's models: the bundled ones and the fine-tuned folder
    qtbot.waitUntil(lambda: {"minilm", "smollm2", folder} <= set(w2.ctx.models.loaded), timeout=120_000)
    for key, wanted in PANEL_SETTINGS.items():
        state = w2.panel(key).state_dict()
        assert not _differences(state, wanted), (key, _differences(state, wanted))
    w2.save_session()  # saving again must not overwrite the settings with the controls' defaults
    w2.close()
    from explorer.core.io.session import load_session

    saved = load_session()["panels"]
    for key, wanted in PANEL_SETTINGS.items():
        assert not _differences(saved[key], wanted), (key, _differences(saved[key], wanted))
    w2.ctx.runner.wait(10_000)


def test_progress_names_the_real_phase_and_is_busy_when_its_length_is_unknown(window, qtbot):
    import threading

    from explorer.core.io.progress import UNKNOWN

    release = threading.Event()

    def job(progress, cancel):
        progress(0.05, "Tokenizing…")
        progress(UNKNOWN, "Running the model on 147 tokens…")  # straight after: must not be throttled away
        release.wait(10)
        return 1

    window.ctx.runner.submit(job, label="Attention")
    qtbot.waitUntil(lambda: "Running the model" in window.job_label.toolTip(), timeout=5000)
    assert window.progress.maximum() == 0  # a busy bar, not a percentage that sits still
    qtbot.waitUntil(lambda: window.job_label.toolTip().endswith(" s)"), timeout=5000)  # and the seconds spent
    release.set()
    qtbot.waitUntil(lambda: not window.progress.isVisible(), timeout=5000)


def test_progress_never_moves_back_and_long_messages_are_cut_at_their_end(window, qtbot):
    """A first gemma3 load went 70% "Saving…" then 30% "Loading the tokenizer…": the bar holds at 70% and names the
    new phase. A message too long for the status bar is cut at its end, whole in the tooltip."""
    import threading

    steps = [threading.Event() for _ in range(3)]
    values: list[int] = []
    window.progress.valueChanged.connect(values.append)
    long_tail = "De-quantising the GGUF file (first time only, a minute or two) and then more words " * 3

    def job(progress, cancel):
        progress(0.7, "Saving the converted model to the cache…")
        steps[0].wait(10)
        progress(0.3, "Loading the tokenizer…")
        steps[1].wait(10)
        progress(0.8, long_tail)
        steps[2].wait(10)
        return 1

    window.resize(1024, 700)
    window.ctx.runner.submit(job, label="Load")
    qtbot.waitUntil(lambda: "Saving" in window.job_label.toolTip(), timeout=5000)
    steps[0].set()
    qtbot.waitUntil(lambda: "tokenizer" in window.job_label.toolTip(), timeout=5000)
    assert window.progress.value() == 700
    steps[1].set()
    qtbot.waitUntil(lambda: window.job_label.toolTip().startswith("De-quantising"), timeout=5000)
    assert values == sorted(values) and values[-1] == 800
    shown = window.job_label.text()
    assert shown.startswith("De-quantising the GGUF file") and shown.endswith("…") and len(shown) < len(long_tail)
    steps[2].set()
    qtbot.waitUntil(lambda: not window.progress.isVisible(), timeout=5000)


def test_view_menu_shows_the_panel_names_as_written(window):
    from PySide6.QtWidgets import QMenu

    menu = next(m for m in window.findChildren(QMenu) if m.title() == "&View")
    texts = [a.text() for a in menu.actions()]
    assert "Masking && objectives" in texts and "Heads && fine-tuning" in texts  # drawn as "Masking & objectives"


def test_chart_legend_sits_outside_the_data_and_hover_reads_a_cell(qtbot):
    import numpy as np

    from explorer.core.io.charts import ChartSpec, Series
    from explorer.gui.widgets.chart import ChartWidget

    chart = ChartWidget()
    qtbot.addWidget(chart)
    chart.resize(500, 300)
    chart.show()
    chart.set_spec(ChartSpec(title="t", kind="xy", x_label="K", y_label="accuracy", legend=True, series=[
        Series(name="smollm2", x=[0, 1, 2, 4], y=[0.2, 0.5, 0.7, 0.9]),
        Series(name="chance", x=[0, 1, 2, 4], y=[0.5] * 4, dashed=True)]))
    settle(qtbot)
    data = chart.plot_item.vb.sceneBoundingRect()
    legend = chart.legend.sceneBoundingRect()
    assert chart.legend.isVisible() and legend.height() > 0
    assert not data.intersects(legend), (data, legend)

    m = np.arange(12, dtype=float).reshape(3, 4) / 12
    chart.set_spec(ChartSpec(title="h", kind="heatmap", x_label="key (attended to)", y_label="query (attending)",
                             matrix=m, row_labels=["a", "b", "c"], col_labels=["w", "x", "y", "z"]))
    settle(qtbot)
    chart._on_mouse_moved(chart.cell_scene_pos(2, 1))
    assert chart.readout.text() == f"query c → key x: {m[2, 1]:.4f}"


def test_fill_mask_candidates_read_as_text_for_byte_level_bpe(small_window, qtbot, smollm2):
    from explorer.core.pretraining.fillmask import fill_masks
    from explorer.core.pretraining.words import token_texts

    tok = smollm2.tokenizer
    ids = tok("Whether we go out depends on the weather, and it depends on you.")["input_ids"]
    positions = [i for i, t in enumerate(tok.convert_ids_to_tokens(ids)) if t.startswith("Ġ")][:4]
    res = fill_masks(smollm2, ids, ids, positions, top_k=5)
    raw = [t for p in res.predictions for t in p.tokens]
    assert any(t.startswith("Ġ") for t in raw)  # the model's own pieces carry the byte-level space mark
    for p in res.predictions:
        # The independent reference: the tokenizer's decode of each candidate id.
        want = [tok.decode(tok.convert_tokens_to_ids([t])).strip() or "␣" for t in p.tokens]
        assert p.texts == want and not any("Ġ" in t for t in p.texts)
    assert token_texts(tok, ["Ġit", "Ġdepends"]) == ["it", "depends"]

    w = small_window
    w.text_input.set_text("It depends on the weather, and it depends on you. " * 3)
    masking = w.show_panel("masking")
    masking.picker.select("smollm2")
    masking.run()
    qtbot.waitUntil(lambda: masking.result is not None and not w.ctx.runner.active, timeout=60_000)
    masking.run_fill()
    qtbot.waitUntil(lambda: "top guesses" in masking.fill_view.toHtml() and not w.ctx.runner.active, timeout=60_000)
    shown = masking.fill_view.toPlainText()
    assert "Ġ" not in shown and "rank of original" in shown


def test_corpus_view_counts_stacked_points_and_token_labels_are_explained(minilm, smollm2):
    from explorer.core.inspect.analysis import analyse
    from explorer.core.inspect.corpus import collect_corpus, corpus_chart_spec
    from explorer.core.inspect.embeddings import token_similarity_spec

    same = "The bank raised its rates."
    files = [("a.txt", " ".join([same] * 5)), ("b.txt", f"{same} We sat on the river bank.")]
    corpus = collect_corpus(minilm, files, "bank")
    spec = corpus_chart_spec(corpus, -1, "pca")
    assert spec.meta["occurrences"] == 7 and spec.meta["distinct_spots"] < 7
    assert f"7 occurrences on {spec.meta['distinct_spots']} distinct spots" in spec.title
    assert any(h.startswith("6 identical occurrences on this spot") for s in spec.series for h in s.hover)

    a = analyse(smollm2, "哈哈 bank")  # a CJK character is several byte pieces: 哈, 哈·2, 哈·3
    spec = token_similarity_spec(a, -1)
    assert any("·" in lab for lab in spec.row_labels)
    assert "byte piece of one character" in spec.x_label and "byte piece of one character" in spec.y_label


def test_prompting_follows_k_and_forgets_the_last_task_s_answer(small_window, qtbot):
    p = small_window.show_panel("prompting")
    p.model_picker.select("smollm2")
    p.set_task("addition")
    p.shots_spin.setValue(2)
    assert p.examples_table.rowCount() == 2
    p.shots_spin.setValue(4)  # no "Draw" press: the examples and the prompt follow K at once
    assert p.examples_table.rowCount() == 4 and len(p.examples()) == 4
    p.max_tokens_spin.setValue(3)
    p.run_generation()
    qtbot.waitUntil(lambda: p.result is not None and not small_window.ctx.runner.active, timeout=60_000)
    assert p.output_view.toPlainText() and p.step_list.count() > 0
    p.set_task("sentiment")
    assert p.result is None and p.output_view.toPlainText() == "" and p.step_list.count() == 0
    assert p.dist_chart.spec is None


def test_models_compare_shows_every_model_and_a_folder_s_kind(window, qtbot, minilm, smollm2, tiny_factory):
    folder = str(tiny_factory("sequence-classification"))
    window.resize(1024, 700)
    window.ctx.models.loaded.update({"minilm": minilm, "smollm2": smollm2})
    window.ctx.models.load(folder)
    qtbot.waitUntil(lambda: folder in window.ctx.models.loaded, timeout=60_000)
    p = window.show_panel("models")
    p.tabs.setCurrentIndex(1)
    settle(qtbot)
    table = p.compare_table
    right = table.viewport().width()
    for c in range(table.columnCount()):  # every column starts and ends inside the visible table
        assert table.columnViewportPosition(c) >= 0
        assert table.columnViewportPosition(c) + table.columnWidth(c) <= right + 1
    rows = {p.tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole): p.tree.topLevelItem(i)
            for i in range(p.tree.topLevelItemCount())}
    assert rows[folder].text(1) == "encoder" and rows[folder].text(0) == Path(folder).name


def test_entity_masking_treats_model_names_as_entities(minilm):
    from explorer.core.io.paths import resources_dir
    from explorer.core.pretraining.masking import mask_text
    from explorer.core.pretraining.units import units_for
    from explorer.core.pretraining.words import tokenize_words

    text = (resources_dir() / "samples" / "bert-paragraph.txt").read_text(encoding="utf-8")
    tt = tokenize_words(minilm.tokenizer, text, max_length=minilm.max_length)
    entities, _ = units_for(tt, "entity")
    phrases, _ = units_for(tt, "phrase")
    names = {"".join(tt.tokens[i].removeprefix("##") for i in range(tt.word_spans[a][0], tt.word_spans[b - 1][1]))
             for a, b in entities if b - a > 1 or tt.text[tt.offsets[tt.word_spans[a][0]][0]].isupper()}
    assert "bert" in names and "gpt-3" in names, names
    assert entities != phrases
    mk = mask_text(tt, minilm.tokenizer, "entity", seed=0)
    assert len(mk.units) == len(entities)  # the draw chooses among these units (as token ranges)


def test_long_objective_mask_is_shown_as_a_readable_window(small_window, qtbot):
    w = small_window
    w.text_input.set_text(SAMPLE * 4)
    p = w.show_panel("masking")
    p.picker.select("minilm")
    p.mode_combo.setCurrentIndex(p.mode_combo.findData("objective"))
    p.objective_combo.setCurrentIndex(p.objective_combo.findData("xlnet"))
    p.run()
    qtbot.waitUntil(lambda: p.attention_chart.spec is not None and not w.ctx.runner.active, timeout=60_000)
    n = len(p.result.tt.tokens)
    assert n > 100
    assert p.attention_chart.spec.matrix.shape == (48, 48) and f"of {n}" in p.attention_chart.spec.title
    p.mask_from.setValue(20)
    assert p.attention_chart.spec.row_labels[0].startswith("20") or "20–67" in p.attention_chart.spec.title


def test_f5_and_ctrl_return_run_the_visible_panel_from_the_keyboard(window, qtbot, minilm):
    """A keyboard-only user reaches each panel with Ctrl+1..6 and runs it with F5 (or Ctrl+Return), even from
    inside the text box, whose text stays as it was."""
    window.ctx.models.loaded["minilm"] = minilm
    window.ctx.models.changed.emit()
    window.text_input.set_text("The river bank was muddy.")
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    panel = window.panel("masking")
    assert window.current_panel() is panel
    # the focus lands on the panel's first control, so Tab goes on inside the panel
    qtbot.waitUntil(lambda: panel.isAncestorOf(QApplication.focusWidget()), timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.panel("embeddings").picker, timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    clicks: list[int] = []
    panel.run_button.clicked.connect(lambda: clicks.append(1))
    window.text_input.edit.setFocus()
    qtbot.waitUntil(window.text_input.edit.hasFocus, timeout=2000)
    qtbot.keyClick(window.text_input.edit, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: len(clicks) == 1, timeout=2000)
    qtbot.keyClick(window.text_input.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(clicks) == 2, timeout=2000)
    qtbot.waitUntil(lambda: len(panel.original_strip.tokens) > 0, timeout=60_000)
    assert window.text_input.text() == "The river bank was muddy."


def test_f5_presses_the_shown_tab_s_button_not_a_hidden_one(window, qtbot):
    """On the fine-tune lab F5 trains, on the K-shot sweep it sweeps, on the corpus tab it searches the files: the
    button the user sees, never the one of a tab behind it."""
    window.resize(1024, 700)
    cases = [("heads", "tabs", 1, "train_button", "run_button"),
             ("prompting", "tabs", 1, "sweep_button", "run_button"),
             ("embeddings", "tabs", 2, "corpus_button", "compare_button")]
    for key, tabs_name, shown, wanted, default in cases:
        panel = window.show_panel(key)
        tabs = getattr(panel, tabs_name)
        tabs.setCurrentIndex(0)
        settle(qtbot, 10)
        assert window.current_panel().primary_button() is getattr(panel, default), key
        tabs.setCurrentIndex(shown)
        settle(qtbot, 10)
        assert window.current_panel().primary_button() is getattr(panel, wanted), key
        assert getattr(panel, wanted).isVisible()


def test_keyboard_reaches_the_input_text_and_the_samples_from_any_panel(window, qtbot):
    """Ctrl+L moves the focus to the input text from a panel (and shows it when hidden); the sample texts are in
    the File menu too, so no mouse is needed to put a text in; the Masking panel's Fill masks has Alt+M."""
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    window.nav.setFocus()
    qtbot.waitUntil(window.nav.hasFocus, timeout=2000)
    window.input_dock.setVisible(False)
    qtbot.keyClick(window.nav, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(window.text_input.edit.hasFocus, timeout=2000)
    assert window.input_dock.isVisible()
    samples = window.text_input.samples_btn.menu()
    assert "Open a &sample text" in [a.text() for a in window.file_menu.actions()]
    assert len(samples.actions()) >= 2
    assert "BERT paragraph" in [a.text() for a in samples.actions()]  # a title, not a file name
    from explorer.core.io.paths import resources_dir

    first_file = sorted((resources_dir() / "samples").glob("*.txt"))[0]
    samples.actions()[0].trigger()
    qtbot.waitUntil(lambda: len(window.text_input.text()) > 50, timeout=5000)
    assert window.text_input.text().strip() == first_file.read_text(encoding="utf-8").strip()
    assert window.panel("masking").fill_button.text() == "Fill &masks"


def test_status_bar_names_the_running_job_not_a_queued_one(window, qtbot):
    """With both worker threads busy, a third job waits in the queue: the status bar keeps naming the newest
    running job and counts the queued one, instead of naming the queued job as if it ran."""
    import threading

    release = threading.Event()

    def hold(progress=None, cancel=None):
        release.wait(10)
        return None

    runner = window.ctx.runner
    jobs = [runner.submit(hold, label=label) for label in ("Loading minilm", "Loading smollm2", "Loading gemma3")]
    try:
        qtbot.waitUntil(lambda: sum(j.started for j in jobs) == 2, timeout=5000)
        assert not jobs[2].started
        # the window hears of each start through a queued signal: wait for both to arrive
        qtbot.waitUntil(lambda: "(+1 more running, 1 queued)" in window._job_text, timeout=5000)
        running = [j for j in jobs if j.started]
        assert window._job_text.startswith(running[-1].label) and "Loading gemma3" not in window._job_text
    finally:
        release.set()
    qtbot.waitUntil(lambda: not runner.active, timeout=10_000)
    assert window._job_text == ""


def test_lab_data_path_shows_a_whole_path_at_1024x700(small_window, qtbot):
    """The fine-tune lab's Data field has a line of its own: at 1024×700 it holds about 60 characters (beside the
    sample and task choosers it held a dozen, "/data/sentiment.csv" of the bundled set's path)."""
    w = small_window
    p = w.show_panel("heads")
    p.tabs.setCurrentIndex(1)
    settle(qtbot)
    field = p.data_path
    assert field.text().endswith("sentiment.csv")
    assert field.width() >= 60 * field.fontMetrics().averageCharWidth()
    assert p.sample_combo.isVisible() and p.ft_task.isVisible()


def test_lab_settings_keep_the_height_their_text_needs_after_a_run(small_window, qtbot, tmp_path):
    """At 1024×700, after a frozen run has written its long note, the lab's settings box (in a splitter, which
    asks for no height for width) is as tall as its wrapped text needs: its rows were squeezed over each other."""
    from explorer.gui.widgets.flow import LayoutFence

    w = small_window
    p = w.show_panel("heads")
    p.tabs.setCurrentIndex(1)
    p.ft_picker.select("minilm")
    p.mode_group.button(0).setChecked(True)
    qtbot.waitUntil(lambda: p.costs is not None and p.data is not None, timeout=60_000)
    p.out_edit.setText(str(tmp_path / "run"))
    p.train()
    qtbot.waitUntil(lambda: p.ft_result is not None and p._ft_job.done, timeout=120_000)
    settle(qtbot)
    settings = next(f for f in p.findChildren(LayoutFence) if f.isAncestorOf(p.ft_note))._child
    assert p.ft_note.text()
    assert settings.height() >= settings.heightForWidth(settings.width())


def test_heads_fill_mask_choice_shows_its_whole_text(small_window, qtbot, minilm_mlm):
    """The Heads panel's mask chooser is shown empty (the fill-mask view comes up with the task) and filled by a
    run: it widens to show "1 (token 4): city" whole, at 1024×700. minilm-mlm is the MiniLM with an MLM head."""
    w = small_window
    w.ctx.models.loaded["minilm-mlm"] = minilm_mlm
    w.ctx.models.changed.emit()
    p = w.show_panel("heads")
    p.tabs.setCurrentIndex(0)
    p.picker.select("minilm-mlm")
    p.task_combo.setCurrentIndex(p.task_combo.findData("fill-mask"))
    settle(qtbot)
    assert p.fill_mask_combo.isVisible() and p.fill_mask_combo.count() == 0
    p.edit1.setPlainText("Paris is the [MASK] of France.")
    p.result = None
    p.run()
    qtbot.waitUntil(lambda: p.result is not None, timeout=60_000)
    settle(qtbot)
    combo = p.fill_mask_combo
    text = combo.currentText()
    assert text.startswith("1 (token ")
    assert combo.width() >= combo.fontMetrics().horizontalAdvance(text) + 20


def test_f5_right_after_a_paste_analyses_the_pasted_text(small_window, qtbot):
    """The text box hands its edits over after typing pauses (250 ms); a panel that runs at once (F5 right after
    Ctrl+V) reads the new text, not the old one ("The text is empty")."""
    w = small_window
    panel = w.show_panel("attention")
    panel.picker.select("minilm")
    w.text_input.set_text("")
    w.text_input.edit.insertPlainText("The bank of the river was muddy.")  # as a paste: the hand-over waits
    assert w.text_input._timer.isActive()
    qtbot.keyClick(panel, Qt.Key.Key_F5)
    assert "empty" not in panel.note.text()
    qtbot.waitUntil(lambda: panel.analysis is not None and not w.ctx.runner.active, timeout=60_000)
    assert panel.analysis.text == "The bank of the river was muddy."
