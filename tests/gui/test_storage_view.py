"""Models panel → Storage: lists what the app wrote with sizes, clears an area only after the user agrees, and
the card of a GGUF model not converted yet says what its first load will write and where."""

from __future__ import annotations

import json

from PySide6.QtWidgets import QMessageBox

from explorer.core.models import catalog
from explorer.core.models.gguf import MANIFEST, SOURCE, _gguf_cache_folder


def _conversion(folder, payload: int):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0" * payload)
    (folder / SOURCE).write_text(json.dumps({"gguf": "x", "sha256": "y"}))
    (folder / MANIFEST).write_text("{}")
    return folder


def test_storage_lists_and_clears_after_confirmation(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("LM_EXPLORER_HOME", str(tmp_path / "lmx"))
    monkeypatch.setenv("LM_EXPLORER_DATA_DIR", str(tmp_path / "lmx" / "data"))
    from explorer.core.io import fileio
    from explorer.gui.main_window import MainWindow

    # the GGUF's sha256 remembered by an earlier test in this process would skip writing this home's note of it
    monkeypatch.setattr(fileio, "_KNOWN_SHA256", {})
    window = MainWindow(restore=False)
    qtbot.addWidget(window)
    converted = _conversion(_gguf_cache_folder(catalog.resolve("smollm2")), 4000)
    mine = converted.parent / "notes.txt"
    mine.write_text("mine")
    panel = window.show_panel("models")
    view = panel.storage
    panel.tabs.setCurrentWidget(view)  # showing the tab lists the areas
    qtbot.waitUntil(lambda: view.tree.topLevelItemCount() == 4, timeout=60000)
    top = view.tree.topLevelItem(0)
    # the conversion, and the app's note of the GGUF's sha256 (made when the conversion's name was worked out)
    assert top.text(0) == "Converted models (2)"
    assert {top.child(i).text(0) for i in range(2)} == {converted.name, "gguf-sha256.json"}
    assert top.text(2) == str(converted.parent)
    top.setSelected(True)
    assert view.clear_btn.isEnabled()

    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    view.clear_selected()
    assert len(asked) == 1 and "Delete 2 item(s)" in asked[0] and converted.is_dir()

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    view.clear_selected()
    qtbot.waitUntil(lambda: not converted.exists() and view.tree.topLevelItem(0).text(0) == "Converted models (0)",
                    timeout=60000)
    assert mine.read_text() == "mine" and not view.clear_btn.isEnabled()


def test_card_says_what_the_first_load_writes(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("LM_EXPLORER_HOME", str(tmp_path / "lmx"))
    monkeypatch.setenv("LM_EXPLORER_DATA_DIR", str(tmp_path / "lmx" / "data"))
    from explorer.gui.main_window import MainWindow

    window = MainWindow(restore=False)
    qtbot.addWidget(window)
    panel = window.show_panel("models")
    panel.select("gemma3")
    qtbot.waitUntil(lambda: "first load writes about 1.3 GB" in panel.card_desc.text(), timeout=60000)
    assert str(tmp_path / "lmx" / "cache" / "converted") in panel.card_desc.text()
