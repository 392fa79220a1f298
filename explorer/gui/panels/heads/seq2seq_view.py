"""The seq2seq view: the lecture's two designs for "a general sequence out" trained on the same pairs, their
held-out exact match and chrF drawn against steps side by side while they train, and a saved result run on
an input of your own."""

from __future__ import annotations

import html
import time

from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from explorer.core.io.errors import ExplorerError
from explorer.core.io.paths import data_dir, resources_dir
from explorer.core.tuning.seq2seq import DEFAULT_STEPS, DESIGN_TITLES, EVAL_EVERY
from explorer.gui.widgets.chart import ChartWidget
from explorer.gui.widgets.model_picker import ModelPicker


class Seq2SeqView(QWidget):
    """v1 (encoder + decoder from scratch) and v2 (pre-trained decoder + LoRA), trained one after the other on the
    same pairs; the chart holds both curves and exports like every chart."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.results: dict[str, object] = {}
        self.curves: dict[str, object] = {}
        self.out_dirs: dict[str, str] = {}
        self._job = None
        self.data_path = QLineEdit(str(resources_dir() / "data" / "dates.jsonl"))
        self.data_path.setToolTip("JSONL (input, output) or CSV/TSV with those columns; the bundled set turns a date "
                                  "in words into its ISO form")
        self.encoder = ModelPicker(ctx, kinds=("encoder",))
        self.decoder = ModelPicker(ctx, kinds=("decoder",))
        self.steps = {d: QSpinBox() for d in ("v1", "v2")}
        for d, box in self.steps.items():
            box.setRange(1, 100_000)
            box.setValue(DEFAULT_STEPS[d])
        self.eval_every = QSpinBox()
        self.eval_every.setRange(1, 10_000)
        self.eval_every.setValue(EVAL_EVERY)
        self.seed = QSpinBox()
        self.seed.setRange(0, 99999)
        self.train_button = QPushButton("Train v1 and v2")
        self.train_button.clicked.connect(self.train)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(lambda: self._job and self._job.cancel())
        self.note = QLabel("Load MiniLM (encoder) and SmolLM2 (decoder) in the Models panel, then train.")
        self.note.setWordWrap(True)
        self.input = QLineEdit("the first of May nineteen ninety-nine")
        self.generate_buttons = {d: QPushButton(f"Generate with {d}") for d in ("v1", "v2")}
        for d, b in self.generate_buttons.items():
            b.setEnabled(False)
            b.clicked.connect(lambda _=False, d=d: self.generate(d))
        self.output = QLabel("")
        self.output.setWordWrap(True)
        self.chart = ChartWidget(title="Seq2seq: held-out exact match and chrF against steps (v1 vs v2)")

        box = QGroupBox("Two designs, the same pairs")
        form = QFormLayout(box)
        form.addRow("Pairs", self.data_path)
        form.addRow("v1 encoder", self.encoder)
        form.addRow("v2 decoder", self.decoder)
        form.addRow("v1 steps", self.steps["v1"])
        form.addRow("v2 steps", self.steps["v2"])
        form.addRow("Score every", self.eval_every)
        form.addRow("Seed", self.seed)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        form.addRow(buttons)
        form.addRow(self.note)
        form.addRow(QLabel("Run a trained design"))
        form.addRow(self.input)
        gen = QHBoxLayout()
        for b in self.generate_buttons.values():
            gen.addWidget(b)
        form.addRow(gen)
        form.addRow(self.output)
        split = QSplitter()
        split.addWidget(self.chart)
        split.addWidget(box)
        split.setSizes([700, 360])
        layout = QVBoxLayout(self)
        layout.addWidget(split)

    def train(self) -> None:
        """v1 then v2 in one background job; each held-out score is drawn as it comes."""
        from explorer.core.tuning import seq2seq

        enc, dec = self.encoder.current_model(), self.decoder.current_model()
        if enc is None or dec is None:
            self.note.setText("Load an encoder (MiniLM) and a decoder (SmolLM2) in the Models panel first.")
            return
        try:
            data = seq2seq.load_pairs(self.data_path.text().strip(), seed=self.seed.value())
        except ExplorerError as err:
            self.note.setText(f"<span style='color:#b00020'>{html.escape(str(err))}</span>")
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.out_dirs = {d: str(data_dir() / "finetuned" / f"seq2seq-{d}-{stamp}") for d in ("v1", "v2")}
        self.curves, self.results = {}, {}
        self.train_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.note.setText(f"Training {DESIGN_TITLES['v1']}, then {DESIGN_TITLES['v2']}, on {len(data.train)} pairs "
                          f"({len(data.val)} held out)…")
        self._job = self.ctx.runner.submit(
            seq2seq.compare_designs, enc, dec, data, label="Seq2seq v1 vs v2",
            steps={d: self.steps[d].value() for d in ("v1", "v2")}, seed=self.seed.value(),
            eval_every=self.eval_every.value(), out_dirs=self.out_dirs, on_partial=self._update,
            on_result=self._done, on_progress=lambda f, m: self.note.setText(m), on_error=self.note.setText,
            on_cancelled=lambda: self.note.setText("Cancelled."), on_finished=self._finished)

    def _update(self, update) -> None:
        if self.curves.get(update.design) is not None and len(self.curves[update.design].curve) == len(update.curve):
            return
        from explorer.core.tuning.seq2seq import Seq2SeqResult

        self.curves[update.design] = Seq2SeqResult(
            design=update.design, model="", steps=update.steps, learning_rate=0.0, batch_size=0, seed=0,
            train_rows=0, val_rows=0, trainable_parameters=0, total_parameters=0, curve=list(update.curve),
            exact_match=0.0, chrf=0.0, examples=[])
        self._draw(list(self.curves.values()))

    def _draw(self, results: list) -> None:
        from explorer.core.tuning.seq2seq import designs_chart

        self.chart.set_spec(designs_chart(results))

    def _done(self, pair) -> None:
        r1, r2 = pair
        self.results = {"v1": r1, "v2": r2}
        self._draw([r1, r2])
        for b in self.generate_buttons.values():
            b.setEnabled(True)
        self.note.setText(
            f"Held-out exact match / chrF — v1 {r1.exact_match:.0%} / {r1.chrf:.2f} after {r1.steps} steps "
            f"({r1.trainable_parameters:,} parameters trained); v2 {r2.exact_match:.0%} / {r2.chrf:.2f} after "
            f"{r2.steps} steps ({r2.trainable_parameters:,} LoRA parameters). Saved in {r1.out_dir} and {r2.out_dir}.")

    def _finished(self) -> None:
        self.train_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def generate(self, design: str) -> None:
        """Load the saved design and generate from the input line."""
        from explorer.core.tuning.seq2seq import Finetuned, clean_text

        folder = self.out_dirs.get(design)
        if not folder or design not in self.results:
            self.output.setText("Train first.")
            return
        text = self.input.text()

        def run(progress=None, cancel=None):  # noqa: ANN001, ANN202
            return Finetuned(folder, cancel=cancel).generate([clean_text(text)], cancel=cancel)[0]

        self.output.setText(f"Generating with {design}…")
        self.ctx.runner.submit(run, label=f"Generate ({design})",
                               on_result=lambda out: self.output.setText(f"{design}: {html.escape(out)}"),
                               on_error=self.output.setText)
