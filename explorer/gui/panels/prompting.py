"""Prompting panel: GPT-3's zero-, one- and few-shot learning — build a prompt from a task description and
editable examples, stream a generation with the next-token distribution of every step, score label words, and
sweep accuracy against the number of examples K (one line per model, with 95% intervals).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core.io.errors import ExplorerError
from explorer.core.prompting.backends import DEFAULT_KEY_ENV, is_env_var_name
from explorer.core.prompting.prompts import (
    OUTPUT_FIELD,
    Example,
    PromptTemplate,
    build_prompt,
    has_chat_template,
)
from explorer.core.prompting.tasks import BUILTIN, Task, builtin_task, load_task_file
from explorer.gui.panels.base import Panel, state_from_dict, state_to_dict
from explorer.gui.widgets.chart import ChartWidget
from explorer.gui.widgets.flow import FlowLayout
from explorer.gui.widgets.model_picker import ModelPicker, short_name


def token_label(token: str) -> str:
    """A generated token as a visible label: spaces as ␣, new lines as \\n."""
    return (repr(token)[1:-1] or "∅").replace(" ", "␣")


PART_COLORS = {"description": "#e8f0fe", "demo": "#e6f4ea", "query": "#fef7e0", "chat": "#f3e8fd"}


@dataclass
class PromptingState:
    """What the panel saves in the session (never an API key: only the name of its environment variable)."""

    task: str = "addition"
    shots: int = 2
    seed: int = 0
    chat: bool = False
    backend: str = "local"
    model: str = "smollm2"
    base_url: str = "http://127.0.0.1:8000/v1"
    http_model: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    description: str = ""
    template: str = ""
    examples: list = field(default_factory=list)
    query: dict = field(default_factory=dict)
    max_new_tokens: int = 24
    sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    stop: str = "\\n"
    sweep_shots: str = "0,1,2,4,8"
    sweep_draws: int = 3
    sweep_limit: int = 20


class PromptingPanel(Panel):
    key = "prompting"
    title = "Prompting"
    summary = "GPT-3 style zero-, one- and few-shot prompts, generation, and accuracy against the number of examples."

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.task: Task | None = None
        self.user_tasks: dict[str, Task] = {}
        self.result: Any = None  # GenerationResult of the last run
        self.score_result: Any = None
        self.sweeps: dict[str, Any] = {}  # model name -> SweepResult (one line each)
        self.gen_job = None
        self.sweep_job = None
        self._stream_text = ""
        self._query_index = 0
        self._loading = False
        self._rebuild_timer = QTimer(self, singleShot=True, interval=150)
        self._rebuild_timer.timeout.connect(self.rebuild_prompt)
        self._build()
        self._refresh_sweep_models()
        self.ctx.models.changed.connect(self._schedule_rebuild)
        self.ctx.filesChanged.connect(self._files_dropped)
        self.set_task("addition")

    # ------------------------------------------------------------ layout

    def _build(self) -> None:
        # Backend row
        self.backend_combo = QComboBox()
        self.backend_combo.addItems(["Local model", "HTTP endpoint (OpenAI-compatible)"])
        self.backend_combo.setToolTip("Run prompts on a loaded local model, or on a server such as vLLM, TGI, "
                                      "a llama.cpp server or Ollama")
        self.model_picker = ModelPicker(self.ctx, heads=("causal-lm",))
        self.model_picker.modelChanged.connect(self._schedule_rebuild)
        self.url_edit = QLineEdit("http://127.0.0.1:8000/v1")
        self.url_edit.setPlaceholderText("base URL, e.g. http://127.0.0.1:8000/v1")
        self.http_model_edit = QLineEdit()
        self.http_model_edit.setPlaceholderText("model name on the server")
        self.key_env_edit = QLineEdit("OPENAI_API_KEY")
        self.key_env_edit.setToolTip("Name of the environment variable holding the API key (else the system keyring). "
                                     "The key itself is never saved.")
        self.key_env_edit.editingFinished.connect(self._check_key_env)
        self.check_button = QPushButton("Check")
        self.check_button.setToolTip("Ask the endpoint which models it serves")
        self.check_button.clicked.connect(self.check_endpoint)
        http_box = QWidget()
        hl = QHBoxLayout(http_box)
        hl.setContentsMargins(0, 0, 0, 0)
        hl.addWidget(self.url_edit, 3)
        hl.addWidget(self.http_model_edit, 2)
        hl.addWidget(QLabel("key in $"))
        hl.addWidget(self.key_env_edit, 1)
        hl.addWidget(self.check_button)
        self.backend_stack = QStackedWidget()
        self.backend_stack.addWidget(self.model_picker)
        self.backend_stack.addWidget(http_box)
        self.backend_combo.currentIndexChanged.connect(self._backend_changed)

        self.task_combo = QComboBox()
        for name in BUILTIN:
            self.task_combo.addItem(name, name)
        self.task_combo.setToolTip("Built-in tasks, or open your own labelled CSV/JSONL")
        self.task_combo.currentIndexChanged.connect(lambda _i: self.set_task(self.task_combo.currentData()))
        self.open_button = QPushButton("Open data…")
        self.open_button.setToolTip("A CSV/TSV/JSONL with input columns and an output/label column")
        self.open_button.clicked.connect(self.open_data_dialog)
        self.shots_spin = QSpinBox(minimum=0, maximum=64, value=2)
        self.shots_spin.setToolTip("K: how many examples go in the prompt (0 = zero-shot); changing it draws them")
        # K (and the seed of the draw) take effect at once: the table and the prompt follow them.
        self.shots_spin.valueChanged.connect(lambda _v: self._loading or self.draw_examples())
        self.seed_spin = QSpinBox(minimum=0, maximum=999999, value=0)
        self.seed_spin.setToolTip("Seed for drawing examples and for sampling")
        self.draw_button = QPushButton("Draw K examples")
        self.draw_button.clicked.connect(self.draw_examples)
        self.chat_check = QCheckBox("Chat template")
        self.chat_check.setToolTip("Write the prompt as system/user/assistant turns with the model's chat template")
        self.chat_check.toggled.connect(self._schedule_rebuild)

        top = QHBoxLayout()
        top.addWidget(QLabel("Run on"))
        top.addWidget(self.backend_combo)
        top.addWidget(self.backend_stack, 1)
        row2 = FlowLayout()
        row2.addWidget(QLabel("Task"))
        row2.addWidget(self.task_combo)
        row2.addWidget(self.open_button)
        row2.addSpacing(12)
        row2.addWidget(QLabel("K"))
        row2.addWidget(self.shots_spin)
        row2.addWidget(QLabel("seed"))
        row2.addWidget(self.seed_spin)
        row2.addWidget(self.draw_button)
        row2.addWidget(self.chat_check)
        row2.addStretch(1)
        self.task_note = QLabel()
        self.task_note.setWordWrap(True)
        self.task_note.setStyleSheet("color: #555;")

        # Prompt editor
        self.description_edit = QLineEdit()
        self.description_edit.setPlaceholderText("task description (optional), e.g. 'Translate English to French:'")
        self.template_edit = QLineEdit()
        self.template_edit.setToolTip("How each example is written; {output} marks the answer. \\n is a new line.")
        self.examples_table = QTableWidget(0, 0)
        self.examples_table.setToolTip("The demonstrations, joined by new lines. Edit any cell.")
        self.examples_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.examples_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.query_table = QTableWidget(1, 0)
        self.query_table.setMaximumHeight(64)
        self.query_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.query_table.verticalHeader().setVisible(False)
        add_row = QPushButton("+ example")
        add_row.clicked.connect(self.add_example_row)
        del_row = QPushButton("− selected")
        del_row.clicked.connect(self.remove_selected_rows)
        next_query = QPushButton("Next query")
        next_query.setToolTip("Take another held-out item of the task as the query")
        next_query.clicked.connect(self.next_query)
        for w in (self.description_edit, self.template_edit):
            w.textChanged.connect(self._schedule_rebuild)
        for t in (self.examples_table, self.query_table):
            t.itemChanged.connect(self._schedule_rebuild)
        self.prompt_view = QPlainTextEdit(readOnly=True)
        self.prompt_view.setToolTip("The exact text the model receives: description (blue), examples (green), "
                                    "query (yellow)")
        self.token_label = QLabel()

        editor = QWidget()
        el = QVBoxLayout(editor)
        el.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        form.addRow("Description", self.description_edit)
        form.addRow("Template", self.template_edit)
        el.addLayout(form)
        eh = QHBoxLayout()
        eh.addWidget(QLabel("<b>Examples</b> (demonstrations)"))
        eh.addStretch(1)
        eh.addWidget(add_row)
        eh.addWidget(del_row)
        el.addLayout(eh)
        el.addWidget(self.examples_table, 2)
        qh = QHBoxLayout()
        qh.addWidget(QLabel("<b>Query</b> (output = expected answer, not shown to the model)"))
        qh.addStretch(1)
        qh.addWidget(next_query)
        el.addLayout(qh)
        el.addWidget(self.query_table)
        el.addWidget(QLabel("<b>Final prompt</b>"))
        el.addWidget(self.prompt_view, 2)
        el.addWidget(self.token_label)

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_generate_tab(), "Generate / score")
        self.tabs.addTab(self._build_sweep_tab(), "K-shot sweep")

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(editor)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(row2)
        layout.addWidget(self.task_note)
        layout.addWidget(split, 1)

    def _build_generate_tab(self) -> QWidget:
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
        tab = QWidget()
        v = QVBoxLayout(tab)
        v.addLayout(settings)
        v.addLayout(buttons)
        v.addWidget(self.output_view, 1)
        v.addWidget(self.output_status)
        v.addWidget(QLabel("Steps (click one):"))
        v.addWidget(self.step_list)
        v.addWidget(self.dist_chart, 2)
        return tab

    def _build_sweep_tab(self) -> QWidget:
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
        tab = QWidget()
        v = QVBoxLayout(tab)
        v.addLayout(self.sweep_models_row)
        v.addLayout(row)
        v.addLayout(buttons)
        v.addWidget(self.sweep_charts, 3)
        v.addWidget(self.results_table, 2)
        v.addWidget(self.point_details)
        return tab

    # ------------------------------------------------------------ backend

    def _backend_changed(self, index: int) -> None:
        self.backend_stack.setCurrentIndex(index)
        self._schedule_rebuild()

    def backend(self) -> Any:
        """The selected backend; raises a message-bearing error when none is usable."""
        from explorer.core.prompting.backends import LocalBackend, OpenAIBackend

        if self.backend_combo.currentIndex() == 1:
            return OpenAIBackend(self.url_edit.text(), self.http_model_edit.text(), self.key_env_edit.text().strip() or None)
        lm = self.model_picker.current_model()
        if lm is None:
            raise ExplorerError("Load a causal language model (e.g. smollm2) in the Models panel first.")
        return LocalBackend(lm)

    def _tokenizer(self) -> Any:
        if self.backend_combo.currentIndex() == 1:
            return None
        lm = self.model_picker.current_model()
        return lm.tokenizer if lm is not None else None

    def _context_length(self) -> int | None:
        lm = self.model_picker.current_model() if self.backend_combo.currentIndex() == 0 else None
        return lm.max_length if lm is not None else None

    def check_endpoint(self) -> None:
        try:
            backend = self.backend()
        except ExplorerError as err:
            self.ctx.error(str(err))
            return

        def done(models: list[str]) -> None:
            self.ctx.status(f"{backend.base_url} serves: {', '.join(models) or '(no models listed)'}")
            if models and not self.http_model_edit.text():
                self.http_model_edit.setText(models[0])

        self.ctx.runner.submit(lambda progress, cancel: backend.models(cancel=cancel), label="Checking endpoint",
                               on_result=done, on_error=self.ctx.error)

    # ------------------------------------------------------------ task and examples

    def set_task(self, name: str | None) -> None:
        if not name:
            return
        try:
            task = self.user_tasks[name] if name in self.user_tasks else builtin_task(name, seed=self.seed_spin.value())
        except ExplorerError as err:
            self.ctx.error(str(err))
            return
        if self.task is not None and self.task.name != task.name:
            self.clear_output()  # the last answer belongs to the other task's prompt
        self.task = task
        i = self.task_combo.findData(name)
        if i >= 0 and i != self.task_combo.currentIndex():
            self.task_combo.blockSignals(True)
            self.task_combo.setCurrentIndex(i)
            self.task_combo.blockSignals(False)
        self._loading = True
        self.description_edit.setText(task.template.description)
        self.template_edit.setText(task.template.template.replace("\n", "\\n"))
        self.stop_edit.setText("|".join(s.replace("\n", "\\n") for s in task.stop))
        self.max_tokens_spin.setValue(task.max_new_tokens)
        self._loading = False
        mode = f"scored by label words: {', '.join(task.labels)}" if task.mode == "score" else "answers generated"
        self.task_note.setText(f"<b>{task.title}</b> — {len(task.items)} items, {mode}. {task.note}")
        self.score_button.setEnabled(bool(task.labels))
        self._query_index = 0
        self.draw_examples()

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

    def open_data_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open labelled data", "", "Data (*.csv *.tsv *.jsonl *.json)")
        if path:
            self.open_data(path)

    def open_data(self, path: str) -> None:
        try:
            task = load_task_file(path)
        except ExplorerError as err:
            self.ctx.error(str(err))
            return
        self.user_tasks[task.name] = task
        if self.task_combo.findData(task.name) < 0:
            self.task_combo.addItem(f"{task.name} (file)", task.name)
        self.set_task(task.name)

    def _files_dropped(self) -> None:
        """Labelled CSV/TSV/JSONL files dropped on the window become tasks (the first new one is selected)."""
        from pathlib import Path

        from explorer.core.prompting.tasks import parse_csv, parse_jsonl, task_from_examples

        first = None
        for f in self.ctx.files:
            p = Path(f.path)
            if p.suffix.lower() not in (".csv", ".tsv", ".jsonl", ".json") or p.stem in self.user_tasks:
                continue
            try:
                parse = parse_jsonl if p.suffix.lower() in (".jsonl", ".json") else parse_csv
                examples, out_col = parse(f.text, p.name)
                task = task_from_examples(p.stem, examples, out_col if out_col.lower() != OUTPUT_FIELD else "Answer",
                                          str(p))
            except ExplorerError as err:
                self.ctx.status(f"{p.name} is not a labelled data set for prompting: {err}")
                continue
            self.user_tasks[task.name] = task
            self.task_combo.addItem(f"{task.name} (file)", task.name)
            first = first or task.name
        if first:
            self.set_task(first)

    def _fields(self) -> list[str]:
        try:
            names = self._template().field_names()
        except ExplorerError:
            names = []
        if self.task is not None:
            for f in self.task.items[0].fields:
                if f not in names:
                    names.append(f)
        return names

    def _split(self) -> tuple[list[int], list[int]]:
        from explorer.core.prompting.sweep import split_items

        n = len(self.task.items)
        return split_items(n, None, min(self.shots_spin.value(), n - 1), self.seed_spin.value())

    def draw_examples(self) -> None:
        """Fill the table with K examples drawn (seeded) from the task's pool, and a held-out query."""
        if self.task is None:
            return
        queries, pool = self._split()
        k = min(self.shots_spin.value(), len(pool))
        demos = [self.task.items[i] for i in random.Random(f"draw-{self.seed_spin.value()}-0").sample(pool, len(pool))[:k]]
        query = self.task.items[queries[self._query_index % len(queries)]]
        self.set_examples(demos, query)

    def next_query(self) -> None:
        if self.task is None:
            return
        queries, _ = self._split()
        self._query_index = (self._query_index + 1) % len(queries)
        query = self.task.items[queries[self._query_index]]
        self._fill_table(self.query_table, [query])

    def set_examples(self, demos: list[Example], query: Example | None) -> None:
        self._fill_table(self.examples_table, demos)
        self._fill_table(self.query_table, [query] if query is not None else [Example({})])
        self.rebuild_prompt()

    def _fill_table(self, table: QTableWidget, examples: list[Example]) -> None:
        fields = self._fields()
        table.blockSignals(True)
        table.clear()
        table.setColumnCount(len(fields) + 1)
        table.setHorizontalHeaderLabels(fields + [OUTPUT_FIELD])
        table.setRowCount(len(examples))
        for r, ex in enumerate(examples):
            for c, f in enumerate(fields):
                table.setItem(r, c, QTableWidgetItem(ex.fields.get(f, "")))
            table.setItem(r, len(fields), QTableWidgetItem(ex.output))
        table.blockSignals(False)

    def _read_table(self, table: QTableWidget) -> list[Example]:
        headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
        out = []
        for r in range(table.rowCount()):
            values = {h: (table.item(r, c).text() if table.item(r, c) else "") for c, h in enumerate(headers)}
            output = values.pop(OUTPUT_FIELD, "")
            out.append(Example(values, output))
        return out

    def examples(self) -> list[Example]:
        return self._read_table(self.examples_table)

    def query(self) -> Example:
        rows = self._read_table(self.query_table)
        return rows[0] if rows else Example({})

    def add_example_row(self) -> None:
        t = self.examples_table
        t.insertRow(t.rowCount())
        t.setCurrentCell(t.rowCount() - 1, 0)

    def remove_selected_rows(self) -> None:
        rows = sorted({i.row() for i in self.examples_table.selectedIndexes()}, reverse=True)
        for r in rows:
            self.examples_table.removeRow(r)
        self.rebuild_prompt()

    # ------------------------------------------------------------ prompt

    def _template(self) -> PromptTemplate:
        t = self.task.template if self.task is not None else PromptTemplate()
        template = self.template_edit.text().replace("\\n", "\n") or t.template
        return PromptTemplate(self.description_edit.text().replace("\\n", "\n"), template, t.separator)

    def _schedule_rebuild(self, *_args) -> None:
        if not self._loading:
            self._rebuild_timer.start()

    def build(self) -> Any:
        tok = self._tokenizer()
        chat = self.chat_check.isChecked()
        if chat and tok is not None and not has_chat_template(tok):
            raise ExplorerError("This model's tokenizer has no chat template.")
        return build_prompt(self._template(), self.examples(), self.query(), tok, self._context_length(),
                            chat=chat and tok is not None)

    def rebuild_prompt(self) -> Any:
        """Show the final prompt coloured by part, with its exact token count."""
        try:
            built = self.build()
        except ExplorerError as err:
            self.prompt_view.setPlainText("")
            self.token_label.setText(f"<span style='color:#b00020'>{err}</span>")
            return None
        self.prompt_view.clear()
        cursor = self.prompt_view.textCursor()
        for part in built.parts:
            fmt = QTextCharFormat()
            if part.kind in PART_COLORS:
                fmt.setBackground(QColor(PART_COLORS[part.kind]))
            cursor.insertText(part.text, fmt)
        self.prompt_view.moveCursor(QTextCursor.MoveOperation.Start)
        k = len(self.examples())
        shot = {0: "zero-shot", 1: "one-shot"}.get(k, f"{k}-shot (few-shot)")
        if built.n_tokens is None:
            self.token_label.setText(f"{shot}; {len(built.text)} characters (the endpoint counts its own tokens)")
        else:
            colour = "#1b5e20" if built.fits else "#b00020"
            extra = "" if built.fits else " — too long: remove examples"
            self.token_label.setText(
                f"{shot}; <span style='color:{colour}'><b>{built.n_tokens}</b> tokens of {built.context_length}"
                f"{extra}</span>"
            )
        return built

    # ------------------------------------------------------------ generation

    def _settings(self) -> Any:
        from explorer.core.prompting.generation import GenerationSettings

        stops = [s.replace("\\n", "\n") for s in self.stop_edit.text().split("|") if s]
        return GenerationSettings(
            max_new_tokens=self.max_tokens_spin.value(), do_sample=self.sample_check.isChecked(),
            temperature=self.temperature_spin.value(), top_k=self.top_k_spin.value(), top_p=self.top_p_spin.value(),
            stop=stops, seed=self.seed_spin.value(), top_n=10,
        )

    def _busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.score_button.setEnabled(not busy and bool(self.task and self.task.labels))
        self.cancel_button.setEnabled(busy)

    def run_generation(self) -> None:
        try:
            backend = self.backend()
            built = self.build()
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
        q = self.query()
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
        if self.task is None or not self.task.labels:
            return
        try:
            backend = self.backend()
            built = self.build()
        except ExplorerError as err:
            self.ctx.error(str(err))
            return
        options = [built.answer_prefix + label for label in self.task.labels]
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
        q = self.query()
        verdict = ""
        if q.output:
            ok = res.prediction.strip().lower() == q.output.strip().lower()
            verdict = "  ✓ correct" if ok else f"  ✗ expected {q.output!r}"
        self.output_view.setPlainText("\n".join(lines) + f"\n\nprediction: {res.prediction.strip()}{verdict}")
        self.output_status.setText(f"Picked {res.prediction.strip()!r} by per-token log-probability.{verdict}")
        self.dist_chart.set_spec(score_chart(res))

    # ------------------------------------------------------------ sweep

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
                box.setChecked(name == self.model_picker.current_name() or not self.sweep_model_checks)
                self.sweep_model_checks[name] = box
                self.sweep_models_row.addWidget(box)

    def sweep_models(self) -> list[str]:
        """The ticked models, in the order they were loaded; the prompt's model when none is ticked."""
        ticked = [n for n, box in self.sweep_model_checks.items() if box.isChecked()]
        current = self.model_picker.current_name()
        return ticked or ([current] if current else [])

    def sweep_backends(self) -> list[Any]:
        """The backends the sweep runs on: the endpoint, or every ticked local model."""
        from explorer.core.prompting.backends import LocalBackend

        if self.backend_combo.currentIndex() == 1:
            return [self.backend()]
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
        draws, limit, seed = self.sweep_draws_spin.value(), self.sweep_limit_spin.value(), self.seed_spin.value()
        # Chat format only where a model has a chat template: a base model (gemma3) is always prompted raw.
        mode, chat = self.sweep_mode.currentData(), self.chat_check.isChecked()

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
        if self.task is None:
            raise ExplorerError("Choose a task first.")
        t = self.task
        return Task(t.name, t.title, self._template(), t.items, t.mode, t.labels, t.max_new_tokens, t.stop, t.source, t.note)

    def _on_sweep_point(self, name: str, task: Task, point: Any) -> None:
        from explorer.core.prompting.sweep import SweepResult

        live = self.sweeps.get(name)
        if live is None or getattr(live, "_complete", True):
            mode = self.sweep_mode.currentData() or task.mode
            lm = self.ctx.models.loaded.get(name)
            card = lm.card if lm is not None and self.backend_combo.currentIndex() == 0 else None
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
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf)
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

    def _key_env_name(self) -> str:
        """The variable name to save; never the field's text when that looks like a key itself."""
        text = self.key_env_edit.text().strip()
        return text if is_env_var_name(text) else DEFAULT_KEY_ENV

    def _check_key_env(self) -> None:
        text = self.key_env_edit.text().strip()
        if text and not is_env_var_name(text):
            self.key_env_edit.setText(DEFAULT_KEY_ENV)
            self.ctx.error(
                "That field takes the NAME of an environment variable, not the key itself, so what you pasted was "
                f"cleared and not saved. Put the key in a variable (export {DEFAULT_KEY_ENV}=…) or the system "
                "keyring, and type the variable's name here."
            )

    # ------------------------------------------------------------ state

    def state_dict(self) -> dict:
        s = PromptingState(
            task=self.task.name if self.task else "addition", shots=self.shots_spin.value(), seed=self.seed_spin.value(),
            chat=self.chat_check.isChecked(), backend="http" if self.backend_combo.currentIndex() else "local",
            model=self.model_picker.current_name() or "", base_url=self.url_edit.text(),
            http_model=self.http_model_edit.text(), api_key_env=self._key_env_name(),
            description=self.description_edit.text(), template=self.template_edit.text(),
            examples=[e.to_dict() for e in self.examples()], query=self.query().to_dict(),
            max_new_tokens=self.max_tokens_spin.value(), sample=self.sample_check.isChecked(),
            temperature=self.temperature_spin.value(), top_k=self.top_k_spin.value(), top_p=self.top_p_spin.value(),
            stop=self.stop_edit.text(), sweep_shots=self.sweep_shots_edit.text(),
            sweep_draws=self.sweep_draws_spin.value(), sweep_limit=self.sweep_limit_spin.value(),
        )
        return state_to_dict(s)

    def restore_state(self, data: dict) -> None:
        s = state_from_dict(PromptingState, data)
        self.backend_combo.setCurrentIndex(1 if s.backend == "http" else 0)
        self.url_edit.setText(s.base_url)
        self.http_model_edit.setText(s.http_model)
        self.key_env_edit.setText(s.api_key_env if is_env_var_name(s.api_key_env) else DEFAULT_KEY_ENV)
        if s.model:
            self.model_picker.select(s.model)
        self.seed_spin.setValue(s.seed)
        self.shots_spin.setValue(s.shots)
        self.chat_check.setChecked(s.chat)
        if s.task in BUILTIN:
            self.set_task(s.task)
        self.max_tokens_spin.setValue(s.max_new_tokens)
        self.sample_check.setChecked(s.sample)
        self.temperature_spin.setValue(s.temperature)
        self.top_k_spin.setValue(s.top_k)
        self.top_p_spin.setValue(s.top_p)
        self.stop_edit.setText(s.stop)
        self.sweep_shots_edit.setText(s.sweep_shots)
        self.sweep_draws_spin.setValue(s.sweep_draws)
        self.sweep_limit_spin.setValue(s.sweep_limit)
        if s.template:
            self.template_edit.setText(s.template)
        self.description_edit.setText(s.description)
        if s.examples or s.query:
            def ex(d: dict) -> Example:
                d = dict(d)
                answers = d.pop("answers", [])
                return Example({k: str(v) for k, v in d.items() if k != OUTPUT_FIELD}, str(d.get(OUTPUT_FIELD, "")),
                               list(answers))
            self.set_examples([ex(d) for d in s.examples if isinstance(d, dict)], ex(s.query) if s.query else None)
        self.rebuild_prompt()
