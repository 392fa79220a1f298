"""The K-shot sweep view: accuracy against the number of examples K (95% intervals, several draws of the
examples), one line per model, and against model size (the GPT-3 figure), with what the model answered at each
point and the table as CSV.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core.io.errors import ExplorerError
from explorer.core.prompting.tasks import Task
from explorer.gui.widgets.chart import ChartWidget
from explorer.gui.widgets.flow import FlowLayout
from explorer.gui.widgets.model_picker import short_name


class SweepView(QWidget):
    """Sweep settings and models, the two charts, the results table and a point's answers.

    The task, its template, the backend and the seed are the panel's (``panel.task``, ``panel.template()``...).
    """

    def __init__(self, ctx, panel: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.panel = panel
        self.sweeps: dict[str, Any] = {}  # model name -> SweepResult (one line each)
        self.sweep_job = None
        self.sweep_shots_edit = QLineEdit("0,1,2,4,8")
        self.sweep_draws_spin = QSpinBox(minimum=1, maximum=50, value=3)
        self.sweep_draws_spin.setToolTip("Random draws of the examples for each K")
        self.sweep_limit_spin = QSpinBox(minimum=1, maximum=10000, value=20)
        self.sweep_limit_spin.setToolTip("How many held-out items are evaluated for each K and draw")
        self.sweep_mode = QComboBox()
        self.sweep_mode.addItem("task default", None)
        self.sweep_mode.addItem("score label words", "score")
        self.sweep_mode.addItem("generate + exact match", "generate")
        self.sweep_button = QPushButton("Run sweep")
        self.sweep_button.clicked.connect(self.run_sweep)
        self.sweep_cancel = QPushButton("Cancel")
        self.sweep_cancel.setEnabled(False)
        self.sweep_cancel.clicked.connect(self.cancel_sweep)
        clear = QPushButton("Clear lines")
        clear.clicked.connect(self.clear_sweeps)
        self.export_table_button = QPushButton("Export table…")
        self.export_table_button.clicked.connect(self.export_table_dialog)
        self.sweep_progress = QProgressBar()
        self.sweep_progress.setRange(0, 1000)
        self.sweep_progress.setTextVisible(True)
        self.sweep_progress.setFormat("")
        self.sweep_chart = ChartWidget(title="Accuracy vs number of examples")
        self.sweep_chart.plot_item.scene().sigMouseClicked.connect(self._sweep_chart_clicked)
        # The GPT-3 figure's size axis: one line per K over the swept models.
        self.size_chart = ChartWidget(title="Accuracy vs model size")
        self.size_axis = QComboBox()
        self.size_axis.addItem("x: all parameters (GPT-3)", "parameters")
        self.size_axis.addItem("x: without embeddings (Kaplan)", "non_embedding")
        self.size_axis.setToolTip("What the x axis counts: every parameter, or all but the embedding tables")
        self.size_axis.currentIndexChanged.connect(lambda _i: self._redraw_sweep())
        self.sweep_charts = QTabWidget()
        self.sweep_charts.addTab(self.sweep_chart, "vs examples K")
        self.sweep_charts.addTab(self.size_chart, "vs model size")
        # The size axis choice sits beside the tabs (no extra row) and only matters for the size chart.
        self.sweep_charts.setCornerWidget(self.size_axis)
        self.size_axis.setVisible(False)
        self.sweep_charts.currentChanged.connect(lambda i: self.size_axis.setVisible(i == 1))
        # Which loaded models the sweep runs on (the same items and draws for each).
        self.sweep_models_row = FlowLayout()
        self.sweep_model_checks: dict[str, QCheckBox] = {}
        self.wanted_ticks: set[str] | None = None  # ticks restored from the session, kept for models still loading
        self.ctx.models.changed.connect(self._refresh_sweep_models)
        self.results_table = QTableWidget(0, 8)
        self.results_table.setHorizontalHeaderLabels(
            ["model", "K", "accuracy", "95% CI low", "95% CI high", "n", "per draw", "prompt tokens"]
        )
        self.results_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.results_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.results_table.currentCellChanged.connect(lambda r, *_: self.show_point_details(r))
        self.point_details = QPlainTextEdit(readOnly=True)
        self.point_details.setPlaceholderText("Select a row (or click a point) to see what the model answered.")
        self.point_details.setMaximumHeight(120)
        row = FlowLayout()
        for label, w in (("K values", self.sweep_shots_edit), ("draws", self.sweep_draws_spin),
                         ("items", self.sweep_limit_spin), ("", self.sweep_mode)):
            if label:
                row.addWidget(QLabel(label))
            row.addWidget(w)
        buttons = QHBoxLayout()
        for w in (self.sweep_button, self.sweep_cancel, clear, self.export_table_button):
            buttons.addWidget(w)
        buttons.addWidget(self.sweep_progress, 1)
        models_label = QLabel("Models")
        models_label.setToolTip("Tick several loaded models to draw accuracy against model size")
        self.sweep_models_row.addWidget(models_label)
        v = QVBoxLayout(self)
        v.addLayout(self.sweep_models_row)
        v.addLayout(row)
        v.addLayout(buttons)
        v.addWidget(self.sweep_charts, 3)
        v.addWidget(self.results_table, 2)
        v.addWidget(self.point_details)

    # ------------------------------------------------------------ backend

    def _refresh_sweep_models(self) -> None:
        """One tick box per loaded causal LM; ticks survive loads and unloads of other models."""
        names = self.ctx.models.names(None, ("causal-lm",))
        for name in list(self.sweep_model_checks):
            if name not in names:
                box = self.sweep_model_checks.pop(name)
                self.sweep_models_row.removeWidget(box)
                box.deleteLater()
        for name in names:
            if name not in self.sweep_model_checks:
                box = QCheckBox(short_name(name))
                box.setToolTip(f"Sweep {name} too")
                wanted = self.wanted_ticks
                box.setChecked(name in wanted if wanted is not None else
                               name == self.panel.model_picker.current_name() or not self.sweep_model_checks)
                box.toggled.connect(lambda on, n=name: self._ticked(n, on))
                self.sweep_model_checks[name] = box
                self.sweep_models_row.addWidget(box)

    def ticked_names(self) -> list[str]:
        """The ticks the session keeps: the ticked loaded models and the restored ticks of models still loading."""
        ticked = [n for n, box in self.sweep_model_checks.items() if box.isChecked()]
        return ticked + sorted((self.wanted_ticks or set()) - set(self.sweep_model_checks))

    def _ticked(self, name: str, on: bool) -> None:
        if self.wanted_ticks is not None:
            (self.wanted_ticks.add if on else self.wanted_ticks.discard)(name)

    def restore_ticks(self, names: list[str]) -> None:
        """Tick ``names`` (from the session): the boxes there now, and each box made when its model loads."""
        self.wanted_ticks = set(names)
        for name, box in self.sweep_model_checks.items():
            box.setChecked(name in self.wanted_ticks)

    def sweep_models(self) -> list[str]:
        """The ticked models, in the order they were loaded; the prompt's model when none is ticked."""
        ticked = [n for n, box in self.sweep_model_checks.items() if box.isChecked()]
        current = self.panel.model_picker.current_name()
        return ticked or ([current] if current else [])

    def sweep_backends(self) -> list[Any]:
        """The backends the sweep runs on: the endpoint, or every ticked local model."""
        from explorer.core.prompting.backends import LocalBackend

        if self.panel.is_http():
            return [self.panel.backend()]
        names = self.sweep_models()
        if not names:
            raise ExplorerError("Load a causal language model (e.g. smollm2 or gemma3) in the Models panel first.")
        return [LocalBackend(self.ctx.models.loaded[n]) for n in names if n in self.ctx.models.loaded]

    def run_sweep(self) -> None:
        from explorer.core.prompting.sweep import parse_shots, run_sweeps

        try:
            backends = self.sweep_backends()
            shots = parse_shots(self.sweep_shots_edit.text())
            task = self._task_for_sweep()
        except ExplorerError as err:
            self.ctx.error(str(err))
            return
        if self.sweeps and next(iter(self.sweeps.values())).task != task.name:
            self.sweeps.clear()
        self._live: list = []
        draws, limit, seed = self.sweep_draws_spin.value(), self.sweep_limit_spin.value(), self.panel.seed()
        # Chat format only where a model has a chat template: a base model (gemma3) is always prompted raw.
        mode, chat = self.sweep_mode.currentData(), self.panel.chat()

        def job(progress, cancel, partial):
            return run_sweeps(backends, task, shots, chat=chat, on_point=lambda name, p: partial((name, p)),
                              progress=progress, cancel=cancel, draws=draws, limit=limit, seed=seed, mode=mode)

        self.sweep_button.setEnabled(False)
        self.sweep_cancel.setEnabled(True)
        self.sweep_progress.setValue(0)
        names = ", ".join(b.name for b in backends)
        self.sweep_job = self.ctx.runner.submit(
            job, label=f"Sweeping K on {task.name} ({names})",
            on_progress=lambda f, m: (self.sweep_progress.setValue(int(f * 1000)), self.sweep_progress.setFormat(m)),
            on_partial=lambda np_: self._on_sweep_point(np_[0], task, np_[1]),
            on_result=self._on_sweeps_done, on_error=self.ctx.error,
            on_cancelled=lambda: self.sweep_progress.setFormat("Cancelled — the points so far are kept."),
            on_finished=self._sweep_finished,
        )

    def _task_for_sweep(self) -> Task:
        """The task with the editor's description and template (the examples come from the task's items)."""
        if self.panel.task is None:
            raise ExplorerError("Choose a task first.")
        t = self.panel.task
        return Task(t.name, t.title, self.panel.template(), t.items, t.mode, t.labels, t.max_new_tokens, t.stop, t.source, t.note)

    def _on_sweep_point(self, name: str, task: Task, point: Any) -> None:
        from explorer.core.prompting.sweep import SweepResult

        live = self.sweeps.get(name)
        if live is None or getattr(live, "_complete", True):
            mode = self.sweep_mode.currentData() or task.mode
            lm = self.ctx.models.loaded.get(name)
            card = lm.card if lm is not None and not self.panel.is_http() else None
            live = SweepResult(name, task.name, mode, [], {"task": task.name},
                               1 / len(task.labels) if mode == "score" and task.labels else None,
                               parameters=card.num_parameters if card else None,
                               parameters_non_embedding=card.num_parameters_non_embedding if card else None)
            live._complete = False
            self.sweeps[name] = live
        live.points.append(point)
        self._redraw_sweep()

    def _on_sweeps_done(self, results: list) -> None:
        for result in results:
            result._complete = True
            self.sweeps[result.model] = result
        self._redraw_sweep()
        best = [(r.model, max(r.points, key=lambda p: p.accuracy)) for r in results]
        self.ctx.status("Sweep done: best accuracy " + "; ".join(
            f"{name} {p.accuracy:.0%} at K = {p.shots}" for name, p in best) + ".")

    def _sweep_finished(self) -> None:
        if self.sweep_job is not None and not self.sweep_job.cancelled:
            self.sweep_progress.setValue(1000)
            self.sweep_progress.setFormat("Done")
        self.sweep_button.setEnabled(True)
        self.sweep_cancel.setEnabled(False)
        for r in self.sweeps.values():
            r._complete = True

    def cancel_sweep(self) -> None:
        if self.sweep_job is not None:
            self.sweep_job.cancel()

    def clear_sweeps(self) -> None:
        self.sweeps.clear()
        self.sweep_chart.clear()
        self.size_chart.clear()
        self.results_table.setRowCount(0)
        self.point_details.clear()

    def _redraw_sweep(self) -> None:
        from explorer.core.prompting.sweep import size_chart, sweep_chart

        results = [r for r in self.sweeps.values() if r.points]
        if not results:
            return
        self.sweep_chart.set_spec(sweep_chart(results))
        if any(r.parameters for r in results):
            self.size_chart.set_spec(size_chart(results, self.size_axis.currentData() or "parameters"))
        else:
            self.size_chart.clear()
            self.size_chart.set_title("Accuracy vs model size: no swept model has a known size (endpoint models)")
        self._rows = [(r, p) for r in results for p in r.points]
        t = self.results_table
        t.setRowCount(len(self._rows))
        for i, (r, p) in enumerate(self._rows):
            values = [r.model, str(p.shots), f"{p.accuracy:.1%}", f"{p.ci_low:.1%}", f"{p.ci_high:.1%}", str(p.n),
                      ", ".join(f"{a:.0%}" for a in p.draw_accuracies),
                      f"{p.mean_prompt_tokens:.0f}" if p.mean_prompt_tokens else ""]
            for c, v in enumerate(values):
                t.setItem(i, c, QTableWidgetItem(v))

    def show_point_details(self, row: int) -> None:
        rows = getattr(self, "_rows", [])
        if not 0 <= row < len(rows):
            return
        r, p = rows[row]
        lines = [f"{r.model}, K = {p.shots}: {p.correct}/{p.n} correct = {p.accuracy:.1%} "
                 f"(95% CI {p.ci_low:.1%}–{p.ci_high:.1%}); per draw: {', '.join(f'{a:.0%}' for a in p.draw_accuracies)}"]
        for d in p.details[:40]:
            mark = "✓" if d.correct else "✗"
            lines.append(f"{mark} item {d.item} (draw {d.draw + 1}): answered {d.prediction!r}, expected {d.expected!r}")
        self.point_details.setPlainText("\n".join(lines))

    def _sweep_chart_clicked(self, event) -> None:
        """Clicking near a point selects its row in the results table."""
        rows = getattr(self, "_rows", [])
        if not rows or self.sweep_chart.spec is None:
            return
        vb = self.sweep_chart.plot_item.vb
        if not self.sweep_chart.plot_item.sceneBoundingRect().contains(event.scenePos()):
            return
        pos = vb.mapSceneToView(event.scenePos())
        best = min(range(len(rows)), key=lambda i: (rows[i][1].shots - pos.x()) ** 2 * 0.05
                   + (rows[i][1].accuracy - pos.y()) ** 2)
        self.results_table.selectRow(best)
        self.show_point_details(best)

    def table_csv(self) -> str:
        import io

        from explorer.core.io.fileio import SafeCsvWriter

        buf = io.StringIO()
        w = SafeCsvWriter(buf)
        w.writerow(["model", "task", "shots", "accuracy", "ci_low", "ci_high", "n", "correct", "items", "draws",
                    "draw_accuracies", "mean_prompt_tokens", "parameters", "parameters_non_embedding"])
        for r, p in getattr(self, "_rows", []):
            w.writerow([r.model, r.task, p.shots, f"{p.accuracy:.6g}", f"{p.ci_low:.6g}", f"{p.ci_high:.6g}", p.n,
                        p.correct, p.items, p.draws, " ".join(f"{a:.4g}" for a in p.draw_accuracies),
                        "" if p.mean_prompt_tokens is None else f"{p.mean_prompt_tokens:.1f}",
                        r.parameters or "", r.parameters_non_embedding or ""])
        return buf.getvalue()

    def export_table_dialog(self) -> None:
        from explorer.core.io.fileio import atomic_write_text

        path, _ = QFileDialog.getSaveFileName(self, "Export results table", "sweep-results.csv", "CSV (*.csv)")
        if path:
            try:
                atomic_write_text(path, self.table_csv())
            except OSError as err:
                self.ctx.error(f"Could not write {path}: {err}. Nothing was overwritten.")
