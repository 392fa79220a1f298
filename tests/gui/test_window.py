"""The main window: panels, the job runner, dropped files, chart export, session persistence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage

from explorer.core.io.charts import ChartSpec, Series
from explorer.core.io.errors import Cancelled, InputError
from explorer.core.io.progress import check
from explorer.gui.main_window import PANELS

ROOT = Path(__file__).resolve().parents[2]


def test_every_panel_opens(window):
    for i, (key, _cls, label) in enumerate(PANELS):
        window.nav.setCurrentRow(i)
        panel = window.panels[key]
        assert panel.isVisible()
        assert window.nav.item(i).text() == label


def test_window_paints_before_torch_is_imported(tmp_path):
    code = (
        "import sys, os\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from explorer.gui.main_window import MainWindow\n"
        "w = MainWindow(restore=False); w.show(); app.processEvents()\n"
        "img = w.grab()\n"
        "print('painted', img.width() > 0, 'torch', 'torch' in sys.modules, 'transformers', 'transformers' in sys.modules)\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LM_EXPLORER_DATA_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "painted True torch False transformers False" in out.stdout, out.stdout + out.stderr


def test_after_first_paint_prepares_the_model_libraries_before_any_load(window, qtbot, monkeypatch):
    """The warm-up job (explorer.core.models.warmup) is submitted before the session's loads, and only when needed."""
    from explorer.core.io.errors import ModelError
    from explorer.core.models import warmup
    from explorer.gui import context

    ran: list[str] = []
    monkeypatch.setattr(warmup, "is_warm", lambda: False)
    monkeypatch.setattr(warmup, "warm_up", lambda progress=None, cancel=None: ran.append("warm-up"))

    def fake_load(name, **_kw):
        ran.append(name)
        raise ModelError(f"{name} is not loaded in this test")

    monkeypatch.setattr(context, "_load_or_too_big", fake_load)
    started: list[str] = []
    window.ctx.runner.jobStarted.connect(lambda job: started.append(job.label))
    window.after_first_paint()  # an empty session: the default bundled models
    assert started == ["Preparing the model libraries", "Loading minilm", "Loading minilm-mlm", "Loading smollm2"]
    qtbot.waitUntil(lambda: not window.ctx.runner.active, timeout=10_000)
    assert sorted(ran) == ["minilm", "minilm-mlm", "smollm2", "warm-up"]
    monkeypatch.setattr(warmup, "is_warm", lambda: True)
    assert window.ctx.models.warm_up() is None  # warm already: no job


def test_load_model_through_job_runner(window, qtbot):
    with qtbot.waitSignal(window.ctx.models.changed, timeout=120_000, check_params_cb=lambda: "minilm" in window.ctx.models.loaded):
        window.ctx.models.load("minilm")
    qtbot.waitUntil(lambda: "minilm" in window.ctx.models.loaded, timeout=120_000)
    panel = window.panels["models"]
    panel.select("minilm")
    assert panel.card_table.rowCount() > 10
    values = {panel.card_table.item(r, 0).text(): panel.card_table.item(r, 1).text() for r in range(panel.card_table.rowCount())}
    assert values["Layers"] == "6" and values["Tokenizer"] == "WordPiece"
    assert panel.compare_chart.spec is not None
    window.ctx.models.unload("minilm")
    assert "minilm" not in window.ctx.models.loaded


def test_asking_for_a_model_while_it_loads_still_answers(ctx, qtbot):
    """A preset chosen while its model is still loading (the start-up load) said 'loading it…' for good: the second
    caller's callback was dropped. Every caller gets the model once it has loaded, and only once."""
    got = []
    first = ctx.models.load("minilm", on_done=lambda lm: got.append(("first", lm.name)))
    assert first is not None and "minilm" not in ctx.models.loaded
    assert ctx.models.load("minilm", on_done=lambda lm: got.append(("second", lm.name))) is first
    qtbot.waitUntil(lambda: len(got) == 2, timeout=120_000)
    qtbot.wait(50)
    assert sorted(got) == [("first", "minilm"), ("second", "minilm")] and not ctx.models.waiting


def test_load_failure_is_a_message_not_a_crash(window, qtbot, tmp_path):
    (tmp_path / "readme.txt").write_text("not a model")
    with qtbot.waitSignal(window.ctx.models.loadFailed, timeout=60_000) as blocker:
        window.ctx.models.load(str(tmp_path))
    assert "not a model folder" in blocker.args[1]
    qtbot.waitUntil(lambda: window.banner_box.isVisible(), timeout=5000)
    assert "not a model folder" in window.banner.text()


def _slow(n, progress, cancel):
    for i in range(n):
        check(cancel)
        progress(i / n, f"step {i}")
        time.sleep(0.01)
    return n


def _boom(progress, cancel):
    raise InputError("The text is empty.")


def _bug(progress, cancel):
    raise ZeroDivisionError("division by zero")


def test_job_runner_result_cancel_and_errors(ctx, qtbot):
    results, errors, cancelled = [], [], []
    ctx.runner.submit(_slow, 5, on_result=results.append)
    qtbot.waitUntil(lambda: results == [5], timeout=10_000)
    job = ctx.runner.submit(_slow, 10_000, on_cancelled=lambda: cancelled.append(True))
    qtbot.wait(50)
    job.cancel()
    qtbot.waitUntil(lambda: cancelled == [True], timeout=10_000)
    ctx.runner.submit(_boom, on_error=errors.append)
    ctx.runner.submit(_bug, label="Analysis", on_error=errors.append)
    qtbot.waitUntil(lambda: len(errors) == 2, timeout=10_000)
    assert "The text is empty." in errors
    assert any("Analysis failed: ZeroDivisionError" in e for e in errors)
    # The pool still works after failures.
    ctx.runner.submit(_slow, 3, on_result=results.append)
    qtbot.waitUntil(lambda: results == [5, 3], timeout=10_000)


def test_partial_results_arrive_in_gui_thread(ctx, qtbot):
    seen = []

    def stream(progress, cancel, partial):
        for i in range(5):
            partial(i)
        return "done"

    main = threading.get_ident()
    threads = []
    ctx.runner.submit(stream, on_partial=lambda x: (seen.append(x), threads.append(threading.get_ident())),
                      on_result=seen.append)
    qtbot.waitUntil(lambda: "done" in seen, timeout=10_000)
    assert seen == [0, 1, 2, 3, 4, "done"]
    assert set(threads) == {main}


def _drop(widget, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)


def test_drop_text_files(window, qtbot, tmp_path):
    utf8 = tmp_path / "a.txt"
    utf8.write_text("The river bank was muddy.", encoding="utf-8")
    gbk = tmp_path / "b.txt"
    gbk.write_bytes("我养了一只哈巴狗，它每天都在院子里跑来跑去。过年的时候，我还是一只单身狗。".encode("gbk"))
    _drop(window.text_input.edit, [utf8, gbk])
    qtbot.waitUntil(lambda: window.ctx.text.text() == "The river bank was muddy.", timeout=5000)
    assert [Path(f.path).name for f in window.ctx.files] == ["a.txt", "b.txt"]
    assert "哈巴狗" in window.ctx.files[1].text


def test_drop_binary_keeps_text(window, qtbot, tmp_path):
    window.text_input.set_text("my precious typed text")
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
    _drop(window.text_input.edit, [binary])
    assert window.text_input.text() == "my precious typed text"
    assert window.text_input.notice.isVisible()
    assert "binary" in window.text_input.notice.text()


def test_replacing_text_is_undoable(window):
    window.text_input.set_text("first text")
    window.text_input.set_text("second text")
    window.text_input.edit.undo()
    assert window.text_input.text() == "first text"


def _spec_heatmap():
    m = np.random.default_rng(0).random((8, 8))
    return ChartSpec("Attention layer 1", kind="heatmap", matrix=m, row_labels=list("abcdefgh"), col_labels=list("abcdefgh"))


def _spec_lines():
    return ChartSpec("Similarity", x_label="layer", y_label="cosine",
                     series=[Series("bank", [0, 1, 2], [0.9, 0.6, 0.4]), Series("baseline", [0, 1, 2], [0.2, 0.3, 0.3], dashed=True)])


@pytest.mark.parametrize("make_spec", [_spec_heatmap, _spec_lines])
def test_chart_exports_png_svg_csv(qtbot, tmp_path, make_spec):
    from explorer.gui.widgets.chart import ChartWidget

    chart = ChartWidget()
    qtbot.addWidget(chart)
    chart.resize(600, 400)
    chart.show()
    chart.set_spec(make_spec())
    png = chart.export(tmp_path / "c.png")
    img = QImage(str(png))
    assert not img.isNull() and img.width() >= 2 * 500  # exported at 2x
    svg = chart.export(tmp_path / "c.svg")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert len(list(root.iter())) > 10  # SVG exporter raises under PySide6 >= 6.11 (pyqtgraph #3495)
    csv_text = chart.export(tmp_path / "c.csv").read_text()
    assert len(csv_text.splitlines()) >= 4
    data = json.loads(chart.export(tmp_path / "c.json").read_text())
    assert data["title"] == chart.spec.title
    assert not list(tmp_path.glob(".*tmp*"))  # no temp files left behind
    umask = os.umask(0)
    os.umask(umask)
    assert png.stat().st_mode & 0o777 == 0o666 & ~umask  # not the owner-only mode of a temp file


def test_failed_export_leaves_no_file(qtbot, tmp_path, monkeypatch):
    """A full disk mid-write: the old file stays whole and no temporary file is left."""
    import explorer.gui.widgets.chart as chart_mod
    from explorer.gui.widgets.chart import ChartWidget

    chart = ChartWidget()
    qtbot.addWidget(chart)
    chart.set_spec(_spec_lines())
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(ValueError):
        chart.export(tmp_path / "out.bmpx")

    def full_disk(image, path):
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(chart_mod, "save_image", full_disk)
    with pytest.raises(OSError, match="No space"):
        chart.export(target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_export_all_charts_of_panel(window, qtbot, tmp_path):
    window.ctx.models.loaded.clear()
    panel = window.show_panel("models")
    panel.compare_chart.set_spec(_spec_lines())
    written = window.export_all(str(tmp_path / "out"))
    names = {p.name for p in written}
    assert {"similarity.png", "similarity.svg", "similarity.csv", "settings.json"} <= names
    settings = json.loads((tmp_path / "out" / "settings.json").read_text())
    assert settings["panel"] == "models" and "state" in settings


def test_export_all_never_overwrites_a_file_it_did_not_write(window, tmp_path):
    window.ctx.models.loaded.clear()
    panel = window.show_panel("models")
    panel.compare_chart.set_spec(_spec_lines())
    out = tmp_path / "out"
    out.mkdir()
    (out / "settings.json").write_text('{"my": "settings"}')
    (out / "similarity.png").write_bytes(b"my picture")
    first = window.export_all(str(out))
    assert (out / "settings.json").read_text() == '{"my": "settings"}'
    assert (out / "similarity.png").read_bytes() == b"my picture"
    assert {p.name for p in first} >= {"settings-2.json", "similarity-2.png", "similarity.svg", "similarity.csv"}
    assert "settings.json" in panel.export_note
    again = window.export_all(str(out))  # its own earlier files are replaced in place, the user's still kept
    assert sorted(p.name for p in again) == sorted(p.name for p in first)
    assert (out / "settings.json").read_text() == '{"my": "settings"}'
    assert json.loads((out / "settings-2.json").read_text())["panel"] == "models"


def test_session_persists_text_and_layout(qtbot, data_dir, tmp_path):
    from explorer.gui.main_window import MainWindow

    f = tmp_path / "doc.txt"
    f.write_text("a corpus file")
    w = MainWindow(restore=False)
    qtbot.addWidget(w)
    w.text_input.set_text("text that must survive")
    w.ctx.add_files([__import__("explorer.core.io.fileio", fromlist=["x"]).read_text_file(f)])
    w.show_panel("attention")
    w.save_session()
    w.close()
    w2 = MainWindow(restore=True)
    qtbot.addWidget(w2)
    assert w2.text_input.text() == "text that must survive"
    # The session's files are read in a job (a slow disk must not hold the window up).
    qtbot.waitUntil(lambda: [Path(x.path).name for x in w2.ctx.files] == ["doc.txt"], timeout=10_000)
    assert w2.nav.currentRow() == [k for k, _c, _l in PANELS].index("attention")


def test_about_dialog_names_models_and_licences(qtbot):
    from explorer.gui.about import ABOUT_HTML

    assert "all-MiniLM-L6-v2" in ABOUT_HTML and "SmolLM2" in ABOUT_HTML and "Apache-2.0" in ABOUT_HTML


def test_cancelled_job_keeps_app_usable(ctx, qtbot):
    done = []

    def cancel_me(progress, cancel):
        while True:
            check(cancel)
            time.sleep(0.005)

    job = ctx.runner.submit(cancel_me, on_cancelled=lambda: done.append("c"))
    job.cancel()
    qtbot.waitUntil(lambda: done == ["c"], timeout=5000)
    assert not ctx.runner.active
    assert isinstance(Cancelled(), Exception)
