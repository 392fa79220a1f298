"""Bad input in the window: too-big models ask first, bad files say why, and a killed app gets its text back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

ROOT = Path(__file__).resolve().parents[2]
_Mem = namedtuple("_Mem", "available total")


def _low_memory(monkeypatch) -> None:
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: _Mem(available=1000, total=2000))


def test_too_big_model_asks_and_loads_when_agreed(window, qtbot, monkeypatch, tiny_factory):
    folder = str(tiny_factory("mlm"))
    _low_memory(monkeypatch)
    asked: list[str] = []

    def answer(_parent, _title, text, *_args):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    window.ctx.models.load(folder)
    qtbot.waitUntil(lambda: folder in window.ctx.models.loaded, timeout=60_000)
    assert len(asked) == 1
    assert "needs about" in asked[0] and "only 0 MB is free" in asked[0] and asked[0].endswith("Load it anyway?")
    qtbot.waitUntil(lambda: not window.ctx.models.loading, timeout=10_000)
    assert window.ctx.models.loaded[folder].card.hidden_size == 32


def test_too_big_model_declined_is_a_message(window, qtbot, monkeypatch, tiny_factory):
    folder = str(tiny_factory("mlm"))
    _low_memory(monkeypatch)
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.No)
    window.show_panel("models")
    with qtbot.waitSignal(window.ctx.models.loadFailed, timeout=60_000) as blocker:
        window.ctx.models.load(folder)
    assert blocker.args[1].startswith("Not loaded: '") and "needs about" in blocker.args[1]
    qtbot.waitUntil(lambda: not window.ctx.models.loading, timeout=10_000)
    assert folder not in window.ctx.models.loaded
    assert window.banner_box.isVisible() and "needs about" in window.banner.text()


def test_binary_file_keeps_text_and_says_why(window, tmp_path):
    window.text_input.set_text("My own words.")
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8)
    assert window.text_input.open_files([str(path)]) == []
    assert window.ctx.text.text() == "My own words."
    notice = window.text_input.notice.text()
    assert "photo.jpg looks like a binary file, not text" in notice and "Your text is unchanged." in notice


def test_non_utf8_files_load_with_a_note(window, tmp_path):
    latin = tmp_path / "francais.txt"
    latin.write_bytes("Le café est très bon à Paris.".encode("latin-1"))
    chinese = tmp_path / "zhongwen.txt"
    chinese.write_bytes("哈巴狗和单身狗都有一个狗字。".encode("gbk"))
    window.text_input.open_files([str(latin)])
    assert window.ctx.text.text() == "Le café est très bon à Paris."
    assert "Its encoding is Latin-1, not UTF-8; the text was converted." in window.text_input.notice.text()
    window.text_input.open_files([str(chinese)])
    assert window.ctx.text.text() == "哈巴狗和单身狗都有一个狗字。"
    assert "Its encoding is GBK (Chinese), not UTF-8" in window.text_input.notice.text()


def test_not_a_model_folder_in_models_panel(window, tmp_path):
    (tmp_path / "holiday.txt").write_text("photos")
    panel = window.show_panel("models")
    panel.add_folder(str(tmp_path))
    assert "is not a model folder: it has no config.json" in panel.message.text()
    assert window.banner_box.isVisible()


_DRIVER = r"""
import os, signal, sys
from pathlib import Path
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
app = QApplication([])
from explorer.core.io.fileio import read_text_file
from explorer.gui.main_window import MainWindow
w = MainWindow()
w.show()
QTest.keyClicks(w.text_input.edit, sys.argv[1])  # typed key by key (ASCII only: QTest's limit)
w.text_input.edit.insertPlainText(sys.argv[2])  # then pasted
w.ctx.add_files([read_text_file(sys.argv[3])])
w.show_panel("attention")
print("typed", flush=True)
# Well after the 250 ms input debounce and the 500 ms save debounce; no close event, no atexit: kill -9.
QTimer.singleShot(2000, lambda: os.kill(os.getpid(), signal.SIGKILL))
app.exec()
"""


def test_session_survives_kill_9(qtbot, tmp_path, monkeypatch):
    data = tmp_path / "data"
    note = tmp_path / "note.txt"
    note.write_text("a dropped file", encoding="utf-8")
    typed, pasted = "Typed before the crash:", " 单身狗 and café."
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LM_EXPLORER_DATA_DIR=str(data))
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, typed, pasted, str(note)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    assert "typed" in proc.stdout

    monkeypatch.setenv("LM_EXPLORER_DATA_DIR", str(data))
    from explorer.gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    assert w.text_input.text() == typed + pasted
    assert w.ctx.text.text() == typed + pasted
    qtbot.waitUntil(lambda: [f.path for f in w.ctx.files] == [str(note)], timeout=10000)  # read in a job
    assert w.nav.currentItem().text() == "Attention"


def test_a_file_with_a_line_too_long_to_show_is_refused_and_left_alone(window, tmp_path):
    """A single-line file over the text box's limit (a 10 MB one froze the window) is read but not shown: the
    box keeps the user's text, the notice says why, the file is unchanged. A paste of such a line likewise."""
    from PySide6.QtCore import QMimeData

    from explorer.core.io.limits import MAX_SHOWN_LINE

    window.text_input.set_text("My own words.")
    path = tmp_path / "one-line.txt"
    body = ("y" * (MAX_SHOWN_LINE + 10)).encode()
    path.write_bytes(body)
    assert window.text_input.open_files([str(path)]) == []
    assert window.ctx.text.text() == "My own words."
    notice = window.text_input.notice.text()
    assert f"one-line.txt has a line of {MAX_SHOWN_LINE + 10:,} characters" in notice
    assert "Your text is unchanged." in notice
    assert path.read_bytes() == body and window.ctx.files == []
    pasted = QMimeData()
    pasted.setText("z" * (MAX_SHOWN_LINE + 1))
    window.text_input.edit.insertFromMimeData(pasted)
    assert window.text_input.text() == "My own words."
    assert "The pasted text has a line of" in window.text_input.notice.text()
    pasted.setText(" and more")
    window.text_input.edit.insertFromMimeData(pasted)  # a paste the box can show goes in as ever
    assert window.text_input.text().endswith(" and more")
