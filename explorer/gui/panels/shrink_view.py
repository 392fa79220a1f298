"""The Models panel's *Smaller models* tab: int8 quantisation against float32, attention heads pruned against
accuracy, and distillation (a model's lineage from its card, and a student beside a bigger model), each measured
in one run by the core functions ``lm-explorer shrink`` runs (``core.tuning.quantize``, ``prune``, ``distill`` and
``core.models.lineage``)."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core.models.format import human_bytes
from explorer.gui.widgets.chart import ChartWidget
from explorer.gui.widgets.flow import FlowLayout
from explorer.gui.widgets.model_picker import ModelPicker


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A small HTML table for a QLabel."""
    cells = "".join(f"<th align='right'>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td align='right'>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table cellspacing='6'><tr>{cells}</tr>{body}</table>"


def quantize_html(r) -> str:
    """The figures of a :class:`QuantizeResult` as the view shows them."""
    f, q = r.float32, r.int8
    rows = [
        ["in memory", human_bytes(f.bytes_in_memory), human_bytes(q.bytes_in_memory),
         f"{q.bytes_in_memory / max(f.bytes_in_memory, 1):.2f}"],
        ["on disk", human_bytes(f.bytes_on_disk), human_bytes(q.bytes_on_disk), f"{r.size_ratio:.2f}"],
        ["time per input", f"{f.seconds_per_input * 1000:.1f} ms", f"{q.seconds_per_input * 1000:.1f} ms",
         f"{q.seconds_per_input / max(f.seconds_per_input, 1e-12):.2f}"],
    ]
    changes = "".join(f"<li><b>{v:.3f}</b> {html.escape(r.explain.get(k, k))}</li>" for k, v in r.agreement.items())
    return (f"<b>{html.escape(r.model)}</b> ({r.kind}), {r.inputs} held-out input(s), engine {r.engine}, "
            f"{r.threads} thread(s); {q.int8_linear} Linear layers int8, {q.float_linear} left float32."
            + _table(["", "float32", "int8", "int8 / float32"], rows) + f"<ul>{changes}</ul>"
            + f"<small>{html.escape(r.method)}</small>")


def prune_html(r) -> str:
    rows = [[str(s.removed), str(s.heads_left), f"{s.parameters / 1e6:.2f} M", f"{s.accuracy:.3f}",
             f"{s.random_accuracy:.3f}", f"{s.reverse_accuracy:.3f}"] for s in r.steps]
    return (f"<b>{html.escape(r.model)}</b>, frozen fine-tune on {html.escape(r.data)}: {r.train_rows} training / "
            f"{r.val_rows} held-out rows; majority class {r.majority_baseline:.3f}. Pruned heads against the same "
            f"heads gated to 0: largest logit difference {r.check.get('max_logit_difference', float('nan')):.1e}."
            + _table(["heads removed", "left", "encoder parameters", "accuracy", "random order",
                     "most important first"], rows)
            + f"<small>{html.escape(r.rule)}</small>")


def lineage_html(line) -> str:
    steps = "".join(f"<li>{html.escape(s.relation)} <b>{html.escape(s.name)}</b> <small>({html.escape(s.source)})"
                    "</small></li>" for s in line.steps)
    return f"<b>{html.escape(line.model)}</b>: {html.escape(line.summary)}<ul>{steps}</ul>"


def distill_html(c) -> str:
    s, t = c.student, c.teacher
    rows = [["layers × hidden", f"{s.layers} × {s.hidden}", f"{t.layers} × {t.hidden}", ""],
            ["parameters", f"{s.parameters / 1e6:.1f} M", f"{t.parameters / 1e6:.1f} M",
             f"{s.parameters / max(t.parameters, 1):.2f}"],
            ["on disk", human_bytes(s.bytes_on_disk), human_bytes(t.bytes_on_disk),
             f"{s.bytes_on_disk / max(t.bytes_on_disk, 1):.2f}"],
            ["time per sentence", f"{s.seconds_per_input * 1000:.1f} ms", f"{t.seconds_per_input * 1000:.1f} ms",
             f"{s.seconds_per_input / max(t.seconds_per_input, 1e-12):.2f}"],
            ["frozen probe accuracy", f"{s.probe_accuracy:.3f}", f"{t.probe_accuracy:.3f}", ""]]
    return (f"{c.inputs} held-out sentences, {c.threads} thread(s); probe accuracy on {c.val_rows} held-out "
            "sentiment rows." + _table(["", s.name, t.name, "ratio"], rows))


def _result_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    return label


def _page(controls: list[QWidget], text: QLabel, chart: ChartWidget, above: QLabel | None = None,
          more: tuple[QWidget, ...] = ()) -> QWidget:
    """Controls that wrap onto more lines in a narrow window, then the figures (scrolling) and the chart, split."""
    page = QWidget()
    row = FlowLayout()
    for w in controls:
        row.addWidget(w)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(text)
    split = QSplitter(Qt.Orientation.Vertical)
    split.addWidget(scroll)
    split.addWidget(chart)
    for w in more:
        split.addWidget(w)
    split.setSizes([200, 300] + [300] * len(more))
    v = QVBoxLayout(page)
    if above is not None:
        v.addWidget(above)
    v.addLayout(row)
    v.addWidget(split, 1)
    return page


class ShrinkView(QWidget):
    """Three measured ways to a smaller model, one tab each."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.quantize_result = self.prune_result = self.distill_result = None
        self.tabs = QTabWidget()
        self.tabs.addTab(self._quantize_page(), "int8 quantisation")
        self.tabs.addTab(self._prune_page(), "Head pruning")
        self.tabs.addTab(self._distill_page(), "Distillation")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)

    def state_dict(self) -> dict:
        """The view's settings, saved with the Models panel's."""
        return {"shrink_tab": self.tabs.currentIndex(), "prune_data": self.p_data.currentText(),
                "prune_step": self.p_step.value()}

    def restore_state(self, data: dict) -> None:
        if isinstance(data.get("shrink_tab"), int) and 0 <= data["shrink_tab"] < self.tabs.count():
            self.tabs.setCurrentIndex(data["shrink_tab"])
        if isinstance(data.get("prune_data"), str) and self.p_data.findText(data["prune_data"]) >= 0:
            self.p_data.setCurrentText(data["prune_data"])
        if isinstance(data.get("prune_step"), int):
            self.p_step.setValue(data["prune_step"])

    # ------------------------------------------------------------ quantisation

    def _quantize_page(self) -> QWidget:
        self.q_model = ModelPicker(self.ctx, kinds=("encoder", "decoder"))
        self.q_run = QPushButton("Measure int8")
        self.q_run.setToolTip("Quantise a copy of the model (every Linear layer to int8) and run both on the same "
                              "held-out inputs; SmolLM2 takes a minute or two")
        self.q_run.clicked.connect(self.run_quantize)
        self.q_text = _result_label()
        self.q_text.setText("An encoder is measured on the held-out sentiment sentences (cosine of the sentence "
                            "vectors, the frozen probe's accuracy, fill-mask overlap for minilm-mlm); a decoder on "
                            "the bundled long sample (next-token agreement, perplexity).")
        self.q_chart = ChartWidget(title="float32 against int8")
        self.q_sweep = QPushButton("K-shot sweep, int8 and float32")
        self.q_sweep.setToolTip("A decoder only: GPT-3's few-shot accuracy (built-in qa task, 20 items, K = 0, 1, 4) "
                                "of the model and of its int8 copy, on the same items; several minutes on a CPU")
        self.q_sweep.clicked.connect(self.run_sweep)
        self.q_sweep_chart = ChartWidget(title="K-shot accuracy: float32 against int8")
        self.sweep_results = None
        return _page([QLabel("Model"), self.q_model, self.q_run, self.q_sweep], self.q_text, self.q_chart,
                     more=(self.q_sweep_chart,))

    def run_sweep(self, shots: str = "0,1,4", limit: int = 20) -> None:
        lm = self.q_model.current_model()
        if lm is None or "causal-lm" not in lm.heads:
            self.ctx.error("Choose a loaded decoder (smollm2) for the K-shot sweep.")
            return
        from explorer.core.prompting.int8_sweep import int8_sweep

        self.q_sweep.setEnabled(False)
        self.ctx.runner.submit(int8_sweep, lm, "qa", shots, limit=limit, label=f"K-shot sweep, int8 and float32: "
                               f"{lm.name}", on_result=self.show_sweep, on_error=self.ctx.error,
                               on_finished=lambda: self.q_sweep.setEnabled(True))

    def show_sweep(self, results: list) -> None:
        from explorer.core.prompting.sweep import sweep_chart

        self.sweep_results = results
        self.q_sweep_chart.set_spec(sweep_chart(results, title=f"{results[0].model}: K-shot {results[0].task}, "
                                                               "float32 against int8"))

    def run_quantize(self) -> None:
        lm = self.q_model.current_model()
        if lm is None:
            self.ctx.error("Load MiniLM or SmolLM2 in the model list first.")
            return
        from explorer.core.tuning.quantize import compare_int8

        self.q_run.setEnabled(False)
        self.ctx.runner.submit(compare_int8, lm, label=f"int8 against float32: {lm.name}",
                               on_result=self.show_quantize, on_error=self.ctx.error,
                               on_finished=lambda: self.q_run.setEnabled(True))

    def show_quantize(self, result) -> None:
        from explorer.core.tuning.quantize import quantize_chart

        self.quantize_result = result
        self.q_text.setText(quantize_html(result))
        self.q_chart.set_spec(quantize_chart(result))

    # ------------------------------------------------------------ pruning

    def _prune_page(self) -> QWidget:
        from explorer.core.io.bundled_data import bundled_sets

        self.p_model = ModelPicker(self.ctx, kinds=("encoder",))
        self.p_data = QComboBox()
        self.p_data.addItems([s for s in ("sentiment", "entailment") if s in bundled_sets()])
        self.p_step = QSpinBox()
        self.p_step.setRange(1, 100)
        self.p_step.setValue(6)
        self.p_step.setToolTip("Heads removed between two measurements")
        self.p_run = QPushButton("Prune heads")
        self.p_run.setToolTip("A frozen fine-tune on the data, then heads removed step by step (about a minute)")
        self.p_run.clicked.connect(self.run_prune)
        self.p_text = _result_label()
        self.p_text.setText("A frozen fine-tune (the encoder's sentence vector and a linear head) on the data, then "
                            "attention heads removed least important first (Michel et al. 2019), at random and most "
                            "important first; "
                            "accuracy on the held-out rows after each step.")
        self.p_chart = ChartWidget(title="Accuracy against heads removed")
        return _page([QLabel("Model"), self.p_model, QLabel("Data"), self.p_data, QLabel("Step"), self.p_step,
                      self.p_run], self.p_text, self.p_chart)

    def run_prune(self) -> None:
        lm = self.p_model.current_model()
        if lm is None:
            self.ctx.error("Load MiniLM (or another BERT-style encoder) in the model list first.")
            return
        from explorer.core.tuning.prune import prune_sweep

        self.p_run.setEnabled(False)
        self.ctx.runner.submit(prune_sweep, lm, self.p_data.currentText(), self.p_step.value(),
                               label=f"Pruning heads of {lm.name}", on_result=self.show_prune,
                               on_error=self.ctx.error, on_finished=lambda: self.p_run.setEnabled(True))

    def show_prune(self, result) -> None:
        from explorer.core.tuning.prune import prune_chart

        self.prune_result = result
        self.p_text.setText(prune_html(result))
        self.p_chart.set_spec(prune_chart(result))

    # ------------------------------------------------------------ distillation

    def _distill_page(self) -> QWidget:
        self.d_model = ModelPicker(self.ctx, kinds=("encoder", "decoder"))
        self.d_model.modelChanged.connect(lambda _n: self.show_lineage())
        self.d_lineage = _result_label()
        self.d_teacher = ModelPicker(self.ctx, kinds=("encoder",))
        self.d_folder = QPushButton("Load a folder…")
        self.d_folder.setToolTip("Load a BERT-base-sized Hugging Face folder to compare with")
        self.d_folder.clicked.connect(self.choose_folder)
        self.d_run = QPushButton("Compare")
        self.d_run.clicked.connect(self.run_distill)
        self.d_text = _result_label()
        self.d_text.setText("Compare the model with a bigger encoder: parameters, bytes, time per sentence and the "
                            "frozen probe's accuracy on the same held-out sentences.")
        self.d_chart = ChartWidget(title="Student against a bigger model")
        self.show_lineage()
        return _page([QLabel("Model"), self.d_model, QLabel("Bigger model"), self.d_teacher, self.d_folder,
                      self.d_run], self.d_text, self.d_chart, above=self.d_lineage)

    def show_lineage(self) -> None:
        """The chosen model's lineage, read from its card (no weights needed)."""
        name = self.d_model.current_name()
        if not name:
            self.d_lineage.setText("Load a model to read where it comes from (MiniLM is itself distilled).")
            return
        from explorer.core.io.errors import ExplorerError
        from explorer.core.models.lineage import lineage

        lm = self.ctx.models.get(name)
        try:
            self.d_lineage.setText(lineage_html(lineage(lm.entry if lm is not None else name)))
        except ExplorerError as err:
            self.d_lineage.setText(html.escape(str(err)))

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a BERT-base-sized model folder")
        if folder:
            self.load_teacher(folder)

    def load_teacher(self, folder: str) -> None:
        from explorer.core.io.errors import ExplorerError
        from explorer.core.models import catalog

        try:
            entry = catalog.add_user_folder(folder)
        except ExplorerError as err:
            self.ctx.error(str(err))
            return
        self.ctx.models.load(entry.name, on_done=lambda lm: self.d_teacher.select(lm.name))

    def run_distill(self) -> None:
        student, teacher = self.d_model.current_model(), self.d_teacher.current_model()
        if student is None or teacher is None or student is teacher:
            self.ctx.error("Choose two different loaded encoders: the model (e.g. minilm) and a bigger one.")
            return
        from explorer.core.tuning.distill import compare_models

        self.d_run.setEnabled(False)
        self.ctx.runner.submit(compare_models, student, teacher, label=f"{student.name} against {teacher.name}",
                               on_result=self.show_distill, on_error=self.ctx.error,
                               on_finished=lambda: self.d_run.setEnabled(True))

    def show_distill(self, comparison) -> None:
        from explorer.core.tuning.distill import distill_chart

        self.distill_result = comparison
        self.d_text.setText(distill_html(comparison))
        self.d_chart.set_spec(distill_chart(comparison))
