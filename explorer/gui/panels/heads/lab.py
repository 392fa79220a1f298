"""The fine-tune lab: a labelled data set (dropped, opened or a sample) previewed and checked, what each mode
trains and stores shown before training, a head trained frozen, fully, with LoRA adapters or from scratch with
live charts, the "why pre-train" comparison, and the result scored on a test file.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core.io.charts import ChartSpec
from explorer.core.io.errors import ExplorerError
from explorer.core.io.paths import data_dir, resources_dir
from explorer.core.tuning.finetune import DEFAULT_EPOCHS
from explorer.core.tuning.probe import POOLINGS
from explorer.core.tuning.task_model import MODES
from explorer.gui.frames import FrameCoalescer
from explorer.gui.panels.heads.data_drop import DataDrop
from explorer.gui.panels.heads.evaluation_view import EvaluationView
from explorer.gui.widgets.chart import ChartWidget
from explorer.gui.widgets.flow import FlowLayout, LayoutFence
from explorer.gui.widgets.model_picker import ModelPicker

PROGRESS_MS = 100  # the fine-tune lab's progress text and bar: redrawn at most this often while a job runs
SAMPLE_SETS = [("Sentiment (one text → class)", "sentiment.csv"), ("Entailment (sentence pair)", "entailment.csv"),
               ("Named entities (class per token)", "ner.jsonl"),
               ("Extractive QA (question + context → a span)", "qa.jsonl")]
MODE_TEXT = {
    "frozen": "Frozen: the encoder stays fixed, only the head learns",
    "full": "Full: every weight learns",
    "adapter": "Adapter: small LoRA matrices + the head learn",
    "scratch": "Scratch: the same model from random weights",
}
POOLING_TEXT = {"mean": "mean of the tokens", "cls": "the [CLS] vector", "max": "max over the tokens",
                "pooler": "BERT's trained pooler"}


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


class FineTuneLab(QWidget):
    """Data, the per-mode figures, the settings and the training charts; its page takes dropped data files."""

    openResult = Signal(str)  # "Open result in the run view": the folder the last fine-tune wrote

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.ft_result = None
        self.why_result = None
        self.data = None
        self.loaded_path = ""  # the last data file that read as a labelled set
        self.costs = None
        self._ft_job = None
        self._plan_key = None
        self._written: dict[str, int] = {}  # mode -> bytes the last run of that mode wrote
        # The lab's live charts: at most one redraw per frame; its progress text ten times a second.
        self._frames = FrameCoalescer(self, intervals={"progress": PROGRESS_MS})
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
        for label, key in (("task from the columns", ""), ("classify", "classify"), ("pair", "pair"), ("tokens", "tokens"),
                           ("qa", "qa")):
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
        self.open_result.clicked.connect(lambda: self.ft_result and self.openResult.emit(self.ft_result.out_dir))
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
        self.evaluation = EvaluationView(self.ctx)
        self.lab_eval_chart, self.lab_eval_text = self.evaluation.chart, self.evaluation.text
        self.lab_tabs = QTabWidget()
        self.lab_tabs.addTab(self.train_chart, "Training")
        self.lab_tabs.addTab(self.why_chart, "Why pre-train")
        self.lab_tabs.addTab(self.evaluation, "Evaluation")

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
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(page)

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
        from explorer.core.tuning.squad import looks_like_qa

        self.data_path.setText(path)
        task = self.ft_task.currentData() or None
        if task == "qa" or (task is None and looks_like_qa(path)):
            self._set_qa_file(path)
            return
        try:
            pv = preview(path, task, n=8)
            self.data = load_task_data(path, task, seed=self.seed.value())
        except ExplorerError as err:
            self._data_failed(err)
            return
        self.loaded_path = path
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
        self._show_mode_settings()  # what the frozen head reads depends on the data's task
        self._update_plan()

    def _data_failed(self, err: Exception) -> None:
        """A file that cannot be used: say why in red, show no rows, keep the rest of the lab as it was."""
        self.data = None
        self.data_note.setText(f"<span style='color:#b00020'>{html.escape(str(err))}</span>")
        self.preview.setRowCount(0)
        self._show_mode_settings()  # what the frozen head reads depends on the data's task
        self._update_plan()

    def _set_qa_file(self, path: str) -> None:
        """A SQuAD-style file (question, context, answers): preview it and split it by context."""
        from explorer.core.tuning.squad import load_qa_data

        try:
            self.data = load_qa_data(path, seed=self.seed.value())
        except ExplorerError as err:
            self._data_failed(err)
            return
        self.loaded_path = path
        rows = self.data.examples[:8]
        self.preview.setColumnCount(3)
        self.preview.setHorizontalHeaderLabels(["question", "answer", "context"])
        self.preview.setRowCount(len(rows))
        for r, ex in enumerate(rows):
            for c, text in enumerate((ex.question, " / ".join(ex.answers), ex.context[:120])):
                self.preview.setItem(r, c, QTableWidgetItem(text))
        s = self.data.summary()
        self.data_note.setText(
            f"<b>{Path(path).name}</b>: task <b>qa</b> (a start/end span head), {s['train_rows']} training questions "
            f"on {s['train_contexts']} contexts / {s['val_rows']} validation questions on {s['val_contexts']} other "
            "contexts. Scored with SQuAD exact match and F1; long contexts are read in overlapping windows.")
        self._show_mode_settings()  # what the frozen head reads depends on the data's task
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
        task = self.data.task if self.data is not None else ""
        per_token = task in ("tokens", "qa")  # the head reads every token's vector: no sentence pooling
        self.pooling.setVisible(frozen and not per_token)
        self.pooling_label.setVisible(frozen and not per_token)
        self.epochs_label.setText("Most rounds" if frozen else "Epochs")
        lm = self.ft_picker.current_model() if hasattr(self, "ft_picker") else None
        own = ""
        if per_token:
            own = ("each token's last-layer vector, a label per token" if task == "tokens" else
                   "each token's last-layer vector, scored as an answer's start and end")
        elif lm is not None and lm.kind == "encoder" and not (lm.card.extra or {}).get("finetune_base"):
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
        from explorer.core.tuning.finetune import base_folders
        from explorer.core.tuning.taskstore import check_out_dir, is_earlier_finetune

        text = self.out_edit.text().strip()
        if not text:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            return data_dir() / "finetuned" / f"{Path(lm.name).name}-{Path(self.data.path).stem}-{mode}-{stamp}"
        try:
            out = check_out_dir(text, base_folders(lm))
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

        if self.data.task == "qa":
            from explorer.core.tuning.extractive import plan as qa_plan

            self.ctx.runner.submit(qa_plan, lm, label="Fine-tune figures", on_result=self._plan_done,
                                   on_error=self.cost_note.setText)
            return
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
        qa = self.data.task == "qa"
        if qa and mode == "scratch":
            self.ft_note.setText("Extractive QA trains frozen, full or adapter; scratch is the classifiers' baseline.")
            return
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
        if qa:
            from explorer.core.tuning.extractive import finetune_qa

            kwargs = {"epochs": self.epochs.value() if mode == "frozen" else None}
        else:
            finetune_qa = None
            kwargs = {"epochs": self.epochs.value(),
                      "pooling": (self.pooling.currentData() or None) if mode == "frozen" else None}
        self._ft_job = self.ctx.runner.submit(
            finetune_qa or finetune, lm, self.data, mode, label=f"Fine-tune ({mode})", **kwargs,
            seed=self.seed.value(), out_dir=str(out), on_partial=self._train_update, on_result=self._train_done,
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
        scores = (f"Validation exact match {result.scores['exact_match']:.0%}, F1 {result.scores['f1']:.0%} (F1 before "
                  f"training {result.initial_val_accuracy:.0%})") if result.task == "qa" else None
        self.ft_note.setText(
            f"{scores}. In {result.seconds:.0f} s, trained {result.trainable_parameters:,} parameters; wrote "
            f"{_mb(result.stored_bytes)} to {result.out_dir}{conv}" + "".join(f" {n}" for n in result.notes)
            if scores else
            f"Validation accuracy {result.val_accuracy:.0%} (before training {result.initial_val_accuracy:.0%}, "
            f"majority baseline {result.majority_baseline:.0%}) in {result.seconds:.0f} s. Trained "
            f"{result.trainable_parameters:,} parameters; wrote {_mb(result.stored_bytes)} ({what}) to "
            f"{result.out_dir}{conv}" + "".join(f" {n}" for n in result.notes))

    def show_saved_result(self, result) -> None:
        """The last run as the session kept it: its note, its figures in the table and its curves."""
        self._train_done(result)
        saved = bool(result.out_dir) and Path(result.out_dir).is_dir()
        self.open_result.setEnabled(saved)
        self.lab_eval_button.setEnabled(saved)

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
        self.ctx.models.load(self.ft_result.out_dir,
                             on_done=lambda lm: self.evaluation.evaluate(lm, path, None, self.ft_note))

    def compare_scratch(self) -> None:
        """The lecture's "why pre-train" figure: full fine-tunes from pre-trained and from random weights."""
        lm = self.ft_picker.current_model()
        if lm is None or self.data is None:
            self.ft_note.setText("Choose an encoder and a data set first.")
            return
        if self.data.task == "qa":
            self.ft_note.setText("Why pre-train compares classifiers; choose a classification set for it.")
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
