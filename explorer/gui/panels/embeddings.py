"""Embeddings panel: one word in several contexts compared layer by layer against each layer's
anisotropy baseline, token-by-token similarity at a chosen layer (or layer mix), and a corpus map of
every occurrence of a word across the dropped files with nearest neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtWidgets import (
    QComboBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core.inspect.corpus import corpus_chart_spec, nearest_neighbours, umap_available
from explorer.core.inspect.embeddings import (
    VIEWS,
    Context,
    LayerMix,
    load_presets,
    mixed_similarity,
    preset_model,
    similarity_chart_spec,
    token_similarity_spec,
)
from explorer.core.io.errors import InputError
from explorer.gui.panels.base import Panel, is_saved_rows, state_from_dict, state_to_dict
from explorer.gui.widgets.chart import ChartWidget
from explorer.gui.widgets.flow import FlowLayout, fit_height, wrapping_label
from explorer.gui.widgets.model_picker import ModelPicker


@dataclass
class EmbeddingsState:
    model: str = ""
    preset: str = ""
    contexts: list = field(default_factory=list)  # [[text, word, occurrence(1-based), sense]]
    view: str = "raw"
    mix_mode: str = "layer"
    mix_layer: int = -1
    mix_last_n: int = 4
    mix_weights: str = ""
    token_context: int = 0
    corpus_word: str = ""
    corpus_layer: int = -1
    corpus_method: str = "pca"
    corpus_color: str = "file"


class EmbeddingsPanel(Panel):
    key = "embeddings"
    title = "Embeddings"
    summary = "Contextual embeddings layer by layer: one word in two contexts, against each layer's baseline."
    state_class = EmbeddingsState
    setting_checks = {"contexts": lambda v: is_saved_rows(v, (3, 4), numbers=(2,))}  # text, word, occurrence, sense

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.state = EmbeddingsState()
        self.result = None
        self.corpus = None
        self.presets = load_presets().get("presets", [])
        self._corpus_index: dict[str, list[int]] = {}

        self.picker = ModelPicker(ctx)
        self.preset_combo = QComboBox()
        self.preset_combo.addItem("(presets)", None)
        for p in self.presets:
            self.preset_combo.addItem(p["name"], p["name"])
        self.preset_combo.currentIndexChanged.connect(self._preset_chosen)
        self.compare_button = QPushButton("Compare")
        self.compare_button.clicked.connect(self.compare)
        top = FlowLayout()
        top.addWidget(QLabel("Model"))
        top.addWidget(self.picker)
        top.addWidget(QLabel("Preset"))
        top.addWidget(self.preset_combo, 1)
        top.addWidget(self.compare_button)

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_contexts_tab(), "One word, several contexts")
        self.tabs.addTab(self._build_tokens_tab(), "Token similarity")
        self.tabs.addTab(self._build_corpus_tab(), "Corpus")
        self.note = QLabel("Pick a preset or type sentences and the word in each, then press Compare.")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #555;")

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.note)
        layout.addWidget(self.tabs, 1)
        ctx.filesChanged.connect(self._files_changed)
        self._files_changed()

    # ------------------------------------------------------------ building

    def _build_contexts_tab(self) -> QWidget:
        self.table = QTableWidget(2, 4)
        self.table.setHorizontalHeaderLabels(["Sentence", "Word", "Occurrence", "Sense"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeaderItem(3).setToolTip(
            "A label per sentence: rows with the same label form same-sense pairs, different labels "
            "different-sense pairs (leave empty to compare every pair on its own)")
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setMinimumHeight(122)  # four sentences (two per sense) visible at once
        self.table.setMaximumHeight(150)
        add = QPushButton("Add sentence")
        add.clicked.connect(lambda: self.table.insertRow(self.table.rowCount()))
        remove = QPushButton("Remove")
        remove.clicked.connect(self._remove_row)
        self.mix_mode = QComboBox()
        for key, label in (("layer", "one layer"), ("last_n", "mean of last N layers"), ("weights", "my weights")):
            self.mix_mode.addItem(label, key)
        self.mix_layer = QSpinBox()
        self.mix_layer.setRange(-1, 64)
        self.mix_layer.setValue(-1)
        self.mix_layer.setToolTip("Layer (0 = embeddings, -1 = last) or N for 'mean of last N'")
        self.mix_weights = QLineEdit()
        self.mix_weights.setPlaceholderText("weights per layer, e.g. 0,0,0,1,1,1,1")
        self.mix_label = wrapping_label()
        fit_height(self.mix_label)
        self.view_combo = QComboBox()
        for key, label in (("raw", "raw cosine"), ("centred", "mean-centred (anisotropy removed)"),
                           ("minus-baseline", "cosine − baseline")):
            self.view_combo.addItem(label, key)
        self.view_combo.setToolTip(
            "Raw cosine; cosine after subtracting each layer's mean token vector over the pool of sentences; "
            "or raw cosine minus the layer's baseline (random pairs of different words from different sentences)")
        self.view_combo.currentIndexChanged.connect(self._draw_similarity)
        for w in (self.mix_mode, self.mix_layer):
            (w.currentIndexChanged if isinstance(w, QComboBox) else w.valueChanged).connect(self._mix_changed)
        self.mix_weights.editingFinished.connect(self._mix_changed)
        row = FlowLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addSpacing(20)
        row.addWidget(QLabel("Layer mix"))
        row.addWidget(self.mix_mode)
        row.addWidget(self.mix_layer)
        row.addWidget(self.mix_weights, 1)
        row.addSpacing(20)
        row.addWidget(QLabel("View"))
        row.addWidget(self.view_combo)
        self.sim_chart = ChartWidget(title="Cosine similarity per layer")
        page = QWidget()
        v = QVBoxLayout(page)
        v.addWidget(self.table)
        v.addLayout(row)
        v.addWidget(self.mix_label)
        v.addWidget(self.sim_chart, 1)
        return page

    def _build_tokens_tab(self) -> QWidget:
        self.token_context = QComboBox()
        self.token_layer = QSpinBox()
        self.token_layer.setRange(0, 0)
        self.token_use_mix = QComboBox()
        self.token_use_mix.addItems(["this layer", "the layer mix"])
        self.token_chart = ChartWidget(title="Token similarity")
        for w in (self.token_context, self.token_use_mix):
            w.currentIndexChanged.connect(self._draw_tokens)
        self.token_layer.valueChanged.connect(self._draw_tokens)
        row = FlowLayout()
        for w in (QLabel("Sentence"), self.token_context, QLabel("Layer"), self.token_layer, QLabel("Use"),
                  self.token_use_mix):
            row.addWidget(w)
        row.addStretch(1)
        page = QWidget()
        v = QVBoxLayout(page)
        v.addLayout(row)
        v.addWidget(self.token_chart, 1)
        return page

    def _build_corpus_tab(self) -> QWidget:
        self.corpus_word = QLineEdit()
        self.corpus_word.setPlaceholderText("word to find in the dropped files")
        self.corpus_word.returnPressed.connect(self.run_corpus)  # Enter searches, as the button does
        self.corpus_layer = QSpinBox()
        self.corpus_layer.setRange(-1, 64)
        self.corpus_layer.setValue(-1)
        self.corpus_method = QComboBox()
        self.corpus_method.addItem("PCA", "pca")
        if umap_available():
            self.corpus_method.addItem("UMAP", "umap")
        self.corpus_color = QComboBox()
        self.corpus_color.addItem("colour by file", "file")
        self.corpus_color.addItem("colour by cluster (k-means, 2)", "cluster")
        self.corpus_button = QPushButton("Find in files")
        self.corpus_button.clicked.connect(self.run_corpus)
        self.files_label = QLabel()
        for w in (self.corpus_method, self.corpus_color):
            w.currentIndexChanged.connect(self._draw_corpus)
        self.corpus_layer.valueChanged.connect(self._draw_corpus)
        row = FlowLayout()
        for w in (QLabel("Word"), self.corpus_word, QLabel("Layer"), self.corpus_layer, self.corpus_method,
                  self.corpus_color, self.corpus_button):
            row.addWidget(w)
        row.addWidget(self.files_label, 1)
        self.corpus_chart = ChartWidget(title="Corpus")
        self.corpus_chart.pointClicked.connect(self._point_clicked)
        self.neighbours = QListWidget()
        self.neighbours.setWordWrap(True)
        split = QSplitter()
        split.addWidget(self.corpus_chart)
        side = QWidget()
        sv = QVBoxLayout(side)
        sv.setContentsMargins(0, 0, 0, 0)
        sv.addWidget(QLabel("Click a point: its nearest occurrences"))
        sv.addWidget(self.neighbours, 1)
        split.addWidget(side)
        split.setSizes([700, 300])
        page = QWidget()
        v = QVBoxLayout(page)
        v.addLayout(row)
        v.addWidget(split, 1)
        return page

    # ------------------------------------------------------------ contexts

    def _remove_row(self) -> None:
        if self.table.rowCount() > 2:
            self.table.removeRow(self.table.currentRow() if self.table.currentRow() >= 0 else self.table.rowCount() - 1)

    def set_contexts(self, contexts: list[tuple]) -> None:
        """Fill the table with (sentence, word, occurrence 1-based[, sense]) rows."""
        self.table.setRowCount(max(2, len(contexts)))
        for r, row in enumerate(contexts):
            text, word, occ = row[:3]
            sense = row[3] if len(row) > 3 else ""
            for c, value in enumerate((text, word, str(occ), sense)):
                self.table.setItem(r, c, QTableWidgetItem(value))

    def contexts(self) -> list[Context]:
        out = []
        for r in range(self.table.rowCount()):
            cells = [self.table.item(r, c).text().strip() if self.table.item(r, c) else "" for c in range(4)]
            if not cells[0]:
                continue
            if not cells[1]:
                raise InputError(f"Sentence {r + 1}: give the word to compare.")
            try:
                occ = int(cells[2] or 1)
            except ValueError:
                raise InputError(f"Sentence {r + 1}: the occurrence is a number (1 = first).") from None
            out.append(Context(cells[0], cells[1], max(1, occ) - 1, cells[3]))
        return out

    def _preset_chosen(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        preset = next((p for p in self.presets if p["name"] == name), None)
        if preset is None:
            return
        self.state.preset = name
        self.set_contexts([(c["text"], c["word"], c.get("occurrence", 1), c.get("sense", ""))
                           for c in preset["contexts"]])
        from explorer.core.models.catalog import list_models

        wanted = preset_model(preset, {e.name for e in list_models()} | set(self.ctx.models.loaded))
        if wanted and wanted in self.ctx.models.loaded:
            self.picker.select(wanted)
        elif wanted:
            self.note.setText(f"This preset is meant for {wanted}; loading it…")
            self.ctx.models.load(wanted, on_done=lambda _lm, w=wanted: (self.picker.select(w), self.compare()))
            return
        self.compare()

    def _mix(self) -> LayerMix:
        mode = self.mix_mode.currentData() or "layer"
        if mode == "weights":
            text = self.mix_weights.text().replace(";", ",")
            try:
                weights = [float(x) for x in text.split(",") if x.strip()]
            except ValueError:
                raise InputError("Layer weights are numbers separated by commas.") from None
            return LayerMix("weights", weights=weights)
        if mode == "last_n":
            return LayerMix("last_n", last_n=max(1, self.mix_layer.value()))
        return LayerMix("layer", layer=self.mix_layer.value())

    def compare(self) -> None:
        """Analyse the sentences and draw the per-layer similarity against the baseline."""
        lm = self.picker.current_model()
        if lm is None:
            self.note.setText("Load a model in the Models panel first.")
            return
        try:
            contexts = self.contexts()
            mix = self._mix()
        except InputError as err:
            self.note.setText(str(err))
            return
        if len(contexts) < 2:
            self.note.setText("Give at least two sentences, each with the word to compare.")
            return
        from explorer.core.inspect.embeddings import compare_contexts, load_reference_texts

        preset = next((p for p in self.presets if p["name"] == self.state.preset), None)
        reference = (preset or {}).get("reference") or load_reference_texts()
        # the progress bar counts every sentence analysed: the contexts and the baseline's reference pool
        self.note.setText(f"Running {lm.name} on your {len(contexts)} sentences and {len(reference)} reference "
                          f"sentences for the baseline ({len(contexts) + len(reference)} in all)…")
        self.compare_button.setEnabled(False)
        self.ctx.runner.submit(
            compare_contexts, lm, contexts, reference, mix, label="Embeddings", on_result=self.show_result,
            on_error=self._on_error, on_finished=lambda: self.compare_button.setEnabled(True),
        )

    def _on_error(self, message: str) -> None:
        self.note.setText(message)

    def view(self) -> str:
        return self.view_combo.currentData() or "raw"

    def _draw_similarity(self, *_args) -> None:
        if self.result is None:
            return
        self.sim_chart.set_spec(similarity_chart_spec(self.result, self.view()))
        self.note.setText(self._summary_text())
        self._show_mix()

    def _summary_text(self) -> str:
        r, view = self.result, self.view()
        best = r.best_layer(view)
        if best is not None:
            m = r.sense_means(view)
            b = r.baseline_for(view)[best]
            lead = m["same"][best] - m["different"][best]
            text = (f"{r.model_name}, {VIEWS[view]}: best layer {best}: same sense {m['same'][best]:.2f} vs "
                    f"different sense {m['different'][best]:.2f} ({'+' if lead >= 0 else ''}{lead:.2f}); baseline "
                    f"{b:.2f}. Thin lines are single pairs, thick lines the means; dashed: what two random tokens "
                    "of different sentences share.")
        else:
            first = r.pairs[0].values(view, r.baseline)
            text = (f"{r.model_name}: '{r.contexts[0].word}' {VIEWS[view]} goes from {first[0]:.2f} (embeddings) "
                    f"to {first[-1]:.2f} (last layer); the dashed line is what two random tokens of different "
                    "sentences already share. Label senses to see same- and different-sense pairs apart.")
        return " ".join([text] + r.notes)

    def show_result(self, result) -> None:
        self.result = result
        self.sim_chart.set_spec(similarity_chart_spec(result, self.view()))
        n_layers = len(result.baseline)
        self.token_layer.setRange(0, n_layers - 1)
        self.token_layer.setValue(n_layers - 1)
        self.token_context.blockSignals(True)
        self.token_context.clear()
        for i, c in enumerate(result.contexts):
            self.token_context.addItem(f"{i + 1}: {c.text[:50]}")
        self.token_context.blockSignals(False)
        self.note.setText(self._summary_text())
        self._mix_changed()
        self._draw_tokens()

    def _mix_changed(self, *_args) -> None:
        mode = self.mix_mode.currentData()
        self.mix_weights.setEnabled(mode == "weights")
        self.mix_layer.setEnabled(mode != "weights")
        if mode == "last_n" and self.mix_layer.value() < 1:
            self.mix_layer.setValue(4)  # re-enters here with a valid N
            return
        if self.result is None:
            return
        self._show_mix()
        if self.token_use_mix.currentIndex() == 1:
            self._draw_tokens()

    def _show_mix(self) -> None:
        """The pairs' cosine under the layer mix, in the view the chart shows (mean-centred cosines in the centred
        view: it printed raw cosines under a chart of centred ones)."""
        if self.result is None:
            return
        view, r = self.view(), self.result
        try:
            mix = self._mix()
            if mix != r.mix or view not in r.mixed:  # the result (and its JSON) holds every view under one mix
                r.mixed = {v: mixed_similarity(r, mix, v) for v in VIEWS}
                r.mix = mix
        except InputError as err:
            self.mix_label.setText(str(err))
            return
        values = r.mixed[view]
        parts = [f"{p.a + 1}·{p.b + 1}: {values[p.name]:.3f}" for p in r.pairs]
        what = {"raw": "Cosine", "centred": "Mean-centred cosine", "minus-baseline": "Cosine minus the baseline"}[view]
        self.mix_label.setText(f"{what} under the layer mix ({mix.describe()}): " + ", ".join(parts))

    def _draw_tokens(self, *_args) -> None:
        if self.result is None or not self.result.analyses:
            return
        i = max(0, self.token_context.currentIndex())
        a = self.result.analyses[min(i, len(self.result.contexts) - 1)]
        try:
            mix = self._mix() if self.token_use_mix.currentIndex() == 1 else None
            spec = token_similarity_spec(a, self.token_layer.value(), hide_special=True, mix=mix)
        except InputError as err:
            self.note.setText(str(err))
            return
        self.token_chart.set_spec(spec)

    # ------------------------------------------------------------ corpus

    def _files_changed(self) -> None:
        n = len(self.ctx.files)
        self.files_label.setText(f"{n} file(s) dropped" if n else "Drag text files into the window to search them")

    def run_corpus(self) -> None:
        lm = self.picker.current_model()
        word = self.corpus_word.text().strip()
        if lm is None:
            self.note.setText("Load a model in the Models panel first.")
            return
        if not word:
            self.note.setText("Type the word to find in the files.")
            return
        if not self.ctx.files:
            self.note.setText("Drag some text files into the window first: the corpus view searches them.")
            return
        from explorer.core.inspect.corpus import collect_corpus

        files = [(f.path.rsplit("/", 1)[-1], f.text) for f in self.ctx.files]
        self.corpus_button.setEnabled(False)
        self.note.setText(f"Finding '{word}' in {len(files)} file(s)…")
        self.ctx.runner.submit(collect_corpus, lm, files, word, label="Corpus", on_result=self.show_corpus,
                               on_error=self._on_error, on_finished=lambda: self.corpus_button.setEnabled(True))

    def show_corpus(self, corpus) -> None:
        self.corpus = corpus
        self.corpus_layer.setRange(-1, corpus.num_layers - 1)
        self.note.setText(f"{len(corpus.points)} occurrences of '{corpus.word}'. Hover a point for its sentence, "
                          "click it for its nearest neighbours. " + " ".join(corpus.notes))
        self._draw_corpus()

    def _draw_corpus(self, *_args) -> None:
        if self.corpus is None:
            return
        spec = corpus_chart_spec(self.corpus, self.corpus_layer.value(), self.corpus_method.currentData() or "pca",
                                 self.corpus_color.currentData() or "file")
        self._corpus_index = spec.meta["index"]
        self.corpus_chart.set_spec(spec)
        self.neighbours.clear()

    def _point_clicked(self, series: str, index: int) -> None:
        self.show_neighbours(self._corpus_index[series][index])

    def show_neighbours(self, point: int, k: int = 8) -> None:
        """List the occurrences nearest to ``point`` at the shown layer (cosine)."""
        c = self.corpus
        layer = self.corpus_layer.value() % c.num_layers
        p = c.points[point]
        self.neighbours.clear()
        self.neighbours.addItem(f"▶ {p.file}: {p.sentence}")
        for j, cos in nearest_neighbours(c.vectors[:, layer], point, k):
            q = c.points[j]
            self.neighbours.addItem(f"{cos:.3f}  {q.file}: {q.sentence}")

    # ------------------------------------------------------------ state

    def state_dict(self) -> dict:
        s = self.state
        s.model = self.picker.chosen_name() or ""
        rows = []
        for r in range(self.table.rowCount()):
            cells = [self.table.item(r, c).text() if self.table.item(r, c) else "" for c in range(4)]
            rows.append(cells)
        s.contexts = rows
        s.view = self.view()
        s.mix_mode = self.mix_mode.currentData() or "layer"
        s.mix_layer = self.mix_layer.value()
        s.mix_weights = self.mix_weights.text()
        s.corpus_word = self.corpus_word.text()
        s.corpus_layer = self.corpus_layer.value()
        s.corpus_method = self.corpus_method.currentData() or "pca"
        s.corpus_color = self.corpus_color.currentData() or "file"
        return state_to_dict(s)

    def restore_state(self, data: dict) -> None:
        self.state = state_from_dict(EmbeddingsState, data)
        s = self.state
        if s.contexts:
            self.set_contexts([(r[0], r[1], int(r[2]) if str(r[2]).isdigit() else 1, *r[3:4]) for r in s.contexts
                               if isinstance(r, list) and len(r) in (3, 4)])
        self.view_combo.setCurrentIndex(max(0, self.view_combo.findData(s.view)))
        self.mix_mode.setCurrentIndex(max(0, self.mix_mode.findData(s.mix_mode)))
        self.mix_layer.setValue(s.mix_layer)
        self.mix_weights.setText(s.mix_weights)
        self.corpus_word.setText(s.corpus_word)
        self.corpus_layer.setValue(s.corpus_layer)
        self.corpus_color.setCurrentIndex(max(0, self.corpus_color.findData(s.corpus_color)))
        if s.model:
            self.picker.select(s.model)

    def charts(self) -> list[ChartWidget]:
        return [c for c in (self.sim_chart, self.token_chart, self.corpus_chart) if c.spec is not None]
