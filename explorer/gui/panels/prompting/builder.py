"""The prompt builder: a task (built-in or a labelled file), K examples drawn with a seed from its pool and a
held-out query in editable tables, the description and template, and the final prompt coloured by part with its
exact token count (GPT-3: demonstrations joined by new lines, label words not ids).
"""

from __future__ import annotations

import html
import random
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.core.io.errors import ExplorerError
from explorer.core.prompting.prompts import (
    OUTPUT_FIELD,
    Example,
    PromptTemplate,
    build_prompt,
    has_chat_template,
)
from explorer.core.prompting.tasks import BUILTIN, Task, builtin_task, load_task_file
from explorer.gui.widgets.flow import FlowLayout

PART_COLORS = {"description": "#e8f0fe", "demo": "#e6f4ea", "query": "#fef7e0", "chat": "#f3e8fd"}


class PromptBuilder(QWidget):
    """The prompt editor; ``task_row`` and ``task_note`` are its header, which the panel lays out above."""

    taskChosen = Signal(object, bool)  # the task now in the editor; True when it replaced another one

    def __init__(self, ctx, tokenizer: Callable[[], Any], context_length: Callable[[], int | None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._tokenizer = tokenizer  # the chosen backend's tokenizer (None for an endpoint)
        self._context_length = context_length
        self.task: Task | None = None
        self.user_tasks: dict[str, Task] = {}
        self._query_index = 0
        self._loading = False
        self._rebuild_timer = QTimer(self, singleShot=True, interval=150)
        self._rebuild_timer.timeout.connect(self.rebuild_prompt)
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
        # The task row and its note sit above the panel's split, across its width (the panel places them).
        self.task_row = FlowLayout()
        self.task_row.addWidget(QLabel("Task"))
        self.task_row.addWidget(self.task_combo)
        self.task_row.addWidget(self.open_button)
        self.task_row.addSpacing(12)
        self.task_row.addWidget(QLabel("K"))
        self.task_row.addWidget(self.shots_spin)
        self.task_row.addWidget(QLabel("seed"))
        self.task_row.addWidget(self.seed_spin)
        self.task_row.addWidget(self.draw_button)
        self.task_row.addWidget(self.chat_check)
        self.task_row.addStretch(1)
        self.task_note = QLabel()
        self.task_note.setWordWrap(True)
        self.task_note.setStyleSheet("color: #555;")
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

        el = QVBoxLayout(self)
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

    # ------------------------------------------------------------ task and examples

    def set_task(self, name: str | None) -> None:
        if not name:
            return
        try:
            task = self.user_tasks[name] if name in self.user_tasks else builtin_task(name, seed=self.seed_spin.value())
        except ExplorerError as err:
            self.ctx.error(str(err))
            return
        switched = self.task is not None and self.task.name != task.name  # the last answer was another task's
        self.task = task
        i = self.task_combo.findData(name)
        if i >= 0 and i != self.task_combo.currentIndex():
            self.task_combo.blockSignals(True)
            self.task_combo.setCurrentIndex(i)
            self.task_combo.blockSignals(False)
        self._loading = True
        self.description_edit.setText(task.template.description)
        self.template_edit.setText(task.template.template.replace("\n", "\\n"))
        self._loading = False
        mode = f"scored by label words: {', '.join(task.labels)}" if task.mode == "score" else "answers generated"
        self.task_note.setText(f"<b>{task.title}</b> — {len(task.items)} items, {mode}. {task.note}")
        self.taskChosen.emit(task, switched)
        self._query_index = 0
        self.draw_examples()

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
        if built.note:
            self.token_label.setText(self.token_label.text() + "<br><span style='color:#b00020'>"
                                     f"{html.escape(built.note)}</span>")
        return built

    # ------------------------------------------------------------ generation
