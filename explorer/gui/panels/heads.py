"""Heads & fine-tuning panel: run every task head of the lecture (one class out, two sentences in, a
class per token, copy a span from the input, fill masks, a sequence out) and fine-tune a head three ways
(frozen encoder, full, LoRA adapters) with the parameters and bytes each stores shown before training.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from explorer.core.io.charts import ChartSpec
from explorer.core.io.errors import ExplorerError
from explorer.core.io.paths import data_dir, resources_dir
from explorer.core.tuning import head_results as R
from explorer.core.tuning import heads as H
from explorer.core.tuning.finetune import DEFAULT_EPOCHS
from explorer.core.tuning.probe import POOLINGS
from explorer.core.tuning.task_model import MODES
from explorer.gui.frames import FrameCoalescer
from explorer.gui.panels.base import Panel, state_from_dict, state_to_dict
from explorer.gui.widgets.chart import ChartWidget
from explorer.gui.widgets.flow import FlowLayout, LayoutFence
from explorer.gui.widgets.model_picker import ModelPicker

DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".ndjson")
PROGRESS_MS = 100  # the fine-tune lab's progress text and bar: redrawn at most this often while a job runs
SAMPLE_SETS = [("Sentiment (one text → class)", "sentiment.csv"), ("Entailment (sentence pair)", "entailment.csv"),
               ("Named entities (class per token)", "ner.jsonl")]
MODE_TEXT = {
    "frozen": "Frozen: the encoder stays fixed, only the head learns",
    "full": "Full: every weight learns",
    "adapter": "Adapter: small LoRA matrices + the head learn",
    "scratch": "Scratch: the same model from random weights",
}
POOLING_TEXT = {"mean": "mean of the tokens", "cls": "the [CLS] vector", "max": "max over the tokens",
                "pooler": "BERT's trained pooler"}
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


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


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


class DataDrop(QWidget):
    """The fine-tune lab's page: accepts a dragged CSV/TSV/JSONL file."""

    def __init__(self, on_file, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._on_file = on_file
        self.setAcceptDrops(True)

    def _paths(self, event) -> list[str]:
        md = event.mimeData()
        return [u.toLocalFile() for u in md.urls() if u.toLocalFile().lower().endswith(DATA_SUFFIXES)] if md.hasUrls() else []

    def dragEnterEvent(self, event) -> None:
        if self._paths(event):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if self._paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = self._paths(event)
        if paths:
            event.acceptProposedAction()
            self._on_file(paths[0])


class HeadsPanel(Panel):
    key = "heads"
    title = "Heads & fine-tuning"
    summary = "Task heads on a pre-trained model, and fine-tuning them frozen, fully, or with adapters."

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.state = HeadsState()
        self.result = None
        self._result_model: str | None = None  # the model and task the shown result came from
        self._result_task: str | None = None
        self._run_for: tuple[str | None, str | None] = (None, None)
        self.ft_result = None
        self.data = None
        self.costs = None
        self._job = None
        self._ft_job = None
        self._plan_key = None
        self._written: dict[str, int] = {}  # mode -> bytes the last run of that mode wrote
        # The lab's live charts: at most one redraw per frame; its progress text ten times a second.
        self._frames = FrameCoalescer(self, intervals={"progress": PROGRESS_MS})
        self.eval_result = None
        self.why_result = None
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_run_tab(), "Run a head")
        self.tabs.addTab(self._build_lab_tab(), "Fine-tune lab")
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        ctx.models.changed.connect(self._models_changed)
        sample = resources_dir() / "data" / SAMPLE_SETS[0][1]
        if sample.is_file():  # the out-of-box demo: the shipped sentiment set is ready to train on
            self.set_data_file(str(sample))
        self._models_changed()

    # ================================================================ run view

    def _build_run_tab(self) -> QWidget:
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
        self.eval_chart, self.eval_text, eval_view = self._build_eval_view()
        self.views.addWidget(eval_view)

        page = QWidget()
        v = QVBoxLayout(page)
        v.addLayout(top)
        v.addLayout(inputs)
        v.addLayout(self.options)
        v.addWidget(self.run_note)
        v.addWidget(self.views, 1)
        return page

    def _build_eval_view(self) -> tuple[ChartWidget, QTextBrowser, QWidget]:
        chart = ChartWidget(title="Confusion matrix")
        text = QTextBrowser()
        text.setMinimumWidth(250)
        split = QSplitter()
        split.addWidget(chart)
        split.addWidget(text)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([600, 300])
        return chart, text, split

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

    # ------------------------------------------------------------ run: model/task

    def _models_changed(self) -> None:
        self._model_chosen(self.picker.current_name() or "")
        if hasattr(self, "ft_picker"):
            self._update_plan()

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
        current = self.task_combo.currentData() or self.state.task
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
        self.tabs.setCurrentIndex(0)

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
        self.state.text, self.state.text2 = text, text2
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
            self.run_note.setText("One class out: the head reads the [CLS] position, a softmax gives a probability per label "
                                  "(names from the model's id2label).")
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
            parts.append(f"<span title='{html.escape(t.token)}: {html.escape(t.label)} {t.score:.2f}' "
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
        self._submit_evaluation(lm, path, self.eval_chart, self.eval_text, self.run_note, view=True)

    def _submit_evaluation(self, lm, path: str, chart: ChartWidget, text: QTextBrowser, note: QLabel,
                           view: bool = False) -> None:
        from explorer.core.tuning.evaluation import confusion_chart, evaluate

        task = self.current_task() if view and self.current_task() in ("classify", "pair", "tokens") else None

        def done(result) -> None:
            self.eval_result = result
            chart.set_spec(confusion_chart(result))
            text.setHtml(_eval_html(result))
            note.setText(f"{lm.name} on {Path(path).name}: accuracy {result.accuracy:.1%}, macro-F1 "
                         f"{result.macro_f1:.3f} over {result.n} rows in {result.seconds:.1f} s. The confusion matrix "
                         "exports from its chart menu.")
            if view:
                self.views.setCurrentIndex(EVAL_VIEW)

        note.setText(f"Evaluating {lm.name} on {Path(path).name}…")
        self.ctx.runner.submit(evaluate, lm, path, task, label="Evaluate", on_result=done, on_error=note.setText)

    # ================================================================ fine-tune lab

    def _build_lab_tab(self) -> QWidget:
        page = DataDrop(self.set_data_file)
        self.data_path = QLineEdit()
        self.data_path.setPlaceholderText("Drag a CSV / TSV / JSONL here, open one, or pick a sample set")
        self.data_path.editingFinished.connect(lambda: self.set_data_file(self.data_path.text()))
        open_data = QPushButton("Open…")
        open_data.clicked.connect(self._open_data)
        self.sample_combo = QComboBox()
        self.sample_combo.addItem("(sample sets)", None)
        for label, name in SAMPLE_SETS:
            self.sample_combo.addItem(label, name)
        self.sample_combo.currentIndexChanged.connect(self._sample_chosen)
        self.ft_task = QComboBox()
        for label, key in (("task from the columns", ""), ("classify", "classify"), ("pair", "pair"), ("tokens", "tokens")):
            self.ft_task.addItem(label, key)
        self.ft_task.currentIndexChanged.connect(lambda *_: self.set_data_file(self.data_path.text()))
        # The path on a line of its own, as wide as the pane: beside the two choosers it showed a dozen characters.
        path_row = QHBoxLayout()
        path_row.addWidget(QLabel("Data"))
        path_row.addWidget(self.data_path, 1)
        path_row.addWidget(open_data)
        row = FlowLayout()
        row.addWidget(self.sample_combo)
        row.addWidget(self.ft_task)
        self.preview = QTableWidget(0, 2)
        self.preview.setMaximumHeight(120)
        self.preview.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.preview.verticalHeader().setVisible(False)
        self.data_note = QLabel("Columns: text[, text_pair], label — or JSONL with tokens and tags.")
        self.data_note.setWordWrap(True)

        self.ft_picker = ModelPicker(self.ctx, kinds=("encoder",))
        self.ft_picker.modelChanged.connect(lambda *_: self._update_plan())
        self.mode_group = QButtonGroup(self)
        # The mode's name on the button, what it does in a wrapping label beside it, across the whole box (in the
        # form's field column each description wrapped three words to a line at 1024 px).
        modes = QVBoxLayout()
        buttons = []
        for i, m in enumerate(MODES):
            name, _sep, what = MODE_TEXT[m].partition(": ")
            rb = QRadioButton(name)
            rb.setToolTip(MODE_TEXT[m])
            rb.setProperty("mode", m)
            self.mode_group.addButton(rb, i)
            buttons.append(rb)
            desc = QLabel(what)
            desc.setWordWrap(True)
            desc.setStyleSheet("color: #555;")
            line = QHBoxLayout()
            line.addWidget(rb)
            line.addWidget(desc, 1)
            modes.addLayout(line)
        widest = max(b.sizeHint().width() for b in buttons)
        for b in buttons:
            b.setMinimumWidth(widest)  # the descriptions start in one column
        self.mode_group.button(0).setChecked(True)
        self.mode_group.idToggled.connect(self._mode_toggled)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(DEFAULT_EPOCHS["frozen"])
        self.epochs_label = QLabel("Rounds")
        self.pooling = QComboBox()
        self.pooling.addItem("the model's own", "")
        for key in POOLINGS:
            self.pooling.addItem(POOLING_TEXT[key], key)
        self.pooling.setToolTip("The sentence vector the frozen head reads")
        self.pooling_label = QLabel("Features")
        self.rule_note = QLabel()
        self.rule_note.setWordWrap(True)
        self.rule_note.setStyleSheet("color: #555;")
        self.seed = QSpinBox()
        self.seed.setRange(0, 99999)
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("automatic")  # the full placeholder was cut at 1024x700
        self.out_edit.setToolTip("Where the fine-tune is saved. Empty: a new folder under the app's data folder. "
                                 "Else a new or empty folder, or an earlier fine-tune (you are asked first; only "
                                 "the app's own files in it are replaced)")
        out_browse = QPushButton("Choose…")
        out_browse.clicked.connect(self._choose_out)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(out_browse)
        self.lab_eval_button = QPushButton("Evaluate on a file…")
        self.lab_eval_button.setEnabled(False)
        self.lab_eval_button.setToolTip("Score the last fine-tune on a labelled test file")
        self.lab_eval_button.clicked.connect(self._lab_evaluate_clicked)
        self.why_button = QPushButton("Why pre-train?")
        self.why_button.setToolTip("Fine-tune the same architecture from pre-trained and from random weights (same "
                                   "data, steps and seed) and draw both")
        self.why_button.clicked.connect(self.compare_scratch)
        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self.train)
        self.ft_cancel = QPushButton("Cancel")
        self.ft_cancel.setEnabled(False)
        self.ft_cancel.clicked.connect(lambda: self._ft_job and self._ft_job.cancel())
        self.open_result = QPushButton("Open result in the run view")
        self.open_result.setEnabled(False)
        self.open_result.clicked.connect(lambda: self.ft_result and self.open_model(self.ft_result.out_dir))
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        settings = QGroupBox("How to fine-tune")
        form = QFormLayout(settings)
        form.addRow("Encoder", self.ft_picker)
        form.addRow(QLabel("Mode"))
        form.addRow(modes)
        form.addRow(self.pooling_label, self.pooling)
        form.addRow(self.epochs_label, self.epochs)
        form.addRow(self.rule_note)
        form.addRow("Seed", self.seed)
        form.addRow("Save in", out_row)
        buttons = FlowLayout()
        for b in (self.train_button, self.ft_cancel, self.open_result, self.lab_eval_button, self.why_button):
            buttons.addWidget(b)
        form.addRow(buttons)
        form.addRow(self.progress)
        self.ft_note = QLabel("")
        self.ft_note.setWordWrap(True)
        form.addRow(self.ft_note)

        self.cost_table = QTableWidget(len(MODES), 4)
        self.cost_table.setHorizontalHeaderLabels(["mode", "trainable", "share", "stored per task"])
        self.cost_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.cost_table.verticalHeader().setVisible(False)
        self.cost_table.verticalHeader().setDefaultSectionSize(22)
        self.cost_table.setFixedHeight(self.cost_table.horizontalHeader().sizeHint().height() + 22 * len(MODES) + 6)
        costs_box = QGroupBox("Before training: what each mode trains and stores per task")
        cv = QVBoxLayout(costs_box)
        cv.addWidget(self.cost_table)
        self.cost_note = QLabel("Pick data and an encoder to see the figures.")
        self.cost_note.setWordWrap(True)
        self.cost_note.setStyleSheet("color: #555;")
        cv.addWidget(self.cost_note)

        self.train_chart = ChartWidget(title="Fine-tuning: loss and validation accuracy")
        self.why_chart = ChartWidget(title="Why pre-train")
        self.lab_eval_chart, self.lab_eval_text, lab_eval_view = self._build_eval_view()
        self.lab_tabs = QTabWidget()
        self.lab_tabs.addTab(self.train_chart, "Training")
        self.lab_tabs.addTab(self.why_chart, "Why pre-train")
        self.lab_tabs.addTab(lab_eval_view, "Evaluation")

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addLayout(path_row)
        lv.addLayout(row)
        lv.addWidget(self.data_note)
        lv.addWidget(self.preview)
        lv.addWidget(costs_box)
        lv.addWidget(self.lab_tabs, 1)
        split = QSplitter()
        split.addWidget(left)
        # Each progress message re-wraps the settings' note; the fence keeps that relayout from the splitter, which
        # repainted the whole lab (charts included) for it.
        split.addWidget(LayoutFence(settings))
        split.setSizes([760, 330])
        v = QVBoxLayout(page)
        v.addWidget(split)
        return page

    def _open_data(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a data set", str(resources_dir() / "data"),
                                              "Data (*.csv *.tsv *.jsonl *.json);;All files (*)")
        if path:
            self.set_data_file(path)

    def _sample_chosen(self, index: int) -> None:
        name = self.sample_combo.itemData(index)
        if name:
            self.ft_task.blockSignals(True)
            self.ft_task.setCurrentIndex(0)
            self.ft_task.blockSignals(False)
            self.set_data_file(str(resources_dir() / "data" / name))

    def set_data_file(self, path: str) -> None:
        """Read, check and preview a data file; recompute the per-mode figures."""
        path = (path or "").strip()
        if not path:
            return
        from explorer.core.tuning.datasets import load_task_data, preview

        self.data_path.setText(path)
        try:
            pv = preview(path, self.ft_task.currentData() or None, n=8)
            self.data = load_task_data(path, self.ft_task.currentData() or None, seed=self.seed.value())
        except ExplorerError as err:
            self.data = None
            self.data_note.setText(f"<span style='color:#b00020'>{html.escape(str(err))}</span>")
            self.preview.setRowCount(0)
            self._update_plan()
            return
        self.state.data_path = path
        cols = list(pv["rows"][0]) if pv["rows"] else []
        self.preview.setColumnCount(len(cols))
        self.preview.setHorizontalHeaderLabels(cols)
        self.preview.setRowCount(len(pv["rows"]))
        for r, row in enumerate(pv["rows"]):
            for c, key in enumerate(cols):
                self.preview.setItem(r, c, QTableWidgetItem(str(row[key])))
        d = self.data
        counts = ", ".join(f"{k} {v}" for k, v in d.label_counts().items())
        self.data_note.setText(
            f"<b>{Path(path).name}</b>: task <b>{d.task}</b>, {len(d.train)} training / {len(d.val)} validation rows "
            f"(seeded split); labels: {html.escape(counts)}. Always answering the most common label scores "
            f"{d.majority_baseline():.0%} — the line to beat." + ("".join(f" {n}" for n in d.notes)))
        self._update_plan()

    def _mode(self) -> str:
        return MODES[max(0, self.mode_group.checkedId())]

    def _mode_toggled(self, _id: int, checked: bool) -> None:
        if checked:
            self.epochs.setValue(DEFAULT_EPOCHS[self._mode()])
            self._mark_mode()
            self._show_mode_settings()

    def _show_mode_settings(self) -> None:
        """Pooling and the stopping rule for the frozen probe; epochs for the gradient modes."""
        frozen = self._mode() == "frozen"
        self.pooling.setVisible(frozen)
        self.pooling_label.setVisible(frozen)
        self.epochs_label.setText("Most rounds" if frozen else "Epochs")
        lm = self.ft_picker.current_model() if hasattr(self, "ft_picker") else None
        own = ""
        if lm is not None and lm.kind == "encoder" and not (lm.card.extra or {}).get("finetune_base"):
            from explorer.core.tuning.task_model import model_pooling

            try:
                name, why = model_pooling(lm)
                own = f"{POOLING_TEXT[name]} ({why})"
                self.pooling.setItemText(0, f"the model's own: {name}")
            except ExplorerError:
                own = ""
        if frozen:
            from explorer.core.tuning.probe import ROUND_ITERATIONS

            self.rule_note.setText(
                f"Features computed once{': ' + own if own else ''}. The head is fitted exactly: "
                f"L-BFGS with scikit-learn's L2 (C = 1), {ROUND_ITERATIONS} iterations a round, until converged "
                "(gradient below 1e-5 or the loss stops changing) or the round limit.")
        else:
            self.rule_note.setText("AdamW for the given epochs; the last epoch's weights are kept.")

    def _choose_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the fine-tune in", str(data_dir() / "finetuned"))
        if folder:
            self.out_edit.setText(folder)

    def _out_folder(self, lm, mode: str) -> Path | None:
        """The folder to save in; asks before replacing an earlier fine-tune, refuses any other non-empty one."""
        from explorer.core.tuning.taskstore import check_out_dir, is_earlier_finetune

        text = self.out_edit.text().strip()
        if not text:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            return data_dir() / "finetuned" / f"{Path(lm.name).name}-{Path(self.data.path).stem}-{mode}-{stamp}"
        try:
            out = check_out_dir(text)
        except ExplorerError as err:
            self.ft_note.setText(str(err))
            return None
        if is_earlier_finetune(out) and not self.confirm_replace(out):
            self.ft_note.setText("Not trained: choose another folder to save in.")
            return None
        return out

    def confirm_replace(self, out: Path) -> bool:
        """Ask before a new fine-tune replaces an earlier one in ``out`` (the user's own files stay)."""
        answer = QMessageBox.question(
            self, "Replace an earlier fine-tune?",
            f"{out} holds an earlier fine-tune. Replace the files the app wrote there? Any other files in the "
            "folder (your notes, charts) are kept.")
        return answer == QMessageBox.StandardButton.Yes

    def _update_plan(self) -> None:
        lm = self.ft_picker.current_model() if hasattr(self, "ft_picker") else None
        if lm is None or self.data is None:
            self.costs = None
            self._fill_costs()
            if lm is None and hasattr(self, "cost_note"):
                self.cost_note.setText("Load an encoder (MiniLM) in the Models panel to fine-tune it.")
            return
        key = (lm.name, self.data.task, tuple(self.data.labels))
        if key == self._plan_key and self.costs is not None:
            return
        self._plan_key = key
        self._written = {}
        from explorer.core.tuning.task_model import plan

        self.ctx.runner.submit(plan, lm, self.data.task, list(self.data.labels), label="Fine-tune figures",
                               on_result=self._plan_done, on_error=self.cost_note.setText)

    def _plan_done(self, costs) -> None:
        self.costs = costs
        self._fill_costs()
        by = {c.mode: c for c in costs}
        self.cost_note.setText(
            f"A full fine-tune stores a whole {_mb(by['full'].stored_bytes)} copy per task; the frozen head stores "
            f"{_mb(by['frozen'].stored_bytes)} and LoRA adapters {_mb(by['adapter'].stored_bytes)} — "
            f"{by['adapter'].stored_bytes / by['full'].stored_bytes:.1%} of it — sharing one encoder. After "
            "training, the row shows the bytes the run wrote.")
        self._show_mode_settings()

    def _fill_costs(self) -> None:
        if not hasattr(self, "cost_table"):
            return
        self.cost_table.clearContents()
        for r, c in enumerate(self.costs or []):
            written = self._written.get(c.mode)
            stored = f"{_mb(written)} written" if written is not None else _mb(c.stored_bytes)
            for col, text in enumerate((c.mode, f"{c.trainable_parameters:,}", f"{c.trainable_fraction:.3%}",
                                        stored)):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.cost_table.setItem(r, col, item)
        self._mark_mode()

    def _mark_mode(self) -> None:
        mode = self._mode()
        for r in range(self.cost_table.rowCount()):
            for c in range(self.cost_table.columnCount()):
                item = self.cost_table.item(r, c)
                if item is not None:
                    f = item.font()
                    f.setBold(MODES[r] == mode)
                    item.setFont(f)

    def train(self) -> None:
        lm = self.ft_picker.current_model()
        if lm is None:
            self.ft_note.setText("Load an encoder in the Models panel first (MiniLM is bundled).")
            return
        if self.data is None:
            self.ft_note.setText("Choose a data set first (drag a file here or pick a sample set).")
            return
        if self.data.seed != self.seed.value():
            self.set_data_file(self.data_path.text())
        from explorer.core.tuning.finetune import finetune

        mode = self._mode()
        out = self._out_folder(lm, mode)
        if out is None:
            return
        self._frames.drop()  # an earlier run's last frames
        self.lab_tabs.setCurrentIndex(0)
        self.train_button.setEnabled(False)
        self.ft_cancel.setEnabled(True)
        self.open_result.setEnabled(False)
        self.train_chart.set_spec(self._empty_live_chart(mode))
        self.ft_note.setText(f"Training {mode} on {lm.name}…")
        self.state.mode, self.state.epochs = mode, self.epochs.value()
        self._ft_job = self.ctx.runner.submit(
            finetune, lm, self.data, mode, label=f"Fine-tune ({mode})", epochs=self.epochs.value(),
            seed=self.seed.value(), pooling=(self.pooling.currentData() or None) if mode == "frozen" else None,
            out_dir=str(out), on_partial=self._train_update, on_result=self._train_done,
            on_progress=self._train_progress, on_error=self._lab_message,
            on_cancelled=lambda: self._lab_message("Cancelled: nothing was saved."), on_finished=self._train_finished,
        )
        self._batch_losses: list[tuple[float, float]] = []

    def _train_progress(self, fraction: float, message: str) -> None:
        self._frames.request("progress", lambda: self._show_progress(fraction, message))

    def _show_progress(self, fraction: float, message: str) -> None:
        # QProgressBar.setValue repaints at once; with updates held, the bar is painted with the note in one
        # pass (each pass also paints what lies under them, the panel's frames down to the settings box).
        self.progress.setUpdatesEnabled(False)
        self.progress.setValue(int(fraction * 1000))
        self.progress.setUpdatesEnabled(True)
        note = self.ft_note
        note.setText(message)
        # While a job runs the note only grows: a one-line message after a two-line one does not shrink the
        # settings, which would move everything below and repaint the whole lab.
        note.setMinimumHeight(max(note.minimumHeight(), note.heightForWidth(note.width())))

    def _lab_message(self, message: str) -> None:
        """A job's last word (error, cancelled): pending live frames first, so none paints over it."""
        self._end_live()
        self.ft_note.setText(message)

    def _end_live(self, stale: str | None = None) -> None:
        """A job ended: its pending live frames are drawn now (``stale``'s dropped: the result replaces it), so none
        paints over the last word, and the note may shrink again."""
        if stale is not None:
            self._frames.drop(stale)
        self._frames.flush()
        self.ft_note.setMinimumHeight(0)

    def _train_update(self, update) -> None:
        self._batch_losses.append((update.x, update.batch_loss))
        if update.epoch_done or update.step % 4 == 0:
            self._frames.request("chart", lambda: self._draw_live(update))

    def _empty_live_chart(self, mode: str) -> ChartSpec:
        """The chart a run starts from. Frozen: the live chart's axes and legend with no points yet, so each
        L-BFGS round only adds points to its lines (drawn in place, not rebuilt)."""
        from explorer.core.tuning.finetune import axis_label, history_chart
        from explorer.core.tuning.finetune_results import EpochReport

        baseline = self.data.majority_baseline()
        if mode != "frozen":
            return history_chart([], None, [], baseline)
        spec = history_chart([EpochReport(1, 0.0, 0.0, 0.0)], 0.0, None, baseline, x_label=axis_label(mode))
        for series in spec.series:
            series.x, series.y = [], []
        return spec

    def _draw_live(self, update) -> None:
        """The live chart as the finished run's chart will be (frozen: loss and accuracy per L-BFGS round)."""
        from explorer.core.tuning.finetune import axis_label, history_chart

        baseline = self.data.majority_baseline() if self.data else None
        if update.mode == "frozen":
            spec = history_chart(update.history, update.initial_val_accuracy, None, baseline,
                                 x_label=axis_label(update.mode))
        else:
            spec = history_chart(update.history, update.initial_val_accuracy, self._batch_losses, baseline)
        self.train_chart.set_spec(spec)

    def _train_done(self, result) -> None:
        self.ft_result = result
        from explorer.core.tuning.finetune import result_chart

        self._end_live(stale="chart")  # the result's chart holds every round: no older frame is drawn first
        self.train_chart.set_spec(result_chart(result))
        self.open_result.setEnabled(True)
        self.lab_eval_button.setEnabled(True)
        self._written[result.mode] = result.stored_bytes
        self._fill_costs()
        what = {"frozen": "the head and a manifest naming the encoder", "adapter": "the LoRA matrices and the head",
                "full": "the whole model", "scratch": "the whole model"}[result.mode]
        conv = "." if result.converged is None else (
            ": the head converged." if result.converged else ": the head did NOT converge.")
        self.ft_note.setText(
            f"Validation accuracy {result.val_accuracy:.0%} (before training {result.initial_val_accuracy:.0%}, "
            f"majority baseline {result.majority_baseline:.0%}) in {result.seconds:.0f} s. Trained "
            f"{result.trainable_parameters:,} parameters; wrote {_mb(result.stored_bytes)} ({what}) to "
            f"{result.out_dir}{conv}" + "".join(f" {n}" for n in result.notes))

    def _train_finished(self) -> None:
        self.train_button.setEnabled(True)
        self.why_button.setEnabled(True)
        self.ft_cancel.setEnabled(False)

    def _lab_evaluate_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Evaluate the fine-tune on a labelled test file",
                                              str(Path(self.data.path).parent if self.data else resources_dir()),
                                              "Data (*.csv *.tsv *.jsonl *.json);;All files (*)")
        if path:
            self.evaluate_finetune(path)

    def evaluate_finetune(self, path: str) -> None:
        """Score the last fine-tune (loaded from the folder it wrote) on a labelled file; draw its confusion matrix."""
        if self.ft_result is None or not self.ft_result.out_dir:
            self.ft_note.setText("Train a model first; then score it on a test file.")
            return
        self.lab_tabs.setCurrentIndex(2)
        self.ft_note.setText(f"Loading {self.ft_result.out_dir}…")
        self.ctx.models.load(self.ft_result.out_dir, on_done=lambda lm: self._submit_evaluation(
            lm, path, self.lab_eval_chart, self.lab_eval_text, self.ft_note))

    def compare_scratch(self) -> None:
        """The lecture's "why pre-train" figure: full fine-tunes from pre-trained and from random weights."""
        lm = self.ft_picker.current_model()
        if lm is None or self.data is None:
            self.ft_note.setText("Choose an encoder and a data set first.")
            return
        from explorer.core.tuning.finetune import compare_scratch, scratch_chart

        epochs = self.epochs.value() if self._mode() != "frozen" else DEFAULT_EPOCHS["full"]
        self._frames.drop()
        self.lab_tabs.setCurrentIndex(1)
        self.train_button.setEnabled(False)
        self.why_button.setEnabled(False)
        self.ft_cancel.setEnabled(True)
        self.ft_note.setText(f"Fine-tuning {lm.name} from its pre-trained weights, then from random weights "
                             f"({epochs} epochs each, seed {self.seed.value()})…")

        def done(pair) -> None:
            pre, scratch = pair
            self.why_result = pair
            self._end_live(stale="why")
            self.why_chart.set_spec(scratch_chart(pre, scratch))
            self.ft_note.setText(
                f"Pre-trained: validation accuracy {pre.val_accuracy:.0%}; from random weights: "
                f"{scratch.val_accuracy:.0%} — same data, {pre.epochs} epochs, learning rate {pre.learning_rate:g}, "
                f"seed {pre.seed} (majority baseline {pre.majority_baseline:.0%}). Nothing was saved.")

        runs: dict[str, tuple[list, list, float | None]] = {}
        baseline = self.data.majority_baseline()

        def update(u) -> None:
            losses, _hist, _init = runs.setdefault(u.mode, ([], [], None))
            losses.append((u.x, u.batch_loss))
            runs[u.mode] = (losses, list(u.history), u.initial_val_accuracy)
            if u.epoch_done or u.step % 4 == 0:
                self._frames.request("why", draw_live)

        def draw_live() -> None:
            from explorer.core.tuning.finetune import comparison_chart

            self.why_chart.set_spec(comparison_chart([runs[m] for m in ("full", "scratch") if m in runs],
                                                     baseline, epochs))

        self._ft_job = self.ctx.runner.submit(
            compare_scratch, lm, self.data, epochs, None, 16, self.seed.value(), label="Why pre-train",
            on_result=done, on_partial=update, on_progress=self._train_progress, on_error=self._lab_message,
            on_cancelled=lambda: self._lab_message("Cancelled."), on_finished=self._train_finished)

    # ================================================================ state

    def state_dict(self) -> dict:
        s = self.state
        s.model = self.picker.current_name() or s.model
        s.task = self.current_task() or s.task
        s.text, s.text2 = self.edit1.toPlainText(), self.edit2.toPlainText()
        s.tab = self.tabs.currentIndex()
        s.mode, s.epochs, s.seed = self._mode(), self.epochs.value(), self.seed.value()
        s.pooling = self.pooling.currentData() or ""
        s.ft_model = self.ft_picker.current_name() or s.ft_model
        s.ft_task = self.ft_task.currentData() or ""
        s.max_new_tokens, s.max_answer_len = self.max_new.value(), self.max_answer.value()
        return state_to_dict(s)

    def restore_state(self, data: dict) -> None:
        s = state_from_dict(HeadsState, data)
        self.state = s
        if s.model:
            self.picker.select(s.model)
        if s.ft_model:
            self.ft_picker.select(s.ft_model)
        self._model_chosen()
        self.edit1.setPlainText(s.text)
        self.edit2.setPlainText(s.text2)
        self.max_new.setValue(s.max_new_tokens)
        self.max_answer.setValue(s.max_answer_len)
        if s.mode in MODES:
            self.mode_group.button(MODES.index(s.mode)).setChecked(True)
        self.epochs.setValue(max(1, s.epochs))
        self.seed.setValue(s.seed)
        self.pooling.setCurrentIndex(max(0, self.pooling.findData(s.pooling)))
        i = self.ft_task.findData(s.ft_task)
        self.ft_task.blockSignals(True)
        self.ft_task.setCurrentIndex(max(0, i))
        self.ft_task.blockSignals(False)
        if s.data_path and Path(s.data_path).is_file():
            self.set_data_file(s.data_path)
        self.tabs.setCurrentIndex(s.tab if 0 <= s.tab < self.tabs.count() else 0)


def _eval_html(r) -> str:
    """The evaluation's figures as a small table (per class, macro-F1, notes)."""
    level = "entity" if r.level == "entity" else "class"
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td align=right>{v['precision']:.2f}</td><td align=right>{v['recall']:.2f}"
        f"</td><td align=right>{v['f1']:.2f}</td><td align=right>{v['support']}</td></tr>"
        for name, v in r.per_class.items())
    over = f"{r.units} words in {r.n} rows" if r.level == "entity" else f"{r.n} rows"
    notes = "".join(f"<p style='color:#a15c00'>{html.escape(n)}</p>" for n in r.notes)
    return (f"<p><b>Accuracy {r.accuracy:.1%}</b> over {over}; macro-F1 <b>{r.macro_f1:.3f}</b>"
            + (" (entity level: exact spans)" if r.level == "entity" else "") + "</p>"
            f"<table cellspacing=4><tr><th align=left>{level}</th><th>P</th><th>R</th><th>F1</th>"
            f"<th>n</th></tr>{rows}</table><p style='color:#555'>P precision, R recall, n gold count</p>{notes}")

