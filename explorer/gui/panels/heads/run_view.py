"""The run view: a task head run on the chosen model (one class out, a class per token, a span copied from the
input, filled masks, a sequence out), each result drawn on its own page, and the model scored on a labelled file.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from explorer.core.io.paths import data_dir, resources_dir
from explorer.core.models.tokens import show_token
from explorer.core.tuning import head_results as R
from explorer.core.tuning import heads as H
from explorer.gui.panels.heads.evaluation_view import EvaluationView
from explorer.gui.widgets.chart import ChartWidget
from explorer.gui.widgets.flow import FlowLayout
from explorer.gui.widgets.model_picker import ModelPicker

EVAL_VIEW = 5
# The result view of each task (the stack's pages), shown empty when the task is chosen.
TASK_VIEWS = {"classify": 0, "pair": 0, "tokens": 1, "qa": 2, "fill-mask": 3, "generate": 4}
INPUT_LABELS = {"text": ("Text", ""), "pair": ("Sentence A", "Sentence B"), "qa": ("Question", "Context")}
EXAMPLES = {
    "classify": ("What a wonderful, moving film.", ""),
    "pair": ("A man is playing a guitar on a stage.", "A person is making music."),
    "tokens": ("Angela Merkel met Li Wei in Berlin.", ""),
    "qa": ("Where does John live?", "John Smith lives in Paris and works at Google in Berlin."),
    "fill-mask": ("Paris is the [MASK] of France.", ""),
    "generate": ("The capital of France is", ""),
}


class RunView(QWidget):
    """Model and task, the inputs the task takes, Run / Cancel / Evaluate, and the result's page."""

    wantsShown = Signal()  # a model folder is being opened here: the panel shows this view

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.result = None
        self._result_model: str | None = None  # the model and task the shown result came from
        self._result_task: str | None = None
        self._run_for: tuple[str | None, str | None] = (None, None)
        self._job = None
        self.wanted_task = ""  # chosen when the model offers it (a restored session's task)
        self.picker = ModelPicker(self.ctx)
        self.picker.modelChanged.connect(self._model_chosen)
        self.task_combo = QComboBox()
        self.task_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.task_combo.currentIndexChanged.connect(self._task_chosen)
        open_button = QPushButton("Open model folder…")
        open_button.setToolTip("A fine-tuned model folder (full model, or an adapter folder)")
        open_button.clicked.connect(self._open_model_folder)
        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(lambda: self._job and self._job.cancel())
        self.eval_button = QPushButton("Evaluate on a file…")
        self.eval_button.setToolTip("Score the model on a labelled CSV / TSV / JSONL: accuracy, per-class F1, "
                                    "confusion matrix")
        self.eval_button.clicked.connect(self._evaluate_clicked)
        top = FlowLayout()
        for w in (QLabel("Model"), self.picker, open_button, QLabel("Task"), self.task_combo):
            top.addWidget(w)
        top.addStretch(1)
        top.addWidget(self.run_button)
        top.addWidget(self.cancel_button)
        top.addWidget(self.eval_button)

        self.label1 = QLabel("Text")
        self.label2 = QLabel("Sentence B")
        self.edit1 = QPlainTextEdit()
        self.edit2 = QPlainTextEdit()
        for e in (self.edit1, self.edit2):
            e.setMaximumHeight(70)
        self.example_button = QPushButton("Example")
        self.example_button.clicked.connect(self._fill_example)
        self.top_k = QSpinBox()
        self.top_k.setRange(1, 20)
        self.top_k.setValue(5)
        self.max_answer = QSpinBox()
        self.max_answer.setRange(1, 100)
        self.max_answer.setValue(30)
        self.max_new = QSpinBox()
        self.max_new.setRange(1, 400)
        self.max_new.setValue(30)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.options = FlowLayout()
        self._opt_widgets = {}
        for key, label, w in (("top_k", "Candidates", self.top_k), ("max_answer", "Longest answer (tokens)", self.max_answer),
                              ("max_new", "New tokens", self.max_new), ("temperature", "Temperature", self.temperature)):
            lab = QLabel(label)
            self.options.addWidget(lab)
            self.options.addWidget(w)
            self._opt_widgets[key] = (lab, w)
        self.options.addStretch(1)
        self.options.addWidget(self.example_button)
        inputs = QFormLayout()
        inputs.addRow(self.label1, self.edit1)
        inputs.addRow(self.label2, self.edit2)

        self.run_note = QLabel("Load a model with a task head (or fine-tune one in the Fine-tune lab), pick a task, press Run.")
        self.run_note.setWordWrap(True)
        self.run_note.setStyleSheet("color: #555;")

        self.views = QStackedWidget()
        self.views.addWidget(self._build_class_view())
        self.views.addWidget(self._build_tokens_view())
        self.views.addWidget(self._build_qa_view())
        self.views.addWidget(self._build_fill_view())
        self.views.addWidget(self._build_gen_view())
        self.evaluation = EvaluationView(self.ctx)
        self.eval_chart, self.eval_text = self.evaluation.chart, self.evaluation.text
        self.evaluation.evaluated.connect(lambda _result: self.views.setCurrentIndex(EVAL_VIEW))
        self.views.addWidget(self.evaluation)

        v = QVBoxLayout(self)
        v.addLayout(top)
        v.addLayout(inputs)
        v.addLayout(self.options)
        v.addWidget(self.run_note)
        v.addWidget(self.views, 1)


    def _build_class_view(self) -> QWidget:
        self.class_chart = ChartWidget(title="Class probabilities")
        self.class_label = QLabel()
        self.class_label.setStyleSheet("font-size: 16px;")
        w = QWidget()
        v = QVBoxLayout(w)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.class_label)
        v.addWidget(self.class_chart, 1)
        return w

    def _build_tokens_view(self) -> QWidget:
        self.tokens_text = QTextBrowser()
        self.tokens_text.setMaximumHeight(150)
        self.tokens_legend = QLabel()
        self.entities = QListWidget()
        self.entities.setMaximumWidth(320)
        self.token_chart = ChartWidget(title="Label per token")
        split = QSplitter()
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(QLabel("Each token coloured by its label (hover for the probability)"))
        lv.addWidget(self.tokens_text)
        lv.addWidget(self.tokens_legend)
        lv.addWidget(self.token_chart, 1)
        split.addWidget(left)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(QLabel("Entities (B-/I- tokens grouped)"))
        rv.addWidget(self.entities)
        split.addWidget(right)
        split.setSizes([700, 260])
        return split

    def _build_qa_view(self) -> QWidget:
        self.qa_text = QTextBrowser()
        self.qa_text.setMaximumHeight(110)
        self.qa_text.setMinimumHeight(90)
        self.spans = QListWidget()
        self.spans.setMaximumWidth(320)
        self.spans.setMaximumHeight(130)
        self.spans.currentRowChanged.connect(self._span_chosen)
        self.qa_curves = ChartWidget(title="Answer start and end probabilities")
        self.qa_matrix = ChartWidget(title="Span scores (start × end)")
        self.qa_matrix.cellClicked.connect(self._cell_clicked)
        top = QHBoxLayout()
        tv = QVBoxLayout()
        tv.addWidget(QLabel("Context with the chosen span highlighted (best span first; click a span or a heatmap cell)"))
        tv.addWidget(self.qa_text)
        top.addLayout(tv, 1)
        sv = QVBoxLayout()
        sv.addWidget(QLabel("Best spans: P(start)·P(end)"))
        sv.addWidget(self.spans)
        top.addLayout(sv)
        charts = QSplitter()
        charts.addWidget(self.qa_curves)
        charts.addWidget(self.qa_matrix)
        charts.setSizes([550, 450])
        w = QWidget()
        v = QVBoxLayout(w)
        v.setContentsMargins(0, 0, 0, 0)
        v.addLayout(top)
        v.addWidget(charts, 1)
        return w

    def _build_fill_view(self) -> QWidget:
        self.fill_text = QTextBrowser()
        self.fill_text.setMaximumHeight(110)
        self.fill_mask_combo = QComboBox()
        # Filled after the view is shown (empty) for the task: it widens to its items ("1 (token 4): city").
        self.fill_mask_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.fill_mask_combo.currentIndexChanged.connect(self._draw_fill)
        self.fill_chart = ChartWidget(title="Candidates")
        w = QWidget()
        v = QVBoxLayout(w)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.fill_text)
        row = QHBoxLayout()
        row.addWidget(QLabel("Mask"))
        row.addWidget(self.fill_mask_combo)
        row.addStretch(1)
        v.addLayout(row)
        v.addWidget(self.fill_chart, 1)
        return w

    def _build_gen_view(self) -> QWidget:
        self.gen_text = QTextBrowser()
        self.gen_text.setStyleSheet("font-size: 14px;")
        return self.gen_text

    # ------------------------------------------------------------ model/task

    def _clear_results(self) -> None:
        """Forget the shown result: it belongs to another model or task than the ones now chosen."""
        if self.result is None:
            return
        self.result = None
        for chart in (self.class_chart, self.token_chart, self.qa_curves, self.qa_matrix, self.fill_chart):
            chart.clear()
        for view in (self.tokens_text, self.qa_text, self.fill_text, self.gen_text):
            view.clear()
        self.class_label.clear()
        self.tokens_legend.clear()
        self.entities.clear()
        self.spans.clear()
        self.fill_mask_combo.clear()

    def _model_chosen(self, _name: str = "") -> None:
        lm = self.picker.current_model()
        if self.result is not None and (lm is None or self._result_model != lm.name):
            self._clear_results()
        tasks = H.tasks_for(lm.heads) if lm is not None else []
        current = self.task_combo.currentData() or self.wanted_task
        self.task_combo.blockSignals(True)
        self.task_combo.clear()
        for t in tasks:
            self.task_combo.addItem(f"{t}: {H.TASK_TITLES[t]}", t)
        if current in tasks:
            self.task_combo.setCurrentIndex(tasks.index(current))
        self.task_combo.blockSignals(False)
        self.run_button.setEnabled(bool(tasks))
        if lm is not None and not tasks:
            extra = lm.card.extra or {}
            self.run_note.setText(
                f"{lm.name} is a bare {lm.kind} with no task head. Fine-tune a head for it in the Fine-tune lab, "
                "or open a fine-tuned model folder." + (" " if not extra else "")
            )
        self._task_chosen()

    def current_task(self) -> str | None:
        return self.task_combo.currentData()

    def _task_chosen(self, *_args) -> None:
        task = self.current_task()
        if self.result is not None and self._result_task != task:
            self._clear_results()
        if self.result is None and task in TASK_VIEWS and self.views.currentIndex() != EVAL_VIEW:
            self.views.setCurrentIndex(TASK_VIEWS[task])  # an empty "Candidates" chart, not "Class probabilities"
        kind = H.TASK_INPUTS.get(task or "classify", "text")
        l1, l2 = INPUT_LABELS[kind]
        self.label1.setText(l1)
        self.label2.setText(l2)
        self.label2.setVisible(bool(l2))
        self.edit2.setVisible(bool(l2))
        self.edit2.setMaximumHeight(110 if kind == "qa" else 70)
        show = {"top_k": task in ("qa", "fill-mask"), "max_answer": task == "qa",
                "max_new": task == "generate", "temperature": task == "generate"}
        for key, (lab, w) in self._opt_widgets.items():
            lab.setVisible(show[key])
            w.setVisible(show[key])
        if task and not self.edit1.toPlainText().strip():
            self._fill_example()

    def _fill_example(self) -> None:
        task = self.current_task() or "classify"
        a, b = EXAMPLES[task]
        lm = self.picker.current_model()
        if task == "fill-mask" and lm is not None and lm.tokenizer.mask_token:
            a = a.replace("[MASK]", lm.tokenizer.mask_token)
        self.edit1.setPlainText(a)
        self.edit2.setPlainText(b)

    def _open_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a model folder", str(data_dir() / "finetuned"))
        if folder:
            self.open_model(folder)

    def open_model(self, folder: str) -> None:
        """Load a model folder (e.g. a fine-tune result) and show it in the run view."""
        self.run_note.setText(f"Loading {folder}…")
        self.wantsShown.emit()

        def done(lm) -> None:
            # The store (and so the picker) knows the model by the folder it was loaded from.
            self.picker.select(folder)
            self._model_chosen()
            self.run_note.setText(f"Loaded {lm.name} ({', '.join(lm.heads) or 'no head'}). Press Run.")

        self.ctx.models.load(folder, on_done=done)

    # ------------------------------------------------------------ run

    def run(self) -> None:
        lm = self.picker.current_model()
        task = self.current_task()
        if lm is None or task is None:
            self.run_note.setText("Load a model with a task head first.")
            return
        text, text2 = self.edit1.toPlainText(), self.edit2.toPlainText()
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.run_note.setText(f"Running {task} on {lm.name}…")
        self._run_for = (lm.name, task)
        on_partial = self._show_partial_generation if task == "generate" else None
        if task == "generate":
            self.views.setCurrentIndex(4)
            self.gen_text.setHtml(f"<span style='color:#777'>{html.escape(text)}</span>")
        self._job = self.ctx.runner.submit(
            H.run_head, lm, task, text, text2 if H.TASK_INPUTS[task] != "text" else None, label=f"{task} head",
            top_k=self.top_k.value(), max_answer_len=self.max_answer.value(), max_new_tokens=self.max_new.value(),
            temperature=self.temperature.value(), on_result=self.show_result, on_error=self.run_note.setText,
            on_partial=on_partial, on_finished=self._run_finished,
            on_cancelled=lambda: self.run_note.setText("Cancelled."),
        )

    def _run_finished(self) -> None:
        self.run_button.setEnabled(self.current_task() is not None)
        self.cancel_button.setEnabled(False)

    def _show_partial_generation(self, text: str) -> None:
        prompt = html.escape(self.edit1.toPlainText())
        self.gen_text.setHtml(f"<span style='color:#777'>{prompt}</span><b>{html.escape(text)}</b>")

    def show_result(self, result) -> None:
        self.result = result
        self._result_model, self._result_task = self._run_for
        if isinstance(result, R.ClassResult):
            self.views.setCurrentIndex(0)
            self.class_chart.set_spec(H.class_chart(result))
            self.class_label.setText(f"<b>{html.escape(result.label)}</b> ({result.scores[result.label]:.0%})")
            self.run_note.setText(f"One class out: {result.model_name}'s head reads {result.reads or 'the text'}; a "
                                  "softmax gives a probability per label (names from the model's id2label).")
        elif isinstance(result, R.TokenResult):
            self.views.setCurrentIndex(1)
            self._show_tokens(result)
        elif isinstance(result, R.QAResult):
            self.views.setCurrentIndex(2)
            self._show_qa(result)
        elif isinstance(result, R.FillMaskResult):
            self.views.setCurrentIndex(3)
            self._show_fill(result)
        else:
            self.views.setCurrentIndex(4)
            prompt = html.escape(result.prompt)
            body = html.escape(result.text).replace("\n", "<br>")
            self.gen_text.setHtml((f"<span style='color:#777'>{prompt}</span>" if result.kind == "causal-lm" else
                                   f"<p style='color:#777'>Input: {prompt}</p>") + f"<b>{body}</b>")
            self.run_note.setText(f"{result.new_tokens} new tokens ({result.kind}; stopped at {result.stopped}).")
        if getattr(result, "truncated", False):
            self.run_note.setText(self.run_note.text() + " The input was longer than the model takes and was truncated.")

    def _show_tokens(self, r: R.TokenResult) -> None:
        parts, pos = [], 0
        for t in r.tokens:
            if t.start < pos:
                continue
            parts.append(html.escape(r.text[pos:t.start]))
            color = H.label_color(t.label, r.labels)
            bg = "transparent" if t.label == "O" else color
            fg = "#222" if t.label == "O" else "white"
            parts.append(f"<span title='{html.escape(show_token(t.token))}: {html.escape(t.label)} {t.score:.2f}' "
                         f"style='background:{bg}; color:{fg}'>{html.escape(r.text[t.start:t.end])}</span>")
            pos = t.end
        parts.append(html.escape(r.text[pos:]))
        self.tokens_text.setHtml(f"<div style='font-size:16px; line-height:150%'>{''.join(parts)}</div>")
        kinds = []
        for lab in r.labels:
            base = lab.split("-", 1)[-1]
            if lab != "O" and base not in [k for k, _ in kinds]:
                kinds.append((base, H.label_color(lab, r.labels)))
        self.tokens_legend.setText("  ".join(f"<span style='background:{c}; color:white'>&nbsp;{html.escape(k)}&nbsp;</span>"
                                             for k, c in kinds) + "  <span style='color:#777'>O = outside</span>")
        self.entities.clear()
        for e in r.entities:
            self.entities.addItem(f"{e.text}  [{e.label}]  {e.score:.2f}")
        if not r.entities:
            self.entities.addItem("(no entities)")
        self.token_chart.set_spec(H.token_chart(r))
        self.run_note.setText("A class per token: the same head is applied at every position. Word pieces after the first "
                              "carry their own prediction; entities group B-/I- tags.")

    def _show_qa(self, r: R.QAResult) -> None:
        self.qa_curves.set_spec(H.qa_curves_chart(r))
        self.qa_matrix.set_spec(H.qa_span_chart(r))
        self.spans.blockSignals(True)
        self.spans.clear()
        for s in r.spans:
            self.spans.addItem(f"{s.score:.3f}  {s.text}")
        self.spans.blockSignals(False)
        self._highlight_span(r.spans[0].start_token if r.spans else None, r.spans[0].end_token if r.spans else None)
        if r.spans:
            self.spans.setCurrentRow(0)
        self.run_note.setText(
            f"Copy from the input: one vector scores every context token as the answer's start, another as its end; "
            f"a span's score is P(start)·P(end), only for end ≥ start and at most {r.max_answer_len} tokens "
            f"(the upper band of the heatmap). Answer: “{r.answer}”.")

    def _highlight_span(self, i: int | None, j: int | None) -> None:
        r = self.result
        if not isinstance(r, R.QAResult):
            return
        ctx = r.context
        if i is None or j is None or j < i:
            self.qa_text.setPlainText(ctx)
            return
        s, e = r.offsets[i][0], r.offsets[j][1]
        score = float(r.span_scores[i, j])
        self.qa_text.setHtml(
            f"<div style='font-size:14px'>{html.escape(ctx[:s])}<span style='background:#ffd54f' "
            f"title='score {score:.4f}'><b>{html.escape(ctx[s:e])}</b></span>{html.escape(ctx[e:])}</div>"
            f"<p style='color:#555'>Tokens {i}–{j}: P(start) {r.start_probs[i]:.3f} × P(end) {r.end_probs[j]:.3f} "
            f"= {score:.4f}</p>")

    def _span_chosen(self, row: int) -> None:
        r = self.result
        if isinstance(r, R.QAResult) and 0 <= row < len(r.spans):
            self._highlight_span(r.spans[row].start_token, r.spans[row].end_token)

    def _cell_clicked(self, row: int, col: int) -> None:
        self._highlight_span(row, col)

    def _show_fill(self, r: R.FillMaskResult) -> None:
        self.fill_mask_combo.blockSignals(True)
        self.fill_mask_combo.clear()
        for i, m in enumerate(r.masks):
            self.fill_mask_combo.addItem(f"{i + 1} (token {m.position}): {m.candidates[0][0]}")
        self.fill_mask_combo.blockSignals(False)
        self.fill_text.setHtml(f"<p style='color:#777'>{html.escape(r.text)}</p><p style='font-size:15px'><b>"
                               f"{html.escape(r.filled)}</b></p>")
        self._draw_fill()
        self.run_note.setText(f"{len(r.masks)} mask(s) filled from one forward pass.")

    def _draw_fill(self, *_args) -> None:
        r = self.result
        if isinstance(r, R.FillMaskResult) and r.masks:
            self.fill_chart.set_spec(H.fill_mask_chart(r, max(0, self.fill_mask_combo.currentIndex())))

    # ------------------------------------------------------------ evaluate on a labelled file

    def _evaluate_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Evaluate on a labelled file", str(resources_dir() / "data"),
                                              "Data (*.csv *.tsv *.jsonl *.json);;All files (*)")
        if path:
            self.evaluate_file(path)

    def evaluate_file(self, path: str) -> None:
        """Score the model chosen in the run view on every row of a labelled file (batched, in the background)."""
        lm = self.picker.current_model()
        if lm is None:
            self.run_note.setText("Load a model with a classification head first.")
            return
        task = self.current_task() if self.current_task() in ("classify", "pair", "tokens") else None
        self.evaluation.evaluate(lm, path, task, self.run_note)
