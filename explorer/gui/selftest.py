"""The window checked end to end, offscreen, as a user would use it: ``lm-explorer selftest FILE``.

Opens the window with a file (as ``lm-explorer FILE`` does), loads a model through the Models panel's loader,
presses the Attention panel's Analyse and checks that the file's text reached the text box and that the head
view was drawn. The bundle's smoke run calls it, so a frozen build that cannot draw fails its build.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


class SelfTestFailed(Exception):
    """A step of the self-test did not happen; the message says which."""


def run_selftest(path: str, model: str = "minilm", timeout: float = 600.0,
                 screenshot: str | None = None, say=print) -> dict:
    """Run the steps; a summary dict, or SelfTestFailed naming the first step that failed."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from explorer.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(["lm-explorer"])
    window = MainWindow(restore=False)
    failures: list[str] = []
    window.ctx.models.loadFailed.connect(lambda name, message: failures.append(f"{name}: {message}"))
    window.ctx.errorMessage.connect(failures.append)

    def wait(until, what: str) -> None:
        end = time.monotonic() + timeout
        while not until():
            if failures:
                raise SelfTestFailed(f"{what}: {failures[0]}")
            if time.monotonic() > end:
                raise SelfTestFailed(f"{what}: nothing after {timeout:.0f} s")
            app.processEvents()
            time.sleep(0.02)

    start = time.monotonic()
    try:
        window.resize(1024, 700)
        window.show()
        wait(lambda: window._painted, "the window was never painted")
        say(f"window painted ({time.monotonic() - start:.1f} s)")
        expected = Path(path).read_text(encoding="utf-8", errors="replace").strip()
        window.open_paths([path])
        wait(lambda: window.text_input.text().strip() == expected, f"{path} did not reach the text box")
        say(f"{Path(path).name} opened in the text box ({len(expected)} characters)")
        window.ctx.models.load(model)
        wait(lambda: model in window.ctx.models.loaded, f"loading {model}")
        say(f"{model} loaded ({time.monotonic() - start:.1f} s)")
        panel = window.show_panel("attention")
        panel.picker.select(model)
        panel.run()
        wait(lambda: panel.analysis is not None and not window.ctx.runner.active, "the attention analysis")
        maps = panel.head_view.maps
        if maps.size == 0 or not panel.head_view.labels:
            raise SelfTestFailed("the head view was not drawn")
        for _ in range(10):
            app.processEvents()
        if screenshot:
            window.grab().save(screenshot)
        say(f"attention drawn: {panel.analysis.num_layers} layers, {len(panel.head_view.labels)} tokens, "
            f"{maps.shape[0]} heads in the head view ({time.monotonic() - start:.1f} s)")
        return {"model": model, "file": path, "tokens": len(panel.head_view.labels),
                "layers": panel.analysis.num_layers, "heads_drawn": int(maps.shape[0])}
    finally:
        window.close()
