"""The Models panel's Storage tab: every folder the app writes to, what it holds with sizes, and clearing an
area after a confirmation. The listing and the deleting are core functions (``core.models.storage``) run in
the job runner; only files the app wrote are listed or deleted."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.core.models.format import human_bytes


class StorageView(QWidget):
    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.areas: list = []
        self.intro = QLabel(
            "What LM Explorer has written to disk. Clearing an area deletes only the files the app wrote there "
            "(converted models are made again at the next load). Set LM_EXPLORER_HOME or XDG_CACHE_HOME to keep "
            "them elsewhere.")
        self.intro.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["What", "Size", "Where"])
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.header().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.total = QLabel()
        self.refresh_btn = QPushButton("Refresh")
        self.refresh_btn.clicked.connect(self.refresh)
        self.clear_btn = QPushButton("Clear…")
        self.clear_btn.setToolTip("Delete what the selected area holds (you are asked first)")
        self.clear_btn.clicked.connect(self.clear_selected)
        self.clear_btn.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.total, 1)
        row.addWidget(self.refresh_btn)
        row.addWidget(self.clear_btn)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(self.tree, 1)
        layout.addLayout(row)

    def refresh(self) -> None:
        """List the areas again, in the background (sizes walk folders that may sit on a slow drive)."""
        from explorer.core.models.storage import list_storage

        self.refresh_btn.setEnabled(False)
        self.ctx.runner.submit(list_storage, label="Reading what the app stored", on_result=self.show_areas,
                               on_error=self.ctx.error, on_finished=lambda: self.refresh_btn.setEnabled(True))

    def show_areas(self, areas: list) -> None:
        selected = self.selected_key()
        self.areas = areas
        self.tree.clear()
        for area in areas:
            top = QTreeWidgetItem([f"{area.label} ({len(area.items)})", human_bytes(area.bytes), area.location])
            top.setToolTip(0, area.what)
            top.setData(0, Qt.ItemDataRole.UserRole, area.key)
            top.setTextAlignment(1, Qt.AlignmentFlag.AlignRight)
            for item in area.items:
                child = QTreeWidgetItem([item.name, human_bytes(item.bytes), item.path])
                child.setTextAlignment(1, Qt.AlignmentFlag.AlignRight)
                child.setData(0, Qt.ItemDataRole.UserRole, area.key)
                top.addChild(child)
            self.tree.addTopLevelItem(top)
            if area.key == selected:
                top.setSelected(True)
        self.tree.expandAll()
        self.tree.resizeColumnToContents(0)
        self.tree.resizeColumnToContents(1)
        self.total.setText(f"In all: {human_bytes(sum(a.bytes for a in areas))}")
        self._selection_changed()

    def selected_key(self) -> str | None:
        items = self.tree.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole) if items else None

    def _selection_changed(self) -> None:
        area = self._area(self.selected_key())
        self.clear_btn.setEnabled(area is not None and bool(area.items))

    def _area(self, key: str | None):
        return next((a for a in self.areas if a.key == key), None)

    def clear_selected(self, confirm: bool = True) -> None:
        area = self._area(self.selected_key())
        if area is None or not area.items:
            return
        if confirm:
            answer = QMessageBox.question(
                self, f"Clear {area.label.lower()}?",
                f"Delete {len(area.items)} item(s), {human_bytes(area.bytes)}, from {area.location}?\n\n{area.what}",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        from explorer.core.models.storage import clear_storage

        self.clear_btn.setEnabled(False)
        self.ctx.runner.submit(clear_storage, area.key, label=f"Clearing {area.label.lower()}",
                               on_result=lambda freed: self.ctx.status(f"Freed {human_bytes(freed)}."),
                               on_error=self.ctx.error, on_finished=self.refresh)
