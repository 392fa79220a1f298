"""Heads & fine-tuning panel: run every task head of the lecture (one class out, two sentences in, a
class per token, copy a span from the input, fill masks, a sequence out) and fine-tune a head three ways
(frozen encoder, full, LoRA adapters) with the parameters and bytes each stores shown before training.

The panel holds two views, the run view and the fine-tune lab, each with its own widgets and state; it
passes what one view asks of the other (open a fine-tune in the run view) and saves the session's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from explorer.core.io.paths import resources_dir
from explorer.core.tuning.task_model import MODES
from explorer.gui.panels.base import Panel, state_from_dict, state_to_dict, view_parts
from explorer.gui.panels.heads.lab import SAMPLE_SETS, FineTuneLab
from explorer.gui.panels.heads.run_view import RunView
from explorer.gui.panels.heads.seq2seq_view import Seq2SeqView


@dataclass
class HeadsState:
    model: str = ""
    task: str = ""
    text: str = ""
    text2: str = ""
    tab: int = 0
    data_path: str = ""
    ft_task: str = ""
    ft_model: str = "minilm"
    mode: str = "frozen"
    epochs: int = 50
    pooling: str = ""
    seed: int = 0
    max_new_tokens: int = 30
    max_answer_len: int = 30
    ft_result: dict = field(default_factory=dict)  # the lab's last run: figures, history and batch losses


@view_parts(
    run_view=("picker", "task_combo", "run_button", "cancel_button", "eval_button", "label1", "label2", "edit1",
              "edit2", "top_k", "max_answer", "max_new", "temperature", "run_note", "views", "class_chart",
              "class_label", "tokens_text", "tokens_legend", "entities", "token_chart", "qa_text", "spans",
              "qa_curves", "qa_matrix", "fill_text", "fill_mask_combo", "fill_chart", "gen_text", "eval_chart",
              "eval_text", "result", "current_task", "run", "show_result", "open_model", "evaluate_file",
              "_cell_clicked"),
    lab=("data_path", "sample_combo", "ft_task", "preview", "data_note", "ft_picker", "mode_group", "epochs",
         "epochs_label", "pooling", "pooling_label", "rule_note", "seed", "out_edit", "lab_eval_button", "why_button",
         "train_button", "ft_cancel", "open_result", "progress", "ft_note", "cost_table", "cost_note", "train_chart",
         "why_chart", "lab_eval_chart", "lab_eval_text", "lab_tabs", "ft_result", "why_result", "data", "costs",
         "_ft_job", "set_data_file", "train", "compare_scratch", "evaluate_finetune", "confirm_replace",
         "_train_update", "_train_done", "_show_progress", "_mode"),
)
class HeadsPanel(Panel):
    key = "heads"
    title = "Heads & fine-tuning"
    summary = "Task heads on a pre-trained model, and fine-tuning them frozen, fully, or with adapters."
    state_class = HeadsState

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.state = HeadsState()
        self.eval_result = None  # the last evaluation of either view
        self.run_view = RunView(ctx)
        self.lab = FineTuneLab(ctx)
        self.seq2seq = Seq2SeqView(ctx)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.run_view, "Run a head")
        self.tabs.addTab(self.lab, "Fine-tune lab")
        self.tabs.addTab(self.seq2seq, "Seq2seq: v1 vs v2")
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        self.run_view.wantsShown.connect(lambda: self.tabs.setCurrentIndex(0))
        self.lab.openResult.connect(self.run_view.open_model)
        for view in (self.run_view.evaluation, self.lab.evaluation):
            view.evaluated.connect(self._evaluated)
        ctx.models.changed.connect(self._models_changed)
        sample = resources_dir() / "data" / SAMPLE_SETS[0][1]
        if sample.is_file():  # the out-of-box demo: the shipped sentiment set is ready to train on
            self.lab.set_data_file(str(sample))
        self._models_changed()

    def _models_changed(self) -> None:
        self.run_view._model_chosen(self.run_view.picker.current_name() or "")
        self.lab._update_plan()

    def _evaluated(self, result) -> None:
        self.eval_result = result

    # ================================================================ state

    def state_dict(self) -> dict:
        s, run, lab = self.state, self.run_view, self.lab
        s.model = run.picker.current_name() or s.model
        s.task = run.current_task() or s.task
        s.text, s.text2 = run.edit1.toPlainText(), run.edit2.toPlainText()
        s.tab = self.tabs.currentIndex()
        s.data_path = lab.loaded_path or s.data_path
        s.mode, s.epochs, s.seed = lab._mode(), lab.epochs.value(), lab.seed.value()
        s.pooling = lab.pooling.currentData() or ""
        s.ft_model = lab.ft_picker.current_name() or s.ft_model
        s.ft_task = lab.ft_task.currentData() or ""
        s.max_new_tokens, s.max_answer_len = run.max_new.value(), run.max_answer.value()
        if lab.ft_result is not None:
            s.ft_result = {**lab.ft_result.to_dict(), "batch_losses": [list(p) for p in lab.ft_result.batch_losses]}
        run.wanted_task = s.task
        return state_to_dict(s)

    def restore_state(self, data: dict) -> None:
        s = state_from_dict(HeadsState, data)
        self.state = s
        run, lab = self.run_view, self.lab
        run.wanted_task = s.task
        if s.model:
            run.picker.select(s.model)
        if s.ft_model:
            lab.ft_picker.select(s.ft_model)
        run._model_chosen()
        run.edit1.setPlainText(s.text)
        run.edit2.setPlainText(s.text2)
        run.max_new.setValue(s.max_new_tokens)
        run.max_answer.setValue(s.max_answer_len)
        if s.mode in MODES:
            lab.mode_group.button(MODES.index(s.mode)).setChecked(True)
        lab.epochs.setValue(max(1, s.epochs))
        lab.seed.setValue(s.seed)
        lab.pooling.setCurrentIndex(max(0, lab.pooling.findData(s.pooling)))
        i = lab.ft_task.findData(s.ft_task)
        lab.ft_task.blockSignals(True)
        lab.ft_task.setCurrentIndex(max(0, i))
        lab.ft_task.blockSignals(False)
        if s.data_path and Path(s.data_path).is_file():
            lab.set_data_file(s.data_path)
        if s.ft_result:
            from explorer.core.tuning.finetune_results import FinetuneResult

            try:
                lab.show_saved_result(FinetuneResult.from_dict(s.ft_result))
            except (KeyError, TypeError, ValueError, AttributeError):
                s.ft_result = {}  # not a result this version can show: the rest of the panel comes back
        self.tabs.setCurrentIndex(s.tab if 0 <= s.tab < self.tabs.count() else 0)
