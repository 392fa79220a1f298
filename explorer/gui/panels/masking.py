"""Masking & objectives panel: what BERT, WWM, ERNIE, SpanBERT, BART, MASS, XLNet, UniLM, ELECTRA and GPT give
the model and ask it to predict, on the shared text, seeded; with the attention mask, a side-by-side comparison
of the masking strategies and statistics over many samples against theory."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from explorer.core.io.charts import ChartSpec
from explorer.core.models import catalog
from explorer.core.models.tokens import show_token
from explorer.core.pretraining.masking import STRATEGIES, STRATEGY_TITLES, MaskParams
from explorer.core.pretraining.objectives import DESCRIPTIONS, OBJECTIVES, TITLES, ObjectiveParams
from explorer.gui.panels.base import Panel, state_from_dict, state_to_dict
from explorer.gui.widgets.chart import ChartWidget
from explorer.gui.widgets.flow import FlowLayout
from explorer.gui.widgets.model_picker import ModelPicker
from explorer.gui.widgets.stale import StaleVeil
from explorer.gui.widgets.token_strip import Legend, TokenStrip

STRATEGY_HELP = {
    "random": "BERT: 15% of the tokens, chosen one by one; of those 80% → [MASK], 10% → a random token, 10% kept.",
    "wwm": "Whole word masking: words (all their pieces) are chosen until the 15% budget is met; never half a word.",
    "phrase": "ERNIE phrase level: spaCy noun phrases are units; each unit (phrase or single word) is chosen with "
    "p = 15% as a whole.",
    "entity": "ERNIE entity level: named entities (people, places, organisations…) are units chosen as a whole.",
    "span": "SpanBERT: span lengths ~ Geometric(p) clipped at 10 words (mean ≈ 3.8), anchored at a word start, "
    "complete words only, until ceil(15%·n) tokens; one 80/10/10 draw per span. SBO predicts each span token "
    "from the two tokens just outside the span.",
}


@dataclass
class MaskingState:
    model: str = ""
    mode: str = "masking"  # "masking" | "objective"
    strategy: str = "span"
    objective: str = "text-infill"
    seed: int = 0
    ratio: float = 0.15
    p_mask: float = 0.8
    p_random: float = 0.1
    geometric_p: float = 0.2
    max_span: int = 10
    poisson_lambda: float = 3.0
    samples: int = 2000
    stream: str = "content"
    tab: int = 0
    mask_from: int = 0
    mask_count: int = 48


# ---------------------------------------------------------------- work done in the job runner's thread


def compute_masking(lm: Any, text: str, strategy: str, seed: int, params: MaskParams,
                    progress: Any = None, cancel: Any = None) -> Any:
    from explorer.core.pretraining.masking import mask_text
    from explorer.core.pretraining.words import tokenize_words

    tt = tokenize_words(lm.tokenizer, text, max_length=lm.max_length)
    return mask_text(tt, lm.tokenizer, strategy, seed=seed, params=params)


def compute_compare(lm: Any, text: str, seed: int, params: MaskParams, progress: Any = None,
                    cancel: Any = None) -> list[Any]:
    from explorer.core.io.progress import check
    from explorer.core.pretraining.masking import mask_text
    from explorer.core.pretraining.words import tokenize_words

    tt = tokenize_words(lm.tokenizer, text, max_length=lm.max_length)
    out = []
    for k, s in enumerate(STRATEGIES):
        check(cancel)
        if progress:
            progress(k / len(STRATEGIES), f"Masking with {s}…")
        out.append(mask_text(tt, lm.tokenizer, s, seed=seed, params=params))
    return out


def compute_stats(lm: Any, text: str, strategy: str, samples: int, seed: int, params: MaskParams,
                  progress: Any = None, cancel: Any = None) -> Any:
    from explorer.core.pretraining.masking import sample_stats
    from explorer.core.pretraining.words import tokenize_words

    tt = tokenize_words(lm.tokenizer, text, max_length=lm.max_length)
    return sample_stats(tt, strategy, samples=samples, seed=seed, params=params, progress=progress, cancel=cancel)


def compute_objective(lm: Any, text: str, kind: str, seed: int, params: ObjectiveParams,
                      progress: Any = None, cancel: Any = None, others: tuple = ()) -> Any:
    """One objective on ``text``; ELECTRA's generator is ``lm`` or another loaded model sharing its vocabulary."""
    from explorer.core.pretraining.objectives import run_objective

    return run_objective(kind, lm.tokenizer, text, seed=seed, params=params, generator=[lm, *others],
                         max_length=lm.max_length, progress=progress, cancel=cancel)


def compute_left_guesses(decoders: list[Any], left: str, progress: Any = None, cancel: Any = None) -> list[Any]:
    """Each causal LM's guesses after the words left of the first masked token (the lecture's contrast)."""
    from explorer.core.pretraining.fillmask import left_context_guesses

    return [left_context_guesses(lm, left, top_k=5) for lm in decoders]


def compute_fill(lm: Any, ids: list[int], input_ids: list[int], positions: list[int],
                 progress: Any = None, cancel: Any = None) -> Any:
    from explorer.core.pretraining.fillmask import fill_masks

    return fill_masks(lm, ids, input_ids, positions, top_k=5, progress=progress, cancel=cancel)


def _strip_box(title: str, strip: TokenStrip) -> QWidget:
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(2)
    label = QLabel(title)
    label.setStyleSheet("font-weight:600;")
    lay.addWidget(label)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(strip)
    scroll.setMinimumHeight(48)
    lay.addWidget(scroll, 1)
    box.title_label = label  # type: ignore[attr-defined]
    return box


class MaskingPanel(Panel):
    key = "masking"
    title = "Masking & objectives"
    state_class = MaskingState
    summary = ("How pre-training corrupts a text: BERT masking (random, whole word, phrase/entity, SpanBERT spans) "
               "and the objectives of XLNet, BART/MASS, UniLM, ELECTRA and GPT.")

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.state = MaskingState()
        self.result: Any = None  # Masking or ObjectiveResult
        self.compare: list[Any] = []
        self.stats: Any = None
        self.jobs: dict[str, Any] = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self.run)

        # --- row 1: what to show
        self.picker = ModelPicker(ctx)
        self.picker.setToolTip("Its tokenizer cuts the text; for ELECTRA it is also the generator, for fill-mask the predictor")
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("BERT-family masking", "masking")
        self.mode_combo.addItem("Other objectives", "objective")
        self.strategy_combo = QComboBox()
        for s in STRATEGIES:
            self.strategy_combo.addItem(STRATEGY_TITLES[s], s)
        self.objective_combo = QComboBox()
        for k in OBJECTIVES:
            self.objective_combo.addItem(TITLES[k], k)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Every random choice uses this seed: the same seed gives the same picture")
        self.resample_button = QPushButton("Resample")
        self.resample_button.setToolTip("Next seed: another random draw of the same recipe")
        self.resample_button.clicked.connect(self.resample)
        self.run_button = QPushButton("Show")
        self.run_button.clicked.connect(self.run)
        row1 = FlowLayout()
        for w in (QLabel("Model"), self.picker, self.mode_combo, self.strategy_combo, self.objective_combo,
                  QLabel("Seed"), self.seed_spin, self.resample_button, self.run_button):
            row1.addWidget(w)
        row1.addStretch(1)

        # --- row 2: every number of the recipes
        def dspin(lo: float, hi: float, step: float, value: float, tip: str) -> QDoubleSpinBox:
            s = QDoubleSpinBox()
            s.setRange(lo, hi)
            s.setSingleStep(step)
            s.setDecimals(2)
            s.setValue(value)
            s.setToolTip(tip)
            return s

        self.ratio_spin = dspin(0.0, 1.0, 0.05, 0.15, "Share of tokens to mask (ERNIE: chance of each unit)")
        self.mask_spin = dspin(0.0, 1.0, 0.05, 0.8, "Of the chosen tokens: share replaced by the mask token")
        self.random_spin = dspin(0.0, 1.0, 0.05, 0.1, "Of the chosen tokens: share replaced by a random token (the rest is kept)")
        self.p_spin = dspin(0.05, 1.0, 0.05, 0.2, "SpanBERT: geometric p of the span length (paper: 0.2)")
        self.max_span_spin = QSpinBox()
        self.max_span_spin.setRange(1, 50)
        self.max_span_spin.setValue(10)
        self.max_span_spin.setToolTip("SpanBERT: longest span, in words")
        self.lambda_spin = dspin(0.0, 10.0, 0.5, 3.0, "BART text infilling: Poisson λ of the span lengths")
        self.samples_spin = QSpinBox()
        self.samples_spin.setRange(10, 100000)
        self.samples_spin.setValue(2000)
        self.samples_spin.setSingleStep(500)
        self.samples_spin.setToolTip("How many maskings the statistics draw")
        self.stats_button = QPushButton("Sample statistics")
        self.stats_button.clicked.connect(self.run_stats)
        self.fill_button = QPushButton("Fill &masks")
        self.fill_button.setToolTip("Predict every masked token at once (MLM), or from the left only (causal LM)")
        self.fill_button.clicked.connect(self.run_fill)
        row2 = FlowLayout()
        for w in (QLabel("Ratio"), self.ratio_spin, QLabel("→mask"), self.mask_spin, QLabel("→random"),
                  self.random_spin, QLabel("Span p"), self.p_spin, QLabel("max words"), self.max_span_spin,
                  QLabel("Infill λ"), self.lambda_spin, QLabel("Samples"), self.samples_spin, self.stats_button,
                  self.fill_button):
            row2.addWidget(w)
        row2.addStretch(1)

        self.help = QLabel()
        self.help.setWordWrap(True)
        self.help.setStyleSheet("color:#333;")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color:#8a4b00;")
        self.legend = Legend()

        # --- strips: original (what happened), model input vs target side by side
        self.original_strip = TokenStrip()
        self.input_strip = TokenStrip()
        self.target_strip = TokenStrip()
        self.original_box = _strip_box("Original text (tokens; colour = what happens to each)", self.original_strip)
        self.input_box = _strip_box("Model input", self.input_strip)
        self.target_box = _strip_box("Target (what the model must predict)", self.target_strip)
        side = QSplitter(Qt.Orientation.Horizontal)
        side.addWidget(self.input_box)
        side.addWidget(self.target_box)
        strips = QWidget()
        sl = QVBoxLayout(strips)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(self.original_box, 1)
        sl.addWidget(side, 1)

        # --- tabs: attention mask, compare, statistics, fill-mask
        self.tabs = QTabWidget()
        self.attention_chart = ChartWidget(title="Attention mask")
        self.stream_combo = QComboBox()
        self.stream_combo.addItem("content stream", "content")
        self.stream_combo.addItem("query stream", "query")
        self.stream_combo.setToolTip("XLNet has two masks: the query stream may not see its own token")
        att = QWidget()
        al = QVBoxLayout(att)
        al.setContentsMargins(0, 0, 0, 0)
        self.attention_note = QLabel("1 (bright) = the row's position may attend to the column's position.")
        self.attention_note.setWordWrap(True)
        # Zoom: a 145-token mask in a short chart is noise; show a window of positions (all when it fits).
        self.mask_from = QSpinBox()
        self.mask_from.setRange(0, 0)
        self.mask_from.setToolTip("First position shown")
        self.mask_count = QSpinBox()
        self.mask_count.setRange(4, 4096)
        self.mask_count.setValue(48)
        self.mask_count.setToolTip("How many positions the mask shows (zoom)")
        for spin in (self.mask_from, self.mask_count):
            spin.valueChanged.connect(self._draw_attention)
        top = QHBoxLayout()
        top.addWidget(self.attention_note, 1)
        top.addWidget(QLabel("Positions from"))
        top.addWidget(self.mask_from)
        top.addWidget(QLabel("count"))
        top.addWidget(self.mask_count)
        top.addWidget(self.stream_combo)
        al.addLayout(top)
        al.addWidget(self.attention_chart, 1)
        self.tabs.addTab(att, "Attention mask")

        self.compare_strips: dict[str, TokenStrip] = {}
        self.compare_labels: dict[str, QLabel] = {}
        comp = QWidget()
        grid = QGridLayout(comp)
        for r, s in enumerate(STRATEGIES):
            label = QLabel(f"<b>{STRATEGY_TITLES[s]}</b>")
            label.setMinimumWidth(170)
            label.setWordWrap(True)
            label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            strip = TokenStrip()
            grid.addWidget(label, r, 0)
            grid.addWidget(strip, r, 1)
            self.compare_strips[s] = strip
            self.compare_labels[s] = label
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(len(STRATEGIES), 1)
        comp_scroll = QScrollArea()
        comp_scroll.setWidgetResizable(True)
        comp_scroll.setWidget(comp)
        self.tabs.addTab(comp_scroll, "Compare strategies")

        stats_page = QWidget()
        stl = QVBoxLayout(stats_page)
        stl.setContentsMargins(0, 0, 0, 0)
        self.stats_label = QLabel("Press 'Sample statistics' to draw many maskings with the current recipe.")
        self.stats_label.setWordWrap(True)
        self.hist_chart = ChartWidget(title="Span length vs theory")
        self.freq_chart = ChartWidget(title="Per-token mask frequency")
        charts = QHBoxLayout()
        charts.addWidget(self.hist_chart, 1)
        charts.addWidget(self.freq_chart, 2)
        stl.addWidget(self.stats_label)
        stl.addLayout(charts, 1)
        self.tabs.addTab(stats_page, "Statistics")
        self.stats_veil = StaleVeil(stats_page)  # over statistics of another text, model or recipe
        self._stats_inputs: tuple | None = None  # what the statistics on screen were sampled from
        self._stats_running: tuple | None = None

        self.fill_view = QTextBrowser()
        self.fill_view.setHtml("<p>Press <b>Fill masks</b> after masking a text.</p>")
        self.tabs.addTab(self.fill_view, "Fill-mask")

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(strips)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)

        layout = QVBoxLayout(self)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addWidget(self.help)
        layout.addWidget(self.legend)
        layout.addWidget(self.note)
        layout.addWidget(split, 1)

        self.mode_combo.currentIndexChanged.connect(self._recipe_changed)
        self.objective_combo.currentIndexChanged.connect(self._recipe_changed)
        self.strategy_combo.currentIndexChanged.connect(self._settings_changed)
        for spin in (self.seed_spin, self.ratio_spin, self.mask_spin, self.random_spin, self.p_spin,
                     self.max_span_spin, self.lambda_spin):
            spin.valueChanged.connect(self._settings_changed)
        self.stream_combo.currentIndexChanged.connect(self._draw_attention)
        self.picker.modelChanged.connect(self._settings_changed)
        self.picker.modelChanged.connect(lambda _name: self._reset_fill())  # predictions of another model's are not this one's
        self.samples_spin.valueChanged.connect(self._update_stats_stale)
        ctx.text.changed.connect(self._text_changed)
        self.picker.modelChanged.connect(lambda _name: self._idle_note())
        self._rerun_on_show = False
        self._sync_controls()
        self._idle_note()

    def _stats_key(self) -> tuple:
        p = self.mask_params()
        return (self.picker.current_name(), self.ctx.text.text(), self.strategy_combo.currentData(),
                self.samples_spin.value(), self.seed_spin.value(), p.ratio, p.p_mask, p.p_random, p.geometric_p,
                p.max_span)

    def _idle_note(self) -> None:
        """Before the first Show: what is still missing, from the text and the model as they are now."""
        if self.result is not None:
            return
        if not self.ctx.text.text().strip():
            self.note.setText("Type or drop a text in the box above, then press Show (F5).")
        elif self.picker.current_model() is None:
            self.note.setText("Load a model in the Models panel (double-click it), then press Show (F5).")
        else:
            self.note.setText("Press Show (F5) to mask this text; Fill masks fills the masks you typed, if any.")

    def _text_changed(self, *_args: Any) -> None:
        """Masking is cheap: the strips follow the text (after a pause in typing), or when next shown."""
        self._update_stats_stale()
        if self.result is None:
            self._idle_note()
            return
        if self.isVisible():
            self._timer.start()
        else:
            self._rerun_on_show = True

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        if self._rerun_on_show:
            self._rerun_on_show = False
            self._timer.start()

    def _update_stats_stale(self, *_args: Any) -> None:
        self.stats_veil.set_stale(self._stats_inputs is not None and self._stats_inputs != self._stats_key())

    # ------------------------------------------------------------ settings

    def mask_params(self) -> MaskParams:
        return MaskParams(ratio=self.ratio_spin.value(), p_mask=self.mask_spin.value(),
                          p_random=self.random_spin.value(), geometric_p=self.p_spin.value(),
                          max_span=self.max_span_spin.value())

    def objective_params(self) -> ObjectiveParams:
        return ObjectiveParams(ratio=self.ratio_spin.value(), poisson_lambda=self.lambda_spin.value(), p_mask=self.mask_spin.value(),
                               p_random=self.random_spin.value())

    @property
    def mode(self) -> str:
        return self.mode_combo.currentData()

    def _sync_controls(self) -> None:
        masking = self.mode == "masking"
        self.strategy_combo.setVisible(masking)
        self.objective_combo.setVisible(not masking)
        self.stats_button.setEnabled(masking)
        self.fill_button.setEnabled(masking)
        self.stream_combo.setVisible(not masking and self.objective_combo.currentData() == "xlnet")
        if masking:
            self.help.setText(STRATEGY_HELP[self.strategy_combo.currentData()])
        else:
            self.help.setText(DESCRIPTIONS[self.objective_combo.currentData()])

    def _recipe_changed(self, *_args: Any) -> None:
        """A new recipe starts from its paper's ratio (BERT 15%, BART infilling 30%, MASS 50%)."""
        from explorer.core.pretraining.objectives import DEFAULT_RATIO

        value = 0.15 if self.mode == "masking" else DEFAULT_RATIO.get(self.objective_combo.currentData(), 0.15)
        self.ratio_spin.blockSignals(True)
        self.ratio_spin.setValue(value)
        self.ratio_spin.blockSignals(False)
        self._settings_changed()

    def _settings_changed(self, *_args: Any) -> None:
        self._sync_controls()
        self._update_stats_stale()
        if self.result is not None or self.ctx.text.text().strip():
            self._timer.start()

    def resample(self) -> None:
        self.seed_spin.setValue(self.seed_spin.value() + 1)
        self.run()

    # ------------------------------------------------------------ running

    def _submit(self, name: str, fn: Any, *args: Any, on_result: Any, label: str, **kwargs: Any) -> None:
        old = self.jobs.get(name)
        if old is not None and not getattr(old, "done", True):
            old.cancel()
        kwargs.setdefault("on_error", self._error)
        self.jobs[name] = self.ctx.runner.submit(fn, *args, label=label, on_result=on_result, **kwargs)

    def _error(self, message: str) -> None:
        self.note.setText(message)
        self.ctx.status(message)

    def _inputs(self) -> tuple[Any, str] | None:
        lm = self.picker.current_model()
        if lm is None:
            self.note.setText("Load a model in the Models panel first: its tokenizer cuts the text into tokens.")
            return None
        text = self.ctx.text.text()
        if not text.strip():
            self.note.setText("The text is empty: type or drop a text in the box above.")
            return None
        return lm, text

    def run(self) -> None:
        """Mask (or build the objective for) the shared text with the current settings, in the background."""
        self._timer.stop()
        got = self._inputs()
        if got is None:
            return
        lm, text = got
        seed = self.seed_spin.value()
        self.note.setText("")
        try:
            if self.mode == "masking":
                params = self.mask_params()
                params.validate()
                strategy = self.strategy_combo.currentData()
                if strategy in ("phrase", "entity"):
                    self.note.setText("Parsing with spaCy (the first time takes a few seconds)…")
                self._submit("main", compute_masking, lm, text, strategy, seed, params,
                             on_result=self._show_masking, label="Masking")
                self._submit("compare", compute_compare, lm, text, seed, params, on_result=self._show_compare,
                             label="Comparing strategies")
            else:
                kind = self.objective_combo.currentData()
                if kind == "electra" and self._needs_project_mlm(lm):
                    # ELECTRA's generator is a masked LM: load minilm-mlm (same vocabulary), then build
                    self.note.setText("Loading minilm-mlm, ELECTRA's generator for MiniLM's vocabulary…")
                    self.ctx.models.load(catalog.MINILM_MLM, on_done=lambda _m: self.run())
                    return
                others = tuple(m for m in self.ctx.models.loaded.values() if m is not lm)
                self._submit("main", compute_objective, lm, text, self.objective_combo.currentData(), seed,
                             self.objective_params(), others=others, on_result=self._show_objective,
                             label="Building the objective")
        except Exception as err:  # InputError from params.validate: show it, keep everything
            self._error(str(err))

    def run_stats(self) -> None:
        got = self._inputs()
        if got is None or self.mode != "masking":
            return
        lm, text = got
        try:
            params = self.mask_params()
            params.validate()
        except Exception as err:
            self._error(str(err))
            return
        self.stats_label.setText("Sampling…")
        self._stats_running = self._stats_key()
        self.tabs.setCurrentIndex(2)
        self._submit("stats", compute_stats, lm, text, self.strategy_combo.currentData(), self.samples_spin.value(),
                     self.seed_spin.value(), params, on_result=self._show_stats, label="Sampling maskings")

    def _needs_project_mlm(self, lm: Any) -> bool:
        """The published MiniLM cannot fill masks; minilm-mlm (same vocabulary) does it, when it is not loaded."""
        from explorer.core.pretraining.fillmask import filler_name

        name = filler_name(lm)
        return (name is not None and name not in self.ctx.models.loaded
                and any(e.name == name for e in catalog.list_models()))

    def _filler(self, lm: Any) -> Any:
        """The model that fills ``lm``'s masks: minilm-mlm for the published MiniLM, else ``lm`` itself."""
        from explorer.core.pretraining.fillmask import filler_name

        return self.ctx.models.loaded.get(filler_name(lm) or "", lm)

    @staticmethod
    def typed_masks(lm: Any, text: str) -> bool:
        """Whether the user typed masks into the text ([MASK], <mask> or the model's own mask token)."""
        spellings = {"[mask]", "<mask>"} | {str(lm.tokenizer.mask_token).lower()} if lm is not None else set()
        low = text.lower()
        return any(s in low for s in spellings if s and s != "none")

    def run_fill(self) -> None:
        """Fill the masks the user typed when the text has any (as ``lm-explorer fill`` does); else the masks the
        chosen strategy drew."""
        from explorer.core.pretraining.masking import Masking

        lm = self.picker.current_model()
        text = self.ctx.text.text()
        if lm is not None and self.typed_masks(lm, text):
            from explorer.core.pretraining.fillmask import fill_text

            self.tabs.setCurrentIndex(3)
            if self._needs_project_mlm(lm):  # as for the strategy's masks: minilm-mlm fills MiniLM's
                self.fill_view.setHtml("<p>Loading minilm-mlm, the MiniLM that fills masks…</p>")
                self.ctx.models.load(catalog.MINILM_MLM, on_done=lambda _m: self.run_fill())
                return
            self.fill_view.setHtml("<p>Filling the masks you typed…</p>")
            self._submit("fill", fill_text, self._filler(lm), text, 5, on_result=self._show_typed_fill,
                         label="Filling masks",
                         on_error=self._fill_failed)
            return
        if lm is None or not isinstance(self.result, Masking):
            self.note.setText("Mask a text first (BERT-family masking), then fill the masks.")
            return
        from explorer.core.pretraining.fillmask import fill_message

        self.tabs.setCurrentIndex(3)
        if self._needs_project_mlm(lm):
            self.fill_view.setHtml("<p>Loading minilm-mlm, the MiniLM that fills masks…</p>")
            self.ctx.models.load(catalog.MINILM_MLM, on_done=lambda _m: self.run_fill())
            return
        lm = self._filler(lm)
        msg = fill_message(lm)
        if msg:
            self.fill_view.setHtml(f"<p>{html.escape(msg)}</p>")
            return
        mk = self.result
        self.fill_view.setHtml("<p>Predicting…</p>")
        self._fill_html, self._fill_preds, self._left = "<p>Predicting…</p>", ("", []), None
        self._submit("fill", compute_fill, lm, mk.tt.ids, mk.input_ids, mk.masked,
                     on_result=lambda res: self._show_fill(res, mk), label="Filling masks")
        decoders = [m for m in self.ctx.models.loaded.values() if "causal-lm" in (m.heads or []) and m is not lm]
        if "mlm" in (lm.heads or []) and decoders and mk.masked:
            # the first position the model sees as [MASK] (a random or kept token is no blank to a decoder)
            first = next((p for p in mk.masked if mk.action_of.get(p) == "mask"), mk.masked[0])
            left = mk.tt.text[:mk.tt.offsets[first][0]]
            self._submit("blank", compute_left_guesses, decoders, left,
                         on_result=lambda rows: self._show_left_guesses(rows, mk, first),
                         label="Left-context guesses")

    def _reset_fill(self) -> None:
        """A new masking or objective is on screen: the predictions of the earlier masks go (they named other
        positions, or masks the objective does not have), and so does a prediction still running for them."""
        job = self.jobs.get("fill")
        if job is not None and not job.done:
            job.cancel()
        if self.mode == "masking":
            self.fill_view.setHtml("<p>Press <b>Fill masks</b> to predict the masks shown now.</p>")
        else:
            self.fill_view.setHtml("<p>Fill-mask predicts the masks of BERT-family masking: choose "
                                   "<b>BERT-family masking</b>, mask the text, then press <b>Fill masks</b>.</p>")

    # ------------------------------------------------------------ showing

    @staticmethod
    def _groups(mk: Any) -> list[int | None]:
        """Word per token; for ERNIE a phrase / entity unit joins its words so it reads as one unit."""
        tt = mk.tt
        if mk.strategy not in ("phrase", "entity"):
            return list(tt.words)
        groups: list[int | None] = [None] * tt.n
        for u, (s, e) in enumerate(mk.units):
            for i in range(s, e):
                groups[i] = u
        return groups

    def _tips(self, tt: Any, actions: list[str | None]) -> list[str]:
        return [f"{i}: {tt.tokens[i]!r}  word {tt.words[i]}" + (f"  — {a}" if a else "")
                for i, a in enumerate(actions)]

    def _show_masking(self, mk: Any) -> None:
        self.result = mk
        self._reset_fill()
        tt = mk.tt
        acts: list[str | None] = [None] * tt.n
        for i, a in zip(mk.masked, mk.actions, strict=True):
            acts[i] = a
        groups = self._groups(mk)
        self.original_strip.set_tokens(tt.pretty, groups, acts, tt.special, self._tips(tt, acts))
        self.original_strip.highlight = {t.left for t in mk.sbo if t.left is not None} | {
            t.right for t in mk.sbo if t.right is not None}
        shown = [show_token(t) if a else tt.pretty[i]
                 for i, (t, a) in enumerate(zip(mk.input_tokens, acts, strict=True))]
        self.input_strip.set_tokens(shown, groups, acts, tt.special, self._tips(tt, acts))
        tgt = [tt.pretty[i] for i in mk.masked]
        tips = [f"position {i}: {tt.tokens[i]!r}" for i in mk.masked]
        if mk.sbo:
            by_pos = {p: t for t in mk.sbo for p in t.positions}
            tips = [
                tip + f"\nSBO: from boundary tokens {by_pos[i].left} ({tt.pretty[by_pos[i].left] if by_pos[i].left is not None else '—'})"
                f" and {by_pos[i].right} ({tt.pretty[by_pos[i].right] if by_pos[i].right is not None else '—'}),"
                f" relative position {by_pos[i].relative[by_pos[i].positions.index(i)]}"
                for tip, i in zip(tips, mk.masked, strict=True)
            ]
        self.target_strip.set_tokens(tgt, [tt.words[i] for i in mk.masked], ["predicted"] * len(tgt), None, tips)
        self.original_box.title_label.setText(
            f"Original — {STRATEGY_TITLES[mk.strategy]}: {len(mk.masked)} of {len(tt.candidates)} tokens masked "
            f"(seed {mk.seed})" + ("; bold outline = SBO boundary tokens" if mk.sbo else ""))
        self.input_box.title_label.setText("Model input (after corruption)")
        self.target_box.title_label.setText(f"Target: the {len(tgt)} original tokens at the masked positions")
        unit = {"phrase": "one unit (a noun phrase or a word) masked as a whole",
                "entity": "one unit (a named entity or a word) masked as a whole"}.get(mk.strategy, "pieces of one word")
        self.legend.set_actions(["mask", "random", "keep", "predicted"], underline=unit)  # compare view uses all three
        self.note.setText(mk.note)
        self._draw_attention()

    def _show_objective(self, res: Any) -> None:
        self.result = res
        self._reset_fill()
        tt = res.tt
        self.original_strip.set_tokens(tt.pretty, tt.words, res.original_actions, tt.special,
                                       self._tips(tt, res.original_actions))
        self.original_strip.highlight = set()
        src = res.input_source
        shown = [tt.pretty[s] if s is not None and res.input_tokens[k] == tt.tokens[s] else show_token(res.input_tokens[k])
                 for k, s in enumerate(src)]
        groups = [tt.words[s] if s is not None else None for s in src]
        special = [tt.special[s] if s is not None else False for s in src]
        acts = list(res.input_actions)
        if res.kind == "unilm-seq2seq":
            acts = [a or ("source" if tt.segments[s] == 0 else "target") if s is not None and not special[k] else a
                    for k, (a, s) in enumerate(zip(acts, src, strict=True))]
        self.input_strip.set_tokens(shown, groups, acts, special,
                                    [f"input {k}: {t!r}" + (f" (from {s})" if s is not None else "")
                                     for k, (t, s) in enumerate(zip(res.input_tokens, src, strict=True))])
        if res.n_encoder:
            frag = res.extra.get("fragment")
            if res.target_tokens == tt.tokens:
                self.target_strip.set_tokens(tt.pretty, tt.words, None, tt.special, None)
            elif frag:
                idx = list(range(frag[0], frag[1]))
                self.target_strip.set_tokens([tt.pretty[i] for i in idx], [tt.words[i] for i in idx],
                                             ["predicted"] * len(idx), None, None)
            else:
                tgt = [str(t) for t in res.target_tokens]
                self.target_strip.set_tokens(tgt, None, [None] * len(tgt), None, None)
            what = "the decoder writes"
        else:
            tgt = ["·" if t is None else (tt.pretty[i] if i < tt.n and t == tt.tokens[i] else show_token(str(t)))
                   for i, t in enumerate(res.target_tokens)]
            if res.kind == "electra":
                tacts = [("replaced" if t == "replaced" else None) for t in res.target_tokens]
            elif res.kind == "gpt":
                tacts = [None if t is None else "predicted" for t in res.target_tokens]
            else:
                tacts = [None if t is None else "predicted" for t in res.target_tokens]
            self.target_strip.set_tokens(tgt, None, tacts, [t is None for t in res.target_tokens], None)
            what = "per position (· = nothing to predict)"
        self.original_box.title_label.setText(f"Original — {res.title} (seed {res.seed})")
        self.input_box.title_label.setText("Model input" + (" (encoder)" if res.n_encoder else ""))
        self.target_box.title_label.setText(f"Target: {what}")
        present = list(dict.fromkeys([a for a in (res.original_actions + acts) if a]))
        self.legend.set_actions(present)
        note = res.note
        if res.generator:
            note = f"Generator: {res.generator}. {note}".strip()
        if res.order is not None:
            note = (f"Factorisation order: {' → '.join(str(i) for i in res.order[:40])}"
                    + (" …" if len(res.order) > 40 else "") + f". {note}").strip()
        self.note.setText(note)
        self._sync_controls()
        self._draw_attention()

    def _draw_attention(self, *_args: Any) -> None:
        from explorer.core.pretraining.masking import Masking
        from explorer.core.pretraining.objectives import attention_chart

        res = self.result
        if res is None:
            return
        if isinstance(res, Masking):
            n = res.tt.n
            labels = [f"{i}:{t}" for i, t in enumerate(res.input_tokens)]
            spec = ChartSpec(
                title=f"Attention mask — BERT MLM ({STRATEGY_TITLES[res.strategy]}): every position sees every position",
                kind="heatmap", x_label="key (attended to)", y_label="query (attending)",
                matrix=np.ones((n, n)), row_labels=labels, col_labels=labels, value_range=(0.0, 1.0),
                meta={"strategy": res.strategy, "seed": res.seed},
            )
            self.attention_note.setText("Masked LMs attend in both directions: the [MASK] itself carries the "
                                        "corruption. Switch to 'Other objectives' to see causal, seq2seq and XLNet masks.")
        else:
            spec = attention_chart(res, self.stream_combo.currentData())
            extra = (f" Rows/columns 0–{res.n_encoder - 1} are the encoder, the rest the decoder."
                     if res.n_encoder else "")
            self.attention_note.setText("1 (bright) = the row's position may attend to the column's position." + extra)
        n = spec.matrix.shape[0]
        self.mask_from.blockSignals(True)
        self.mask_from.setRange(0, max(0, n - 1))
        self.mask_from.blockSignals(False)
        lo = self.mask_from.value()
        hi = min(n, lo + self.mask_count.value())
        if lo > 0 or hi < n:
            from dataclasses import replace

            spec = replace(spec, matrix=np.asarray(spec.matrix)[lo:hi, lo:hi],
                           row_labels=(spec.row_labels or [])[lo:hi] or None,
                           col_labels=(spec.col_labels or [])[lo:hi] or None,
                           title=f"{spec.title} · positions {lo}–{hi - 1} of {n}",
                           meta={**spec.meta, "positions": [lo, hi]})
        self.attention_chart.set_spec(spec)

    def _show_compare(self, results: list[Any]) -> None:
        self.compare = results
        for mk in results:
            tt = mk.tt
            acts: list[str | None] = [None] * tt.n
            for i, a in zip(mk.masked, mk.actions, strict=True):
                acts[i] = a
            self.compare_strips[mk.strategy].set_tokens(tt.pretty, self._groups(mk), acts, tt.special,
                                                        self._tips(tt, acts))
            units = f", {len(mk.spans)} spans" if mk.strategy == "span" else (
                f", {len(mk.spans)} units" if mk.spans else "")
            self.compare_labels[mk.strategy].setText(
                f"<b>{STRATEGY_TITLES[mk.strategy]}</b><br>{len(mk.masked)} tokens{units}")

    def _show_stats(self, stats: Any) -> None:
        from explorer.core.pretraining.masking_charts import span_hist_chart, token_frequency_chart

        self.stats = stats
        self._stats_inputs = self._stats_running
        self._update_stats_stale()
        self.hist_chart.set_spec(span_hist_chart(stats))
        self.freq_chart.set_spec(token_frequency_chart(stats))
        af = stats.action_fractions
        self.stats_label.setText(
            f"<b>{stats.samples}</b> maskings with <b>{STRATEGY_TITLES[stats.strategy]}</b>: mean mask ratio "
            f"<b>{stats.mask_ratio_mean:.4f}</b> ± {stats.mask_ratio_std:.4f} of {stats.n_candidates} tokens "
            f"(budget {stats.budget}); {html.escape(stats.unit_length_text())}; after merging touching spans "
            f"{stats.merged_span_length_mean:.2f} tokens; actions mask {af['mask']:.3f} / random {af['random']:.3f} "
            f"/ kept {af['keep']:.3f}. {stats.note}")

    def _fill_failed(self, message: str) -> None:
        self.fill_view.setHtml(f"<p>{html.escape(message)}</p>")
        self._error(message)

    def _show_typed_fill(self, out: dict) -> None:
        """The masks the user typed, each with its candidates, and the text with the best ones filled in."""
        rows = []
        for k, m in enumerate(out["masks"], 1):
            guesses = " ".join(f"<span style='background:#f0f0f0'>{html.escape(show_token(c['token']))}&nbsp;"
                               f"{c['probability']:.2f}</span>" for c in m["candidates"])
            rows.append(f"<tr><td>{k}</td><td>{m['position']}</td><td>{guesses}</td></tr>")
        self.fill_view.setHtml(
            f"<p>{html.escape(out['message'])}</p><p>Filled: <b>{html.escape(out['filled'])}</b></p>"
            "<table cellspacing=4><tr><th>mask</th><th>token</th><th>top guesses</th></tr>"
            + "".join(rows) + "</table>")

    def _show_fill(self, res: Any, masking: Any) -> None:
        if masking is not self.result:
            return  # predictions for masks no longer on screen
        rows = []
        for p in res.predictions:
            # Readable text ("it", not the byte-level piece "Ġit"); the raw piece is the tooltip.
            guesses = " ".join(
                f"<span title='{html.escape(t, quote=True)}' style='background:{'#c7e9c0' if t == p.original else '#f0f0f0'}'>"
                f"{html.escape(r)}&nbsp;{q:.2f}</span>"
                for t, r, q in zip(p.tokens, p.texts or [show_token(t) for t in p.tokens], p.probs, strict=True))
            rows.append(f"<tr><td>{p.position}</td><td><b>{html.escape(p.original_text or p.original)}</b></td>"
                        f"<td>{html.escape(p.shown)}</td><td>{guesses}</td><td>{p.original_rank}</td></tr>")
        self._fill_html = (
            f"<p>{html.escape(res.message)}</p><table cellspacing=4><tr><th>pos</th><th>original</th>"
            f"<th>model saw</th><th>top guesses (green = original)</th><th>rank of original</th></tr>"
            + "".join(rows) + "</table>")
        self._fill_preds = (res.model, list(res.predictions))
        self._render_fill(masking)

    def _show_left_guesses(self, rows: list[Any], masking: Any, position: int) -> None:
        """Each loaded causal LM's guesses for the first [MASK], from the left only (whichever job ends first)."""
        if masking is not self.result:
            return
        self._left = (rows, position)
        self._render_fill(masking)

    def _render_fill(self, masking: Any) -> None:
        """The predictions, and under them the lecture's contrast for the first [MASK] once both jobs are in."""
        contrast = ""
        model, preds = getattr(self, "_fill_preds", ("", []))
        left = getattr(self, "_left", None)
        first = next((p for p in preds if left and p.position == left[1]), None)
        if left is not None and first is not None:
            rows, position = left

            def cells(pairs: list[tuple[str, float]]) -> str:
                return " ".join(f"<span style='background:#f0f0f0'>{html.escape(t)}&nbsp;{q:.2f}</span>"
                                for t, q in pairs)

            lines = [f"<tr><td><b>{html.escape(model)}</b></td><td>both sides</td>"
                     f"<td>{cells(list(zip(first.texts or first.tokens, first.probs, strict=True)))}</td></tr>"]
            lines += [f"<tr><td><b>{html.escape(r.model)}</b></td><td>left only</td>"
                      f"<td>{cells(r.candidates) or html.escape(r.note)}</td></tr>" for r in rows]
            contrast = (
                f"<h4>The first [MASK] (“{html.escape(masking.tt.pretty[position])}”): BERT sees both sides, GPT "
                "only the left</h4><table cellspacing=4><tr><th>model</th><th>sees</th><th>top guesses</th></tr>"
                + "".join(lines) + "</table>")
        self.fill_view.setHtml(getattr(self, "_fill_html", "") + contrast)

    # ------------------------------------------------------------ state

    def state_dict(self) -> dict:
        s = self.state
        s.model = self.picker.chosen_name() or s.model
        s.mode = self.mode
        s.strategy = self.strategy_combo.currentData()
        s.objective = self.objective_combo.currentData()
        s.seed = self.seed_spin.value()
        s.ratio, s.p_mask, s.p_random = self.ratio_spin.value(), self.mask_spin.value(), self.random_spin.value()
        s.geometric_p, s.max_span = self.p_spin.value(), self.max_span_spin.value()
        s.poisson_lambda, s.samples = self.lambda_spin.value(), self.samples_spin.value()
        s.stream, s.tab = self.stream_combo.currentData(), self.tabs.currentIndex()
        s.mask_from, s.mask_count = self.mask_from.value(), self.mask_count.value()
        return state_to_dict(s)

    def restore_state(self, data: dict) -> None:
        s = state_from_dict(MaskingState, data)
        self.state = s
        for combo, value in ((self.mode_combo, s.mode), (self.strategy_combo, s.strategy),
                             (self.objective_combo, s.objective), (self.stream_combo, s.stream)):
            i = combo.findData(value)
            if i >= 0:
                combo.setCurrentIndex(i)
        self.seed_spin.setValue(s.seed)
        self.ratio_spin.setValue(s.ratio)
        self.mask_spin.setValue(s.p_mask)
        self.random_spin.setValue(s.p_random)
        self.p_spin.setValue(s.geometric_p)
        self.max_span_spin.setValue(s.max_span)
        self.lambda_spin.setValue(s.poisson_lambda)
        self.samples_spin.setValue(s.samples)
        self.mask_from.setRange(0, max(self.mask_from.maximum(), s.mask_from))
        self.mask_from.setValue(s.mask_from)
        self.mask_count.setValue(s.mask_count)
        self.tabs.setCurrentIndex(max(0, min(s.tab, self.tabs.count() - 1)))
        if s.model:
            self.picker.select(s.model)
        self._timer.stop()
        self._sync_controls()
