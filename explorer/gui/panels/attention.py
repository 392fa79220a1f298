"""Attention panel: head view, heatmap, model view (every layer x head) and aggregate/rollout views
of one analysis pass, with sentence-pair colouring, the causal mask of decoders, hidden special
tokens, exBERT's threshold, and a token range plus search for long (512-token) inputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explorer.core.inspect.attention import (
    attention_heatmap_spec,
    compact_head_maps,
    drop_tokens,
    head_matrix,
    layer_matrix,
    model_grid,
    prepare_rows,
    rows_ready,
    shown_rows,
    threshold_mask,
    token_words,
)
from explorer.core.inspect.attention_store import DEFAULT_TOP_K
from explorer.core.io.charts import ChartSpec
from explorer.core.io.limits import MAX_LAYERS
from explorer.gui.panels.base import Panel, state_from_dict, state_to_dict, view_parts
from explorer.gui.widgets.chart import ChartWidget
from explorer.gui.widgets.flow import FlowLayout, LayoutFence
from explorer.gui.widgets.head_view import HEAD_COLORS, HeadView
from explorer.gui.widgets.model_picker import ModelPicker
from explorer.gui.widgets.stale import StaleVeil
from explorer.gui.widgets.token_search import TokenSearch

if TYPE_CHECKING:
    from explorer.core.inspect.analysis import LayerPreview

VIEWS = [("head", "Head view"), ("heatmap", "Heatmap"), ("model", "Model view (all layers × heads)"),
         ("aggregate", "Aggregate & rollout")]


HEAD_VIEW_MAX = 96


def _set_range(spin: QSpinBox, lo: int, hi: int) -> None:
    """``setRange`` only when it changes: Qt relayouts the whole panel after any call, even with the same range."""
    if (spin.minimum(), spin.maximum()) != (lo, hi):
        spin.setRange(lo, hi)


@dataclass
class AttentionState:
    model: str = ""
    pair: str = ""
    view: str = "head"
    layer: int = 0
    head: str = "all"  # "all" | "mean" | "max" | "rollout" | "<n>"
    source: str = "self"
    hide_special: bool = False
    share: float = 1.0
    range_start: int = 0
    range_count: int = 512
    search: str = ""
    top_k: int = DEFAULT_TOP_K  # long inputs: keys kept per query, layer and head (the CLI's --top-k)


@view_parts(search_edit=("_search_hits:hits", "_search_pos:pos"))
class AttentionPanel(Panel):
    key = "attention"
    title = "Attention"
    summary = "What each layer and head attends to, with the causal mask of decoders and attention rollout."
    state_class = AttentionState
    setting_checks = {  # a head is a choice or a head's number; numbers within any real model's range
        "head": lambda v: v in ("all", "mean", "max", "rollout") or (v.isdigit() and int(v) < MAX_LAYERS),
        "layer": lambda v: 0 <= v < MAX_LAYERS,
        "range_start": lambda v: v >= 0,
    }

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.state = AttentionState()
        self.analysis = None
        self.job = None
        self._prepare_job = None
        self._pass_seconds: dict[str, float] = {}  # model name -> its last pass, button to result
        self._run_started = 0.0
        self._runs = 0  # Analyse presses: a preview of an earlier one is not drawn
        self._model_tile: tuple[int, int] = (0, 0)

        # --- inputs
        self.picker = ModelPicker(ctx)
        self.pair_edit = QLineEdit()
        self.pair_edit.setPlaceholderText("Second sentence (optional): a BERT sentence pair, or the decoder input of a seq2seq model")
        self.run_button = QPushButton("Analyse")
        self.run_button.setToolTip("Run the model once on the shared text (and the second sentence)")
        self.run_button.clicked.connect(self.run)
        top = QHBoxLayout()
        top.addWidget(QLabel("Model"))
        top.addWidget(self.picker)
        top.addWidget(self.pair_edit, 1)
        top.addWidget(self.run_button)

        # --- view controls
        self.view_combo = QComboBox()
        for key, label in VIEWS:
            self.view_combo.addItem(label, key)
        self.layer_spin = QSpinBox()
        self.layer_spin.setRange(0, 0)
        self.head_combo = QComboBox()
        self.source_combo = QComboBox()
        for key, label in (("self", "encoder self-attention"), ("decoder", "decoder self-attention"),
                           ("cross", "cross-attention")):
            self.source_combo.addItem(label, key)
        self.source_combo.setVisible(False)
        self.special_check = QCheckBox("Hide special tokens")
        self.special_check.setToolTip("Drop [CLS]/[SEP]-like tokens and renormalise each row: much attention parks on them")
        self.share_spin = QDoubleSpinBox()
        self.share_spin.setRange(0.05, 1.0)
        self.share_spin.setSingleStep(0.05)
        self.share_spin.setValue(1.0)
        self.share_spin.setToolTip("exBERT's threshold: keep each token's strongest links until they hold this share "
                                   "of its attention (1.0 = all links)")
        self.start_spin = QSpinBox()
        self.start_spin.setRange(0, 0)
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 100000)
        self.count_spin.setValue(512)
        self.count_spin.setToolTip("How many tokens to show from 'from' (zoom)")
        self.search_edit = TokenSearch()
        self.search_edit.returnPressed.connect(self.search_next)
        # The compact form's k (the CLI's --top-k): only inputs past the model's dense limit use it.
        self.topk_spin = QSpinBox()
        self.topk_spin.setRange(1, 100000)
        self.topk_spin.setValue(self.state.top_k)
        self.topk_spin.setToolTip(
            "Long inputs only: past the length whose every attention map fits in memory, the analysis keeps each "
            "token's k strongest links per layer and head, with their exact weights (rollout and the model view "
            "use them); the layer on screen is recomputed in full. Shorter inputs keep every weight. Larger k: "
            "closer to exact, more memory. Applies at the next Analyse (the CLI's --top-k).")
        topk_label = QLabel("Top-&k")
        topk_label.setBuddy(self.topk_spin)  # Alt+K
        topk_label.setToolTip(self.topk_spin.toolTip())
        controls = FlowLayout()
        for w in (QLabel("View"), self.view_combo, QLabel("Layer"), self.layer_spin, QLabel("Head"), self.head_combo,
                  self.source_combo, self.special_check, QLabel("Keep share"), self.share_spin,
                  QLabel("Tokens from"), self.start_spin, QLabel("count"), self.count_spin, self.search_edit,
                  topk_label, self.topk_spin):
            controls.addWidget(w)
        controls.addStretch(1)

        self.note = QLabel("Type a text in the box above, pick a model and press Analyse.")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #555;")

        # --- views
        self.head_view = HeadView()
        self.head_scroll = QScrollArea()
        self.head_scroll.setWidget(self.head_view)
        self.head_scroll.setWidgetResizable(True)
        self.head_legend = QLabel()
        self.head_export = QToolButton()
        self.head_export.setText("Export")
        self.head_export.setToolTip("Export the head view as PNG or SVG")
        self.head_export.clicked.connect(self._export_head_dialog)
        head_bar = QHBoxLayout()
        head_bar.addWidget(self.head_legend, 1)
        head_bar.addWidget(self.head_export)
        head_page = QWidget()
        hl = QVBoxLayout(head_page)
        hl.setContentsMargins(0, 0, 0, 0)
        hl.addLayout(head_bar)
        hl.addWidget(self.head_scroll, 1)

        self.heatmap = ChartWidget(title="Heatmap")
        self.model_chart = ChartWidget(title="Model view")
        self.model_chart.cellClicked.connect(self._open_model_cell)
        self.mean_chart = ChartWidget(title="Mean of heads")
        self.rollout_chart = ChartWidget(title="Rollout")
        agg_page = QWidget()
        al = QHBoxLayout(agg_page)
        al.setContentsMargins(0, 0, 0, 0)
        al.addWidget(self.mean_chart)
        al.addWidget(self.rollout_chart)

        self.stack = QStackedWidget()
        for w in (head_page, self.heatmap, self.model_chart, agg_page):
            self.stack.addWidget(w)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(controls)
        # A new note relayouts the panel only when its height changes (each analysis sets two notes).
        layout.addWidget(LayoutFence(self.note))
        layout.addWidget(self.stack, 1)

        self.view_combo.currentIndexChanged.connect(self._controls_changed)
        self.layer_spin.valueChanged.connect(self._controls_changed)
        self.head_combo.currentIndexChanged.connect(self._controls_changed)
        self.source_combo.currentIndexChanged.connect(self._controls_changed)
        self.special_check.toggled.connect(self._controls_changed)
        self.share_spin.valueChanged.connect(self._controls_changed)
        self.start_spin.valueChanged.connect(self._controls_changed)
        self.count_spin.valueChanged.connect(self._controls_changed)
        self.search_edit.textChanged.connect(self._search_changed)
        self.topk_spin.valueChanged.connect(self._top_k_changed)
        self._fill_heads(12)
        # The views are veiled "stale" while the text, second sentence or model differ from the analysis drawn.
        self.stale_veil = StaleVeil(self.stack)
        self._analysed: tuple | None = None  # (model, text, pair) of the analysis on screen
        self._running: tuple | None = None  # the same of the pass under way
        ctx.text.changed.connect(self._update_stale)
        self.pair_edit.textChanged.connect(self._update_stale)
        self.picker.modelChanged.connect(self._update_stale)

    def _inputs(self) -> tuple:
        return self.picker.current_name(), self.ctx.text.text(), self.pair_edit.text().strip()

    def _update_stale(self, *_args) -> None:
        self.stale_veil.set_stale(self.analysis is not None and self._analysed != self._inputs())

    # ------------------------------------------------------------ running

    def run(self) -> None:
        """Analyse the shared text with the chosen model in the background."""
        lm = self.picker.current_model()
        if lm is None:
            self.note.setText("Load a model in the Models panel first.")
            return
        text = self.ctx.text.text()
        if not text.strip():
            self.note.setText("The text is empty: type or drop a text in the box above.")
            return
        from explorer.core.inspect.analysis import analyse, preview_pays

        if self.job is not None and not self.job.done:
            self.job.cancel()
        pair = self.pair_edit.text().strip() or None
        # The note keeps its height while the model runs, so the view below does not jump up and back (and is
        # not repainted twice for nothing).
        self.note.setMinimumHeight(self.note.height())
        self.note.setText(f"Running {lm.name}…")
        self.run_button.setEnabled(False)
        self.state.top_k = self.topk_spin.value()
        self._running = self._inputs()
        early = preview_pays(self._pass_seconds.get(lm.name))
        self._run_started = time.perf_counter()
        self._runs += 1
        run = self._runs

        def preview(p: LayerPreview) -> None:
            if run == self._runs:  # a cancelled pass may still hand its layer over
                self._show_preview(p)

        self.job = self.ctx.runner.submit(
            analyse, lm, text, pair, label="Attention", on_result=self.show_analysis, on_error=self._on_error,
            on_partial=preview if early else None, on_finished=lambda: self.run_button.setEnabled(True),
            top_k=self.state.top_k, preview_layer=self.state.layer,
            preview_rows=(self.state.range_start, self._rows_count(), self.state.hide_special),
        )

    def _show_preview(self, preview: LayerPreview) -> None:
        """Draw the head view of the layer on screen as soon as the pass has made it, while the later layers
        still run (the finished analysis then finds it drawn); other views need the whole pass."""
        head = self._head_value()
        if (self.state.view != "head" or self.state.source != "self" or preview.layer != self.state.layer
                or head == "rollout" or (isinstance(head, int) and head >= preview.attention.shape[0])):
            return
        if preview.rows is not None:  # a long input: the rows on screen, unless the range changed since
            shown = shown_rows(preview.special_mask, self.state.hide_special, self.state.range_start,
                               self._rows_count())
            if head in ("mean", "max") or not np.array_equal(shown, preview.rows):
                return
        self.layer_spin.blockSignals(True)
        _set_range(self.layer_spin, 0, preview.num_layers - 1)  # the controls reflow now, not under the drawing
        self.layer_spin.blockSignals(False)
        self.note.setText(f"Running {preview.model_name} on {len(preview.labels)} tokens: layer {preview.layer} is "
                          f"drawn, the other layers are still running…")
        self._draw_head_view(preview)
        self.stale_veil.set_stale(False)  # the new inputs' drawing, while the other layers run

    def _on_error(self, message: str) -> None:
        self.note.setMinimumHeight(0)
        self.note.setText(message)
        self.ctx.error(message)

    def show_analysis(self, analysis) -> None:
        """Take a finished analysis and draw the current view."""
        self._pass_seconds[analysis.model_name] = time.perf_counter() - self._run_started
        self.analysis = analysis
        self._analysed = self._running
        self._update_stale()
        a = analysis
        self.layer_spin.blockSignals(True)
        _set_range(self.layer_spin, 0, a.num_layers - 1)
        self.layer_spin.setValue(min(self.state.layer, a.num_layers - 1))
        self.layer_spin.blockSignals(False)
        self._fill_heads(a.num_heads)
        self.source_combo.setVisible(a.kind == "encoder-decoder")
        self.start_spin.blockSignals(True)
        _set_range(self.start_spin, 0, max(0, a.num_tokens - 1))
        self.start_spin.blockSignals(False)
        self.note.setMinimumHeight(0)
        self._set_note()
        self.refresh()

    def _set_note(self) -> None:
        a = self.analysis
        parts = [f"{a.model_name}: {a.num_tokens} tokens, {a.num_layers} layers × {a.num_heads} heads."]
        if a.causal:
            parts.append("Decoder: each token attends only to itself and the tokens on its left (causal mask, grey).")
        if a.pair is not None and a.kind != "encoder-decoder":
            parts.append("Blue labels: sentence A, orange: sentence B.")
        if a.note:
            parts.append(a.note)
        if a.exact and a.kind != "encoder-decoder":
            parts.append(self._exact_note())
        elif not a.exact and self.topk_spin.value() != a.attentions.top_k:
            parts.append(f"Top-k is now {self.topk_spin.value()}: press Analyse to apply it.")
        self.note.setText(" ".join(parts))

    def _exact_note(self) -> str:
        """Where exactness ends for the model analysed: it keeps every weight up to its dense limit."""
        from explorer.core.inspect.analysis import analysis_limit, dense_limit

        a = self.analysis
        lm = self.ctx.models.get(a.model_name)
        if lm is None:
            return "Every weight is exact (all layers kept in full)."
        dense, most = dense_limit(lm), analysis_limit(lm, self.topk_spin.value())
        if dense >= most:
            return f"Every weight is exact ({a.model_name} keeps all layers in full for any input it takes)."
        return (f"Every weight is exact (all layers kept in full up to {dense} tokens; longer inputs keep each "
                f"token's top {self.topk_spin.value()} links per layer and head).")

    def _top_k_changed(self, value: int) -> None:
        self.state.top_k = value
        if self.analysis is not None:
            self._set_note()

    def _fill_heads(self, n: int) -> None:
        """The head choices for ``n`` heads, the state's head selected; kept as they are when already right (a
        new analysis of a model with as many heads does not rebuild the list)."""
        current = self.state.head
        self.head_combo.blockSignals(True)
        if self.head_combo.count() != 4 + n:
            self.head_combo.clear()
            for key, label in (("all", "all heads (colours)"), ("mean", "mean of heads"), ("max", "max of heads"),
                               ("rollout", "rollout")):
                self.head_combo.addItem(label, key)
            for h in range(n):
                self.head_combo.addItem(f"head {h}", str(h))
        i = max(0, self.head_combo.findData(current))
        if i != self.head_combo.currentIndex():
            self.head_combo.setCurrentIndex(i)
        self.head_combo.blockSignals(False)

    # ------------------------------------------------------------ state

    def _read_controls(self) -> None:
        s = self.state
        s.view = self.view_combo.currentData() or "head"
        s.layer = self.layer_spin.value()
        s.head = self.head_combo.currentData() or "all"
        s.source = self.source_combo.currentData() or "self"
        s.hide_special = self.special_check.isChecked()
        s.share = self.share_spin.value()
        s.range_start = self.start_spin.value()
        s.range_count = self.count_spin.value()
        s.pair = self.pair_edit.text()
        s.model = self.picker.chosen_name() or ""
        s.search = self.search_edit.text()
        s.top_k = self.topk_spin.value()

    def _controls_changed(self, *_args) -> None:
        self._read_controls()
        self.stack.setCurrentIndex([k for k, _ in VIEWS].index(self.state.view))
        self.refresh()

    def state_dict(self) -> dict:
        self._read_controls()
        return state_to_dict(self.state)

    def restore_state(self, data: dict) -> None:
        """Put every saved setting back into its control; the controls' change signals are held so that no
        control (layer and head ranges are unknown before an analysis) writes its default over the state."""
        s = self.state = state_from_dict(AttentionState, data)
        controls = (self.view_combo, self.layer_spin, self.head_combo, self.source_combo, self.special_check,
                    self.share_spin, self.start_spin, self.count_spin, self.picker, self.topk_spin)
        for w in controls:
            w.blockSignals(True)
        try:
            self.view_combo.setCurrentIndex(max(0, self.view_combo.findData(s.view)))
            self.layer_spin.setRange(0, max(self.layer_spin.maximum(), s.layer))
            self.layer_spin.setValue(s.layer)
            self._fill_heads(max(12, int(s.head) + 1 if s.head.isdigit() else 0))
            self.source_combo.setCurrentIndex(max(0, self.source_combo.findData(s.source)))
            self.special_check.setChecked(s.hide_special)
            self.share_spin.setValue(s.share)
            self.start_spin.setRange(0, max(self.start_spin.maximum(), s.range_start))
            self.start_spin.setValue(s.range_start)
            self.count_spin.setValue(s.range_count)
            self.topk_spin.setValue(s.top_k)
            if s.model:
                self.picker.select(s.model)
        finally:
            for w in controls:
                w.blockSignals(False)
        self.pair_edit.setText(s.pair)
        self.search_edit.setText(s.search)
        self.stack.setCurrentIndex([k for k, _ in VIEWS].index(s.view) if s.view in dict(VIEWS) else 0)

    def set_view(self, key: str) -> None:
        self.view_combo.setCurrentIndex(self.view_combo.findData(key))

    # ------------------------------------------------------------ drawing

    def _head_value(self) -> int | str:
        h = self.state.head
        return int(h) if h.isdigit() else h

    def _kept(self, preview: LayerPreview | None = None) -> np.ndarray:
        """The tokens the views keep: all, or all but the special ones (of the analysis, or of ``preview``)."""
        a = preview or self.analysis
        if self.state.hide_special and self.state.source == "self":
            return ~np.asarray(a.special_mask, dtype=bool)
        return np.ones(len(preview.labels) if preview is not None else self._n_side(), dtype=bool)

    def _n_side(self) -> int:
        a = self.analysis
        return len(a.decoder_tokens) if self.state.source == "decoder" else a.num_tokens

    def _range(self, n: int) -> tuple[int, int]:
        lo = min(self.state.range_start, max(0, n - 1))
        return lo, min(n, lo + max(1, self.state.range_count))

    def _attn(self) -> np.ndarray:
        a = self.analysis
        return {"self": a.attentions, "decoder": a.decoder_attentions, "cross": a.cross_attentions}[self.state.source]

    def refresh(self) -> None:
        view = self.state.view
        # the head view draws at most HEAD_VIEW_MAX tokens: the count box says so rather than promising more
        capped = view == "head" and self.count_spin.value() > HEAD_VIEW_MAX
        self.count_spin.setSuffix(f" (head view: {HEAD_VIEW_MAX})" if capped else "")
        if self.analysis is None or not self._ready_to_draw():
            return
        if view == "head":
            self._draw_head_view()
        elif view == "heatmap":
            self._draw_heatmap()
        elif view == "model":
            self._draw_model_view()
        else:
            self._draw_aggregate()

    def _draw_head_view(self, preview: LayerPreview | None = None) -> None:
        """The head view of the analysis, or of ``preview`` (one layer handed over while the pass runs on)."""
        a = preview or self.analysis
        if self.state.source == "cross":
            self.head_legend.setText("The head view shows self-attention; use the Heatmap for cross-attention.")
            return
        att = self._attn() if preview is None else None
        layer = preview.layer if preview is not None else min(self.state.layer, att.shape[0] - 1)
        head = self._head_value()
        kept = self._kept(preview)
        labels = a.decoder_labels if self.state.source == "decoder" else a.labels
        segments = [0] * len(labels) if self.state.source == "decoder" else a.segment_ids
        labels = [lab for lab, k in zip(labels, kept, strict=True) if k]
        segments = [s for s, k in zip(segments, kept, strict=True) if k]
        lo, hi = self._range(len(labels))
        capped = hi - lo > HEAD_VIEW_MAX
        hi = min(hi, lo + HEAD_VIEW_MAX)  # more lines than this are a blur: page with 'Tokens from'
        num_heads = preview.attention.shape[0] if preview is not None else att.shape[1]
        heads = list(range(num_heads)) if head == "all" else [head if isinstance(head, int) else 0]
        if preview is not None and preview.rows is not None:
            maps, keep = compact_head_maps(None, layer, head, kept, lo, hi, self.state.share, preview.attention)
        elif preview is None and self._compact():
            maps, keep = compact_head_maps(att, layer, head, kept, lo, hi, self.state.share)
        else:
            layer_att = preview.attention if preview is not None else att[layer]  # [head, query, key]
            if head == "all":
                maps = layer_att
            elif head == "rollout":
                maps = layer_matrix(att, layer, head)[None]
            else:
                maps = head_matrix(layer_att, head)[None]
            if not kept.all():
                maps = np.stack([drop_tokens(m, kept) for m in maps])
            keep = None
            if self.state.share < 1.0:
                keep = np.stack([threshold_mask(m, self.state.share) for m in maps])
            maps = maps[:, lo:hi, lo:hi]
            keep = keep[:, lo:hi, lo:hi] if keep is not None else None
        self.head_view.min_weight = 0.01 if len(heads) == 1 else 0.04
        from explorer.core.inspect.attention import view_name

        title = f"{a.model_name} · layer {layer} · " + ("all heads" if head == "all" else view_name(head))
        if lo > 0 or hi < len(labels):
            title += f" · tokens {lo}–{hi - 1} of {len(labels)}"
        if capped:
            title += f" ({HEAD_VIEW_MAX} at a time: move 'Tokens from' or search)"
        hits = self.search_edit.hits if preview is None else []  # the hits are the last analysis's
        self.head_view.highlight = {i - lo for i in hits if lo <= i < hi}
        self.head_view.set_data(labels[lo:hi], maps, heads, segments[lo:hi], keep, title)
        if head == "all":
            swatches = " ".join(f"<span style='color:{HEAD_COLORS[h % len(HEAD_COLORS)]}'>■</span>{h}" for h in heads)
            self.head_legend.setText(f"Heads: {swatches} · hover a token to isolate its lines")
        else:
            self.head_legend.setText("Line opacity = attention weight · hover a token to isolate its lines")


    # ------------------------------------------------------------ long inputs (compact attention)

    def _compact(self) -> bool:
        a = self.analysis
        return a is not None and self.state.source == "self" and not a.exact

    def _rows_count(self) -> int:
        """How many rows the current view draws (the head view at most HEAD_VIEW_MAX)."""
        count = self.state.range_count
        return min(count, HEAD_VIEW_MAX) if self.state.view == "head" else count

    def _shown_rows(self) -> np.ndarray:
        """The long input's query rows the current view draws (the pass hands the same ones over)."""
        s = self.state
        return shown_rows(self.analysis.special_mask, s.hide_special, s.range_start, self._rows_count())

    def _row_requests(self) -> list[tuple[int, int | str, list[int]]]:
        """The (layer, head, query rows) the current view draws from recomputed dense rows or rollout."""
        view, layer, head = self.state.view, self.state.layer, self._head_value()
        rows = list(self._shown_rows())
        if view in ("head", "heatmap"):
            return [(layer, "mean" if head == "all" else head, rows)]
        if view == "aggregate":
            return [(layer, head if head in ("mean", "max") else "mean", rows), (layer, "rollout", rows)]
        return []  # the model view draws the top-k form

    def _ready_to_draw(self) -> bool:
        """Long inputs: True when the view's rows are computed; otherwise start computing them in the background."""
        if not self._compact():
            return True
        att = self.analysis.attentions
        wanted = [r for r in self._row_requests() if not rows_ready(att, *r)]
        if not wanted:
            return True
        if self._prepare_job is not None and not self._prepare_job.done:
            self._prepare_job.cancel()
        self._set_note()
        self.note.setText(self.note.text() + f" Recomputing layer {self.state.layer} for the tokens on screen…")
        analysis = self.analysis

        def drawn(_result) -> None:
            if self.analysis is analysis:
                self._set_note()
                self.refresh()

        self._prepare_job = self.ctx.runner.submit(prepare_rows, att, wanted, label="Attention layer",
                                                   on_result=drawn, on_error=self._on_error)
        return False

    def heatmap_spec(self) -> ChartSpec:
        a = self.analysis
        head = self._head_value()
        if head == "all":
            head = "mean"
        kept_n = int(self._kept().sum())
        lo, hi = self._range(kept_n)
        return attention_heatmap_spec(a, self.state.layer, head, self.state.hide_special,
                                      self.state.share if self.state.share < 1.0 else None,
                                      token_range=(lo, hi), source=self.state.source)

    def _draw_heatmap(self) -> None:
        self.heatmap.set_spec(self.heatmap_spec())  # a decoder's masked future is the spec's greyed cells

    def model_view_spec(self) -> ChartSpec:
        """All layers × heads as one image of small tiles (one ImageItem, so it stays fast)."""
        a = self.analysis
        att = self._attn()
        kept = self._kept()
        cols = np.nonzero(kept)[0]
        lo, hi = self._range(len(cols))
        cols = cols[lo:hi]
        # Cross-attention: rows are the decoder's tokens, columns the encoder's.
        rows = np.arange(att.shape[2]) if self.state.source == "cross" else cols
        renorm = self.state.hide_special and self.state.source == "self"
        grid, (tr, tc), gap = model_grid(att, rows, cols, renorm, self._compact())
        n_layers, n_heads = att.shape[:2]
        self._model_tile = (tr + gap, tc + gap)
        row_labels = [f"layer {r // (tr + gap)}" for r in range(grid.shape[0])]
        col_labels = [f"head {c // (tc + gap)}" for c in range(grid.shape[1])]
        title = f"{a.model_name} · every layer × head · click one to open it"
        if self._compact():
            title += f" · from each token's top {att.top_k} links"
        return ChartSpec(
            title=title, kind="heatmap",
            x_label="head", y_label="layer", matrix=grid, row_labels=row_labels, col_labels=col_labels,
            # one tick at the middle of each tile: its layer / head number
            x_ticks=[(h * (tc + gap) + tc / 2, str(h)) for h in range(n_heads)],
            y_ticks=[(i * (tr + gap) + tr / 2, str(i)) for i in range(n_layers)],
            value_range=(0.0, 1.0), legend=False,
            meta={"model": a.model_name, "tile": [tr, tc], "gap": gap, "tokens": [int(i) for i in cols],
                  "source": self.state.source, "note": "each tile scaled to its own maximum"},
        )

    def _draw_model_view(self) -> None:
        spec = self.model_view_spec()
        self.model_chart.set_spec(spec)

    def _open_model_cell(self, row: int, col: int) -> None:
        if not self._model_tile[0]:
            return
        layer, head = row // self._model_tile[0], col // self._model_tile[1]
        self.layer_spin.setValue(layer)
        self.head_combo.setCurrentIndex(self.head_combo.findData(str(head)))
        self.set_view("heatmap")

    def _draw_aggregate(self) -> None:
        head = self._head_value()
        agg = head if head in ("mean", "max") else "mean"
        kept_n = int(self._kept().sum())
        lo, hi = self._range(kept_n)
        share = self.state.share if self.state.share < 1.0 else None
        a = self.analysis
        self.mean_chart.set_spec(attention_heatmap_spec(a, self.state.layer, agg, self.state.hide_special, share,
                                                        (lo, hi), self.state.source))
        self.rollout_chart.set_spec(attention_heatmap_spec(a, self.state.layer, "rollout", self.state.hide_special,
                                                           share, (lo, hi), self.state.source))

    # ------------------------------------------------------------ search and export

    def _search_changed(self, text: str) -> None:
        self.state.search = text
        self.search_edit.forget()
        if self.analysis is None or not text.strip():
            self.refresh()
            return
        kept = self._kept()
        words = [w for w, k in zip(token_words(self.analysis), kept, strict=False) if k]
        labels = [lab for lab, k in zip(self.analysis.labels, kept, strict=False) if k]
        self.search_edit.find(labels, words)
        self.search_next()


    def search_next(self) -> None:
        """Move the token range to the next token matching the search text."""
        hit = self.search_edit.next_hit()
        if hit is None:
            if self.search_edit.text().strip():
                self.note.setText(f"No token matches '{self.search_edit.text().strip()}'.")
            self.refresh()
            return
        count = self.count_spin.value()
        lo, hi = self.state.range_start, self.state.range_start + count
        if not lo <= hit < hi:
            self.start_spin.setValue(max(0, hit - count // 4))
        self.note.setText(f"'{self.search_edit.text().strip()}': token {hit} "
                          f"({self.search_edit.pos + 1} of {len(self.search_edit.hits)}; Enter for the next)")
        self.refresh()
        if self.state.view == "head":
            y = int(self.head_view.row_y(hit - self.state.range_start))
            self.head_scroll.ensureVisible(0, y, 0, 60)

    def _export_head_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export head view", "head-view.png",
                                              "PNG image (*.png);;SVG vector image (*.svg)")
        if path:
            try:
                self.head_view.export(path)
            except (OSError, ValueError) as err:
                self.ctx.error(f"Could not write {path}: {err}")

    def charts(self) -> list[ChartWidget]:
        return [c for c in (self.heatmap, self.model_chart, self.mean_chart, self.rollout_chart) if c.spec is not None]

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_F3:
            self.search_next()
        else:
            super().keyPressEvent(event)
