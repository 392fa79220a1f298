"""Models panel: list what can be loaded offline, load/unload in the background, model cards, comparison."""

from __future__ import annotations

import re
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.core.io.charts import ChartSpec, Series
from explorer.core.io.errors import ExplorerError
from explorer.core.models import catalog
from explorer.core.models.format import card_lines
from explorer.gui.panels.base import Panel
from explorer.gui.panels.shrink_view import ShrinkView
from explorer.gui.panels.storage_view import StorageView
from explorer.gui.widgets.chart import ChartWidget
from explorer.gui.widgets.flow import FlowLayout
from explorer.gui.widgets.model_picker import short_name


def _group_label(name: str, width: int = 8) -> str:
    """A model's name under its bars: the short name, cut at its end when longer than ``width``."""
    short = short_name(name)
    return short if len(short) <= width else short[: width - 1] + "…"


def wrap_name(name: str, width: int = 10) -> str:
    """A model's short name on lines of about ``width`` characters, broken after - _ . ( or a space, for a table
    header that must show the whole name ("t-frozen-2(…" was cut even at 1920 px)."""
    lines, line = [], ""
    for part in re.split(r"(?<=[-_.( ])", short_name(name)):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    return "\n".join(lines + [line])


def comparison_spec(cards: list) -> ChartSpec:
    """Parameters per loaded model, in millions (the lecture's 'bigger and smaller models'): all of them, and
    without the embedding tables (Kaplan et al.); bytes are another unit and have their own chart."""
    x = list(range(len(cards)))
    return ChartSpec(
        title="Loaded models: parameters",
        x_label="model",
        y_label="millions of parameters",
        series=[
            Series("all parameters", x, [c.num_parameters / 1e6 for c in cards], style="bar"),
            Series("without embeddings (Kaplan et al.)", x,
                   [c.num_parameters_non_embedding / 1e6 for c in cards], style="bar"),
        ],
        x_ticks=[(i, _group_label(c.name)) for i, c in enumerate(cards)],
        meta={"models": [c.name for c in cards]},
    )


def bytes_spec(cards: list) -> ChartSpec:
    """Memory and disk size per loaded model, in MB."""
    x = list(range(len(cards)))
    return ChartSpec(
        title="Loaded models: memory and disk",
        x_label="model",
        y_label="MB",
        series=[
            Series("in memory", x, [c.bytes_in_memory / 2**20 for c in cards], style="bar"),
            Series("on disk", x, [c.bytes_on_disk / 2**20 for c in cards], style="bar"),
        ],
        x_ticks=[(i, _group_label(c.name)) for i, c in enumerate(cards)],
        meta={"models": [c.name for c in cards]},
    )


@dataclass
class ModelsState:
    """The saved settings' shapes (the panel saves a plain dict of these)."""

    selected: str = ""
    tab: int = 0
    shrink_tab: int = 0  # Smaller models: int8, pruning or distillation
    prune_data: str = "sentiment"
    prune_step: int = 6


class ModelsPanel(Panel):
    key = "models"
    title = "Models"
    summary = "Load the bundled encoder and decoder or your own; read and compare their cards."
    state_class = ModelsState

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self._cards: dict[str, object] = {}

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Model", "Kind", "Source", "Status"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.itemDoubleClicked.connect(lambda *_: self.load_selected())

        self.load_btn = QPushButton("Load")
        self.load_btn.clicked.connect(self.load_selected)
        self.unload_btn = QPushButton("Unload")
        self.unload_btn.clicked.connect(self.unload_selected)
        add_btn = QPushButton("Add folder…")
        add_btn.setToolTip("Add a local Hugging Face model folder (config.json) or a folder with a .gguf file")
        add_btn.clicked.connect(self.add_folder_dialog)
        refresh_btn = QPushButton("Refresh")
        refresh_btn.setToolTip("Look again for models in the Hugging Face cache and your folders")
        refresh_btn.clicked.connect(self.refresh)
        buttons = FlowLayout()
        for b in (self.load_btn, self.unload_btn, add_btn, refresh_btn):
            buttons.addWidget(b)

        self.spec_edit = QLineEdit()
        self.spec_edit.setPlaceholderText("folder path or hub id (org/name) to open")
        self.spec_edit.returnPressed.connect(self.open_spec)
        open_btn = QPushButton("Open")
        open_btn.clicked.connect(self.open_spec)
        self.trust = QCheckBox("Trust remote code for this model")
        self.trust.setToolTip("Lets the model's own Python code run. Only for authors you trust.")
        open_row = QHBoxLayout()
        open_row.addWidget(self.spec_edit, 1)
        open_row.addWidget(open_btn)

        self.message = QLabel()
        self.message.setWordWrap(True)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        intro = QLabel(
            "<b>Models available offline.</b> Double-click to load. <i>minilm</i> is a 6-layer BERT encoder "
            "(sees the whole sentence), <i>minilm-mlm</i> the same with masked-LM pre-training continued so it "
            "fills masks; <i>smollm2</i> is a 30-layer GPT-style decoder (sees only the left context); "
            "<i>gemma3</i> is Google's 18-layer Gemma 3 270M base decoder with a multilingual SentencePiece "
            "vocabulary (Gemma Terms of Use)."
        )
        intro.setWordWrap(True)
        lv.addWidget(intro)
        lv.addWidget(self.tree, 1)
        lv.addLayout(buttons)
        lv.addLayout(open_row)
        lv.addWidget(self.trust)
        lv.addWidget(self.message)

        self.card_table = QTableWidget(0, 2)
        self._setup_table(self.card_table, ["Field", "Value"])
        self.card_desc = QLabel()
        self.card_desc.setWordWrap(True)
        card_page = QWidget()
        cv = QVBoxLayout(card_page)
        cv.addWidget(self.card_desc)
        cv.addWidget(self.card_table, 1)

        self.compare_table = QTableWidget(0, 0)
        self._setup_table(self.compare_table, [])
        self.compare_chart = ChartWidget(title="Loaded models: parameters")
        self.bytes_chart = ChartWidget(title="Loaded models: memory and disk")
        charts = QWidget()
        ch = QVBoxLayout(charts)  # one above the other: each has the whole width for the models' names
        ch.setContentsMargins(0, 0, 0, 0)
        ch.addWidget(self.compare_chart)
        ch.addWidget(self.bytes_chart)
        compare_page = QSplitter(Qt.Orientation.Vertical)
        compare_page.addWidget(self.compare_table)
        compare_page.addWidget(charts)
        compare_page.setSizes([300, 250])

        self.storage = StorageView(ctx)
        self.shrink = ShrinkView(ctx)
        self.tabs = QTabWidget()
        self.tabs.addTab(card_page, "Model card")
        self.tabs.addTab(compare_page, "Compare loaded models")
        self.tabs.addTab(self.storage, "Storage")
        self.tabs.addTab(self.shrink, "Smaller models")
        # Listed when shown (a load may have written since), never while the window starts.
        self.tabs.currentChanged.connect(lambda i: self.storage.refresh() if self.tabs.widget(i) is self.storage else None)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.tabs)
        splitter.setSizes([420, 640])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

        ctx.models.changed.connect(self._models_changed)
        ctx.models.loadFailed.connect(self._load_failed)
        self.refresh()

    @staticmethod
    def _setup_table(table: QTableWidget, headers: list[str]) -> None:
        table.setHorizontalHeaderLabels(headers)
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setWordWrap(True)
        table.horizontalHeader().setStretchLastSection(True)

    # ------------------------------------------------------------ list

    def refresh(self) -> None:
        selected = self.selected_name()
        self.entries = {e.name: e for e in catalog.list_models()}
        for name in self.ctx.models.loaded:
            self.entries.setdefault(name, self.ctx.models.loaded[name].entry)
        self.tree.blockSignals(True)
        self.tree.clear()
        for name, entry in self.entries.items():
            lm = self.ctx.models.loaded.get(name)
            kind = lm.kind if lm is not None else entry.kind  # a folder's kind is known once it is loaded
            item = QTreeWidgetItem([short_name(name), kind if kind != "unknown" else "", entry.source, self._status(name)])
            item.setToolTip(0, (entry.description or entry.location) + (f"\n{name}" if short_name(name) != name else ""))
            item.setData(0, Qt.ItemDataRole.UserRole, name)
            self.tree.addTopLevelItem(item)
            if name == selected:
                item.setSelected(True)
        if not self.tree.selectedItems() and self.tree.topLevelItemCount():
            self.tree.topLevelItem(0).setSelected(True)
        self.tree.blockSignals(False)
        self._selection_changed(describe=False)
        for col in (1, 2, 3):
            self.tree.resizeColumnToContents(col)
        self._update_compare()

    def _status(self, name: str) -> str:
        if name in self.ctx.models.loaded:
            lm = self.ctx.models.loaded[name]
            return f"loaded ({lm.load_seconds:.1f} s)"
        if name in self.ctx.models.loading:
            return "loading…"
        return ""

    def selected_name(self) -> str | None:
        items = self.tree.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole) if items else None

    def select(self, name: str) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            item.setSelected(item.data(0, Qt.ItemDataRole.UserRole) == name)

    def _models_changed(self) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            name = item.data(0, Qt.ItemDataRole.UserRole)
            item.setText(3, self._status(name))
            if name in self.ctx.models.loaded:
                item.setText(1, self.ctx.models.loaded[name].kind)
        known = {self.tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole) for i in range(self.tree.topLevelItemCount())}
        if set(self.ctx.models.loaded) - known:
            self.refresh()
        self._selection_changed(describe=False)
        self._update_compare()

    # ------------------------------------------------------------ actions

    def load_selected(self) -> None:
        name = self.selected_name()
        if not name:
            self._say("Choose a model in the list first.")
            return
        if self.trust.isChecked() and name not in self.ctx.models.trusted:
            answer = QMessageBox.question(
                self, "Trust remote code?",
                f"Loading '{name}' with remote code runs Python files from its folder or hub page on this computer. "
                "Only do this for authors you trust. Continue?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
            self.ctx.models.trusted.add(name)
        entry = next((e for e in catalog.list_models() if e.name == name), None)
        first = ""
        if entry is not None and entry.gguf_file:
            first = (" (the first load " + ("assembles the GGUF from its chunk packages and " if entry.assemble_from
                                            else "") + "de-quantises it once: up to a minute or two)")
        self._say(f"Loading {name}…{first}")
        self.ctx.models.load(name, on_done=lambda lm: self._say(f"Loaded {lm.name} in {lm.load_seconds:.1f} s."))

    def unload_selected(self) -> None:
        name = self.selected_name()
        if name in self.ctx.models.loaded:
            self.ctx.models.unload(name)
            self._say(f"Unloaded {name}.")

    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder")
        if folder:
            self.add_folder(folder)

    def add_folder(self, folder: str) -> None:
        try:
            entry = catalog.add_user_folder(folder)
        except ExplorerError as err:
            self._say(str(err), error=True)
            return
        self.refresh()
        self.select(entry.name)
        self._say(f"Added {entry.name}. Double-click it to load.")

    def open_spec(self) -> None:
        spec = self.spec_edit.text().strip()
        if not spec:
            return
        try:
            entry = catalog.resolve(spec)
        except ExplorerError as err:
            self._say(str(err), error=True)
            return
        if entry.source == "folder":
            self.add_folder(entry.location if not entry.gguf_file else f"{entry.location}/{entry.gguf_file}")
            return
        self.entries[entry.name] = entry
        self.ctx.models.load(entry.name)
        self.refresh()
        self.select(entry.name)

    def _load_failed(self, name: str, message: str) -> None:
        self._say(message, error=True)

    def _say(self, message: str, error: bool = False) -> None:
        self.message.setText(message)
        self.message.setStyleSheet("color: #a00;" if error else "color: #225;")
        if error:
            self.ctx.error(message)
        else:
            self.ctx.status(message)

    # ------------------------------------------------------------ cards

    def _selection_changed(self, describe: bool = True) -> None:
        name = self.selected_name()
        self.load_btn.setEnabled(bool(name) and name not in self.ctx.models.loaded)
        self.unload_btn.setEnabled(name in self.ctx.models.loaded)
        if not name:
            return
        if name in self.ctx.models.loaded:
            self._show_card(self.ctx.models.loaded[name].card)
        elif name in self._cards:
            self._show_card(self._cards[name])
        else:
            entry = self.entries.get(name)
            self.card_desc.setText((entry.description + "\n\n" if entry and entry.description else "")
                                   + "Load the model to see its full card.")
            self.card_table.setRowCount(0)
            if describe and entry is not None and entry.gguf_file:
                from explorer.core.models.storage import first_load_writes

                self.ctx.runner.submit(first_load_writes, entry, label=f"Checking what loading {name} writes",
                                       on_result=lambda first, n=name: self._first_load(n, first))
            if describe and entry is not None and (entry.source != "bundled" or not entry.gguf_file):
                from explorer.core.models.loading import describe

                self.ctx.runner.submit(describe, entry, label=f"Reading the card of {name}",
                                       on_result=lambda card, n=name: self._card_ready(n, card),
                                       on_error=lambda msg: self.card_desc.setText(msg))

    def _first_load(self, name: str, first) -> None:
        """Say on the card, before the first load, what it will write to disk and where."""
        if first is not None and self.selected_name() == name and name not in self.ctx.models.loaded:
            self.card_desc.setText(self.card_desc.text() + "\n\n" + first.text)

    def _card_ready(self, name: str, card) -> None:
        self._cards[name] = card
        if self.selected_name() == name:
            self._show_card(card)

    def _show_card(self, card) -> None:
        self.card_desc.setText(card.description or card.location)
        rows = card_lines(card)
        self.card_table.setRowCount(len(rows))
        for i, (k, v) in enumerate(rows):
            self.card_table.setItem(i, 0, QTableWidgetItem(k))
            self.card_table.setItem(i, 1, QTableWidgetItem(v))
        self.card_table.resizeColumnToContents(0)

    def _update_compare(self) -> None:
        cards = [lm.card for lm in self.ctx.models.loaded.values()]
        self.compare_table.clear()
        if not cards:
            self.compare_table.setRowCount(1)
            self.compare_table.setColumnCount(1)
            self.compare_table.setHorizontalHeaderLabels([""])
            self.compare_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
            self.compare_table.setItem(0, 0, QTableWidgetItem("Load two or more models to compare them side by side."))
            self.compare_chart.clear()
            self.bytes_chart.clear()
            return
        rows = [card_lines(c) for c in cards]
        self.compare_table.setColumnCount(len(cards) + 1)
        self.compare_table.setRowCount(len(rows[0]))
        self.compare_table.setHorizontalHeaderLabels(["Field"] + [wrap_name(c.name) for c in cards])
        for i, c in enumerate(cards, 1):
            self.compare_table.horizontalHeaderItem(i).setToolTip(c.name)
        for r, (label, _v) in enumerate(rows[0]):
            self.compare_table.setItem(r, 0, QTableWidgetItem(label))
            for c, card_rows in enumerate(rows):
                self.compare_table.setItem(r, c + 1, QTableWidgetItem(card_rows[r][1]))
        # The field names take what they need; the models share the rest equally and wrap long values, so
        # every loaded model's column is on screen side by side.
        header = self.compare_table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        for c in range(1, len(cards) + 1):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch)
        # A model's column is never narrower than its wrapped name: with many models the table scrolls sideways
        # rather than cut a header.
        fm = header.fontMetrics()
        widest = max(fm.horizontalAdvance(line) for c in cards for line in wrap_name(c.name).split("\n"))
        header.setMinimumSectionSize(widest + 16)
        self.compare_table.resizeRowsToContents()
        self.compare_chart.set_spec(comparison_spec(cards))
        self.bytes_chart.set_spec(bytes_spec(cards))

    # ------------------------------------------------------------ state

    def state_dict(self) -> dict:
        return {"selected": self.selected_name(), "tab": self.tabs.currentIndex(), **self.shrink.state_dict()}

    def restore_state(self, data: dict) -> None:
        if data.get("selected"):
            self.select(data["selected"])
        if isinstance(data.get("tab"), int):
            self.tabs.setCurrentIndex(data["tab"])
        self.shrink.restore_state(data)

