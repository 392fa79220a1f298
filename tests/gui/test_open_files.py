"""``lm-explorer FILE...`` in the window: files go through the same checks as dropped ones; labelled sets open
in the fine-tune lab; the status bar warns once when no font covers Chinese."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from explorer.core.io.fileio import MAX_BYTES

ROOT = Path(__file__).resolve().parents[2]
CHINESE = "我养了一只哈巴狗，它每天都在院子里跑来跑去。过年的时候，我还是一只单身狗。"


def _labelled_csv(path: Path) -> Path:
    rows = [("a lovely, moving film", "positive"), ("dull and far too long", "negative"),
            ("I smiled all the way through", "positive"), ("the plot makes no sense", "negative"),
            ("great acting and music", "positive"), ("a waste of an evening", "negative"),
            ("charming from start to end", "positive"), ("I walked out early", "negative")]
    path.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in rows), encoding="utf-8")
    return path


def test_open_paths_texts_corpus_lab_and_refusals(window, qtbot, tmp_path):
    window.text_input.set_text("text from the last session")
    a = tmp_path / "a.txt"
    a.write_text("The river bank was muddy.", encoding="utf-8")
    gbk = tmp_path / "dogs.txt"
    gbk.write_bytes(CHINESE.encode("gbk"))
    binary = tmp_path / "photo.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
    big = tmp_path / "big.txt"
    big.write_bytes(b"All work and no play makes Jack a dull boy.\n" * (MAX_BYTES // 44 + 2000))
    data = _labelled_csv(tmp_path / "reviews.csv")
    window.open_paths([str(a), str(gbk), str(binary), str(big), str(data)])

    assert window.text_input.text() == "The river bank was muddy."
    window.text_input.edit.undo()  # the previous text is one Ctrl+Z away, as with a drop
    assert window.text_input.text() == "text from the last session"
    files = {Path(f.path).name: f for f in window.ctx.files}
    assert list(files) == ["a.txt", "dogs.txt", "big.txt"]
    assert files["dogs.txt"].text == CHINESE and files["dogs.txt"].encoding == "gbk"
    assert len(files["big.txt"].text.encode()) <= MAX_BYTES
    notice = window.text_input.notice.text()
    assert "photo.txt looks like a binary file" in notice
    assert "big.txt is" in notice and "10 MB limit" in notice

    heads = window.panels["heads"]
    assert window.stack.currentWidget().isAncestorOf(heads)
    assert heads.tabs.currentIndex() == 1
    assert heads.data_path.text() == str(data)
    assert heads.data is not None and heads.data.task == "classify"
    assert sorted(heads.data.labels) == ["negative", "positive"]
    assert "reviews.csv" in window.statusBar().currentMessage()


def test_csv_that_is_not_a_labelled_set_goes_into_the_text_box(window, tmp_path):
    table = tmp_path / "prices.csv"
    table.write_text("item,price\napple,1\n", encoding="utf-8")
    window.open_paths([str(table)])
    assert window.text_input.text() == "item,price\napple,1\n"
    assert "heads" not in window.panels


def test_lm_explorer_file_opens_the_window_with_it(qtbot, data_dir, tmp_path, monkeypatch):
    """The real entry point: cli.main([FILE]) builds the window, opens the file, runs the event loop."""
    from explorer import cli
    from explorer.gui.main_window import MainWindow

    monkeypatch.setattr(MainWindow, "after_first_paint", lambda self: None)  # no model loads in this test
    note = tmp_path / "note.txt"
    note.write_text("Opened from a file manager.", encoding="utf-8")
    seen = {}

    def look_and_leave():
        w = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
        seen.update(window=w, text=w.text_input.text(), files=[f.path for f in w.ctx.files])
        # Leave the event loop only; closing the last window inside it would also post a quit that ends the
        # next test's event loop.
        QApplication.exit(0)

    QTimer.singleShot(300, look_and_leave)
    assert cli.main([str(note)]) == 0
    qtbot.addWidget(seen.pop("window"))  # closed after the test, outside app.exec
    assert seen == {"text": "Opened from a file manager.", "files": [str(note)]}


def _fc_has_chinese() -> bool:
    out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=60).stdout
    return bool(out.strip())


def test_cjk_font_check_agrees_with_fontconfig(window, qtbot):
    from explorer.gui.fonts import cjk_font_families

    assert shutil.which("fc-list"), "fontconfig's fc-list is the independent reference"
    assert bool(cjk_font_families()) == _fc_has_chinese()
    window.check_fonts()
    assert window.font_warning.isHidden() == _fc_has_chinese()


def test_no_cjk_font_warns_once_in_the_status_bar(tmp_path):
    """A fontconfig setup that only knows DejaVu (Latin, Greek, Cyrillic): the window warns, once."""
    dejavu = Path("/usr/share/fonts/truetype/dejavu")
    assert dejavu.is_dir()
    conf = tmp_path / "fonts.conf"
    conf.write_text(f'<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd">'
                    f"<fontconfig><dir>{dejavu}</dir><cachedir>{tmp_path / 'fc-cache'}</cachedir></fontconfig>")
    code = (
        "import json\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from explorer.gui.main_window import MainWindow\n"
        "from explorer.gui.fonts import cjk_font_families\n"
        "w = MainWindow(restore=False); w.show()\n"
        "for _ in range(5): app.processEvents()\n"
        "first = (w.font_warning.isVisible(), w.font_warning.text(), w.statusBar().currentMessage())\n"
        "w.statusBar().showMessage('something else'); w.check_fonts()\n"
        "print(json.dumps({'families': cjk_font_families(), 'visible': first[0], 'label': first[1],"
        " 'message': first[2], 'after_second_check': w.statusBar().currentMessage()}))\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", FONTCONFIG_FILE=str(conf),
               LM_EXPLORER_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["families"] == []
    assert out["visible"] is True
    assert "No font for Chinese" in out["label"]
    assert "fonts-noto-cjk" in out["message"]
    assert out["after_second_check"] == "something else"  # warned once, not again
