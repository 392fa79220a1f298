"""The generation view: the prompt's continuation streamed token by token with the distribution each token
was chosen from, or the task's label words scored by their log-probability (how GPT-3 did multiple choice).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.core.io.errors import ExplorerError
from explorer.core.models.tokens import show_token
from explorer.gui.widgets.chart import ChartWidget
from explorer.gui.widgets.flow import FlowLayout


def token_label(token: str) -> str:
    """A generated token as a person reads it (core's show_token: a space ␣, a new line ↵), as the chart shows it."""
    return show_token(token) or "∅"


class GenerationView(QWidget):
    """Generation settings, Generate / Score labels / Cancel, the streamed output and the step distributions.

    The prompt, its backend, the query and the seed are the panel's (``panel.build()``, ``panel.backend()``...).
    """

    def __init__(self, ctx, panel: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.panel = panel
        self.result: Any = None  # GenerationResult of the last run
        self.score_result: Any = None
        self.gen_job = None
        self._stream_text = ""
        self.max_tokens_spin = QSpinBox(minimum=1, maximum=2048, value=24)
        self.sample_check = QCheckBox("Sample")
        self.sample_check.setToolTip("Off: greedy (always the most likely token)")
        self.temperature_spin = QDoubleSpinBox(minimum=0.05, maximum=5.0, value=1.0, singleStep=0.1)
        self.top_k_spin = QSpinBox(minimum=0, maximum=100000, value=0)
        self.top_k_spin.setToolTip("0 = off")
        self.top_p_spin = QDoubleSpinBox(minimum=0.01, maximum=1.0, value=1.0, singleStep=0.05)
        self.stop_edit = QLineEdit("\\n")
        self.stop_edit.setToolTip("Stop sequences separated by '|'; \\n is a new line")
        for w in (self.temperature_spin, self.top_k_spin, self.top_p_spin):
            w.setEnabled(False)
        self.sample_check.toggled.connect(
            lambda on: [w.setEnabled(on) for w in (self.temperature_spin, self.top_k_spin, self.top_p_spin)]
        )
        self.run_button = QPushButton("Generate")
        self.run_button.clicked.connect(self.run_generation)
        self.score_button = QPushButton("Score labels")
        self.score_button.setToolTip("Log-probability of each label word after the prompt (how GPT-3 did multiple choice)")
        self.score_button.clicked.connect(self.run_scoring)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_generation)
        settings = FlowLayout()
        for label, w in (("max tokens", self.max_tokens_spin), ("", self.sample_check), ("T", self.temperature_spin),
                         ("top-k", self.top_k_spin), ("top-p", self.top_p_spin), ("stop", self.stop_edit)):
            if label:
                settings.addWidget(QLabel(label))
            settings.addWidget(w)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.score_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        self.output_view = QPlainTextEdit(readOnly=True)
        self.output_view.setPlaceholderText("The model's continuation streams here.")
        self.output_status = QLabel()
        self.step_list = QListWidget()
        self.step_list.setToolTip("Generated tokens: pick one to see the distribution it was chosen from")
        self.step_list.setFlow(QListWidget.Flow.LeftToRight)
        self.step_list.setWrapping(True)
        self.step_list.setMaximumHeight(64)
        self.step_list.currentRowChanged.connect(self.show_step)
        self.dist_chart = ChartWidget(title="Next-token distribution")
        v = QVBoxLayout(self)
        v.addLayout(settings)
        v.addLayout(buttons)
        v.addWidget(self.output_view, 1)
        v.addWidget(self.output_status)
        v.addWidget(QLabel("Steps (click one):"))
        v.addWidget(self.step_list)
        v.addWidget(self.dist_chart, 2)

    def use_task(self, task: Any, switched: bool) -> None:
        """A task is now in the editor: its stop sequences, answer length and label words apply here."""
        if switched:
            self.clear_output()  # the last answer belongs to the other task's prompt
        self.stop_edit.setText("|".join(s.replace("\n", "\\n") for s in task.stop))
        self.max_tokens_spin.setValue(task.max_new_tokens)
        self.score_button.setEnabled(bool(task.labels))

    def clear_output(self) -> None:
        """Forget the shown generation or scoring: its prompt is no longer the one on screen."""
        if self.gen_job is not None and not self.gen_job.done:
            self.gen_job.cancel()
        self.result = self.score_result = None
        self._stream_text = ""
        self.output_view.setPlainText("")
        self.step_list.clear()
        self.dist_chart.clear()
        self.output_status.setText("")

    def _settings(self) -> Any:
        from explorer.core.prompting.generation import GenerationSettings

        stops = [s.replace("\\n", "\n") for s in self.stop_edit.text().split("|") if s]
        return GenerationSettings(
            max_new_tokens=self.max_tokens_spin.value(), do_sample=self.sample_check.isChecked(),
            temperature=self.temperature_spin.value(), top_k=self.top_k_spin.value(), top_p=self.top_p_spin.value(),
            stop=stops, seed=self.panel.seed(), top_n=10,
        )

    def _busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.score_button.setEnabled(not busy and bool(self.panel.task and self.panel.task.labels))
        self.cancel_button.setEnabled(busy)

    def run_generation(self) -> None:
        try:
            backend = self.panel.backend()
            built = self.panel.build()
            settings = self._settings()
            settings.validate()
        except ExplorerError as err:
            self.ctx.error(str(err))
            return
        self.result = None
        self._stream_text = ""
        self._stream_steps: list = []
        self.output_view.setPlainText("")
        self.step_list.clear()
        self.dist_chart.clear()
        self.output_status.setText("Generating…")
        self._busy(True)
        self.gen_job = self.ctx.runner.submit(
            backend.generate, built.text, settings, built.add_special_tokens, label="Generating",
            on_partial=self._on_token, on_result=self._on_generated, on_error=self._on_gen_error,
            on_cancelled=lambda: self.output_status.setText("Cancelled."), on_finished=lambda: self._busy(False),
        )

    def _on_token(self, d: dict) -> None:
        if d.get("delta"):
            self._stream_text += d["delta"]
            cursor = self.output_view.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertText(d["delta"])
        step = d.get("step")
        if step is not None:
            self._stream_steps.append(step)
            self.step_list.addItem(QListWidgetItem(token_label(step.token)))
            self.output_status.setText(f"{len(self._stream_steps)} tokens…")

    def _on_generated(self, result: Any) -> None:
        self.result = result
        self.output_view.setPlainText(result.text)
        self.step_list.clear()
        for s in result.steps:
            item = QListWidgetItem(token_label(s.token))
            item.setToolTip(f"p = {s.prob:.4f}")
            self.step_list.addItem(item)
        q = self.panel.query()
        verdict = ""
        if q.output:
            from explorer.core.prompting.prompts import is_correct

            verdict = "  ✓ matches the expected answer" if is_correct(result.text, q) else f"  ✗ expected {q.output!r}"
        self.output_status.setText(
            f"{len(result.steps)} tokens, {result.tokens_per_second:.1f} tokens/s, stopped by {result.stop_reason}.{verdict}"
        )
        if result.steps:
            self.step_list.setCurrentRow(0)

    def _on_gen_error(self, message: str) -> None:
        self.output_status.setText(message)
        self.ctx.error(message)

    def cancel_generation(self) -> None:
        if self.gen_job is not None:
            self.gen_job.cancel()
            self.output_status.setText("Cancelling…")

    def show_step(self, row: int) -> None:
        from explorer.core.prompting.generation import GenerationResult, step_chart

        result = self.result
        if result is None and getattr(self, "_stream_steps", None):
            result = GenerationResult(self._stream_text, self._stream_steps, "", 0, 0.0)
        if result is None or row < 0 or row >= len(result.steps) or not result.steps[row].top:
            return
        self.dist_chart.set_spec(step_chart(result, row))

    def run_scoring(self) -> None:
        if self.panel.task is None or not self.panel.task.labels:
            return
        try:
            backend = self.panel.backend()
            built = self.panel.build()
        except ExplorerError as err:
            self.ctx.error(str(err))
            return
        options = [built.answer_prefix + label for label in self.panel.task.labels]
        self._busy(True)
        self.output_status.setText("Scoring the labels…")
        self.gen_job = self.ctx.runner.submit(
            backend.score, built.text, options, "mean", built.add_special_tokens, label="Scoring labels",
            on_result=self._on_scored, on_error=self._on_gen_error, on_finished=lambda: self._busy(False),
        )

    def _on_scored(self, res: Any) -> None:
        from explorer.core.prompting.scoring import score_chart

        self.score_result = res
        lines = [f"{o.option!r}: log p = {o.logprob:.3f} (sum), {o.mean_logprob:.3f} per token"
                 for o in res.options]
        q = self.panel.query()
        verdict = ""
        if q.output:
            ok = res.prediction.strip().lower() == q.output.strip().lower()
            verdict = "  ✓ correct" if ok else f"  ✗ expected {q.output!r}"
        self.output_view.setPlainText("\n".join(lines) + f"\n\nprediction: {res.prediction.strip()}{verdict}")
        self.output_status.setText(f"Picked {res.prediction.strip()!r} by per-token log-probability.{verdict}")
        self.dist_chart.set_spec(score_chart(res))

    # ------------------------------------------------------------ sweep
