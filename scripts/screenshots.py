"""Make the README's screenshots: the real window, offscreen, with both bundled models, one PNG per panel.

Each panel is driven through the same methods its buttons call; the script waits for the job runner to go
idle before grabbing the window.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "screenshots"


def wait(app, until, timeout: float = 600.0) -> None:
    end = time.time() + timeout
    while not until() and time.time() < end:
        app.processEvents()
        time.sleep(0.02)


# Panel key -> the button methods to press, in order (the same a user would click).
DEMOS = {
    "masking": [lambda p: p.strategy_combo.setCurrentIndex(p.strategy_combo.findData("span")), lambda p: p.run()],
    "attention": [lambda p: p.run()],
    "embeddings": [lambda p: p.preset_combo.setCurrentIndex(1), lambda p: p.compare()],
    "heads": [lambda p: p.tabs.setCurrentIndex(1) if hasattr(p, "tabs") else None, lambda p: p.train()],
    "prompting": [lambda p: p.run_generation()],
}


def main() -> int:
    import tempfile

    os.environ["LM_EXPLORER_DATA_DIR"] = tempfile.mkdtemp(prefix="lmx-shots-")
    from PySide6.QtWidgets import QApplication

    from explorer.gui.main_window import PANELS, MainWindow

    app = QApplication([])
    window = MainWindow(restore=False)
    # The README shows the window at 1024×700, the smallest screen it is made for (every label must fit).
    width, height = (int(v) for v in os.environ.get("SCREENSHOT_SIZE", "1024x700").split("x"))
    window.resize(width, height)
    window.show()
    window.after_first_paint()
    wait(app, lambda: {"minilm", "smollm2"} <= set(window.ctx.models.loaded))
    sample = (ROOT / "resources" / "samples" / "english-bank.txt").read_text(encoding="utf-8")
    window.text_input.set_text(sample)
    OUT.mkdir(parents=True, exist_ok=True)
    only = set(sys.argv[1:])
    for key, _cls, _label in PANELS:
        if only and key not in only:
            continue
        panel = window.show_panel(key)
        for action in DEMOS.get(key, ()):
            action(panel)
            wait(app, lambda: not window.ctx.runner.active)
        for _ in range(30):
            app.processEvents()
            time.sleep(0.02)
        path = OUT / f"{key}.png"
        window.grab().save(str(path))
        from explorer.gui.widgets.flow import cut_labels

        cut = cut_labels(window)
        print(f"wrote {path}" + (f"; CUT LABELS: {cut}" if cut else ""))
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
