"""Issue 25's window cases as a fuzz corpus: the window starts offscreen in its own process with a fresh HOME, a
120 s limit and a 4 GB address-space cap, given a hostile session or file, shows every panel and closes. It must
not hang or print a traceback, must say what it did not use, and must leave the user's files as they were."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.test_fuzz_cli import MEMORY, ROOT, SECONDS, _cap_memory

DATA = Path(".local/share/lm-explorer")
DRIVER = r"""
import json, sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from explorer.gui.main_window import PANELS, MainWindow
w = MainWindow()
w.show()
app.processEvents()
if sys.argv[1:]:
    w.open_paths(sys.argv[1:])
notes = [w.banner.text()]
for key, _cls, _label in PANELS:
    w.show_panel(key)
    app.processEvents()
    notes.append(w.banner.text())
print(json.dumps({"text": len(w.text_input.text()), "notice": w.text_input.notice.text(), "banners": notes}))
w.close()
"""

WRONG = {
    "attention": {"layer": 2**40, "head": "99999999999", "top_k": 7},
    "masking": {"samples": 2**40, "strategy": [], "seed": 7},
    "embeddings": {"contexts": [[1, 2, 3]], "mix_layer": -(2**40), "corpus_word": "bank"},
    "heads": {"seed": -(2**40), "tab": "x", "epochs": 3},
    "prompting": {"max_new_tokens": 2**40, "examples": [{"a": [1]}], "shots": 3},
    "models": {"selected": [1], "tab": 2**40},
}

CASES = {
    # a one-line 8 MB text in the session froze the window for minutes at start (a 1 MB one for 42-95 s)
    "session-one-line-8mb": {"session": {"version": 1, "text": "word " * 1_600_000}, "open": None},
    # a panel field of the wrong shape printed a traceback at start and reset the whole panel
    "session-panel-fields-wrong-shape": {"session": {"version": 1, "text": "kept", "panels": WRONG}, "open": None},
    # a 10 MB single-line file opened in the window froze it
    "open-10mb-one-line-file": {"session": None, "open": ("one-line.txt", b"x" * 10_000_000)},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fuzz_window_case_ends_clean(name, tmp_path):
    case = CASES[name]
    home = tmp_path / "home"
    (home / DATA).mkdir(parents=True)
    session = home / DATA / "session.json"
    if case["session"] is not None:
        session.write_text(json.dumps(case["session"]))
    original = session.read_bytes() if session.exists() else b""
    argv = []
    if case["open"]:
        fname, data = case["open"]
        (home / fname).write_bytes(data)
        argv.append(str(home / fname))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LM_EXPLORER_", "XDG_"))}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               QT_QPA_PLATFORM="offscreen")
    assert MEMORY and SECONDS
    done = subprocess.run([sys.executable, "-c", DRIVER, *argv], cwd=ROOT, env=env, capture_output=True,
                          timeout=SECONDS, preexec_fn=_cap_memory)
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    shown = json.loads(done.stdout.decode().strip().splitlines()[-1])
    if name == "session-one-line-8mb":
        assert shown["text"] == 0 and "has a line of 8,000,000 characters" in shown["banners"][0]
        copies = list((home / DATA).glob("session.long-text-*.json"))
        assert [c.read_bytes() for c in copies] == [original]  # the text is kept, byte for byte
    if name == "session-panel-fields-wrong-shape":
        assert shown["text"] == 4  # the session's other fields are used
        said = " ".join(shown["banners"])
        for panel, fields in WRONG.items():
            bad = [k for k in fields if k not in ("top_k", "seed", "corpus_word", "epochs", "shots")]
            assert all(f"{k} (" in said for k in bad), (panel, said)
        assert "starts from its defaults" not in said  # no panel was reset whole
    if name == "open-10mb-one-line-file":
        assert shown["text"] == 0 and "one-line.txt has a line of 10,000,000 characters" in shown["notice"]
        assert (home / "one-line.txt").read_bytes() == b"x" * 10_000_000
