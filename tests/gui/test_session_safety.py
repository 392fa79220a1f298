"""The window and a hostile session file (issue 15): a bad session never stops the window from starting, is
kept as a backup, and files named in it are read off the GUI thread (a named pipe cannot freeze the window)."""

from __future__ import annotations

import json
import os

import pytest


def _window(qtbot):
    from explorer.gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


@pytest.mark.parametrize("content", ['["a", "list"]', "{cut", '{"text": NaN}'])
def test_bad_session_starts_with_defaults_and_keeps_a_backup(qtbot, data_dir, content):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "session.json").write_text(content)
    w = _window(qtbot)
    try:
        assert w.text_input.text() == ""
        assert w.banner_box.isVisible() and "could not be used" in w.banner.text()
        backups = list(data_dir.glob("session.broken-*.json"))
        assert [b.read_text() for b in backups] == [content]
        w.save_session()  # the new session is written beside the backup, which stays as it was
        assert json.loads((data_dir / "session.json").read_text())["version"] == 1
        assert [b.read_text() for b in backups] == [content]
    finally:
        w.ctx.runner.cancel_all()
        w.ctx.runner.wait(10000)


def test_session_naming_a_fifo_does_not_freeze_the_window(qtbot, data_dir, tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    good = tmp_path / "note.txt"
    good.write_text("the river bank", encoding="utf-8")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "session.json").write_text(json.dumps({"version": 1, "text": "kept", "files": [str(fifo), str(good)]}))
    w = _window(qtbot)  # before the fix, reading the FIFO here blocked forever
    try:
        assert w.text_input.text() == "kept"
        qtbot.waitUntil(lambda: [f.path for f in w.ctx.files] == [str(good)], timeout=10000)
        assert "not a regular file" in w.statusBar().currentMessage()
    finally:
        w.ctx.runner.cancel_all()
        w.ctx.runner.wait(10000)


@pytest.mark.parametrize("content", ['{"version": 1, "text": 5, "models": []}', '{"panels": [], "text": "kept"}',
                                     '{"models": 5, "text": "kept"}'])
def test_a_bad_session_field_is_reset_alone(qtbot, data_dir, content):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "session.json").write_text(content)
    w = _window(qtbot)
    try:
        assert w.banner_box.isVisible() and "defaults" in w.banner.text()
        assert w.text_input.text() == json.loads(content).get("text", "") if isinstance(
            json.loads(content).get("text"), str) else w.text_input.text() == ""
        assert not list(data_dir.glob("session.broken-*.json"))
    finally:
        w.ctx.runner.cancel_all()
        w.ctx.runner.wait(10000)


WRONG_SHAPES = {
    "attention": {"layer": [1], "head": {"a": 1}, "view": 3, "threshold": "x", "token_range": "oops"},
    "prompting": {"examples": [1, "two", None], "query": [1, 2], "task": 5, "shots": "3"},
    "masking": {"strategy": [], "rates": "x", "seed": {"a": 1}},
    "heads": {"tab": "x", "mode": 3, "text": [1], "ft_task": None, "epochs": [1]},
    "models": {"compare": 5, "selected": {"a": 1}},
}


def test_panel_states_of_the_wrong_shape_never_stop_a_panel(qtbot, data_dir, caplog):
    """Each panel given fields of the wrong shape starts (from its defaults where needed), without a traceback."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "session.json").write_text(json.dumps({"version": 1, "panels": WRONG_SHAPES, "future": [1]}))
    w = _window(qtbot)
    try:
        for key in WRONG_SHAPES:
            w.show_panel(key)
            assert key in w.panels
        assert "Traceback" not in caplog.text
        w.save_session()
        saved = json.loads((data_dir / "session.json").read_text())
        assert saved["future"] == [1]  # a field this version does not know is kept
    finally:
        w.ctx.runner.cancel_all()
        w.ctx.runner.wait(10000)


def test_a_session_text_with_a_line_too_long_to_show_is_kept_aside(qtbot, data_dir):
    """A one-line text over the text box's limit (a 1 MB one froze the window for 95 s at start) is not put in the
    box: the session file is first copied aside byte for byte, the rest of the session is restored, one note."""
    from explorer.core.io.limits import MAX_SHOWN_LINE

    data_dir.mkdir(parents=True, exist_ok=True)
    content = json.dumps({"version": 1, "text": "short line\n" + "x" * (MAX_SHOWN_LINE + 1), "panel": "embeddings"})
    (data_dir / "session.json").write_text(content)
    w = _window(qtbot)
    try:
        assert w.text_input.text() == ""
        assert w.current_panel().key == "embeddings"  # the session's other fields are used
        assert w.banner_box.isVisible()
        assert f"has a line of {MAX_SHOWN_LINE + 1:,} characters" in w.banner.text()
        copies = list(data_dir.glob("session.long-text-*.json"))
        assert [c.read_text() for c in copies] == [content] and str(copies[0]) in w.banner.text()
        w.save_session()
        assert [c.read_text() for c in copies] == [content]  # the copy outlives the next save
    finally:
        w.ctx.runner.cancel_all()
        w.ctx.runner.wait(10000)


# Per panel: settings that fit (kept) beside fields of the wrong shape or out of a control's range (each reset
# alone). Before, a number over 2**31 raised OverflowError and the whole panel started from its defaults.
MIXED = {
    "attention": ({"top_k": 7, "hide_special": True, "share": 0.5},
                  {"layer": 2**40, "head": "99999999999", "range_count": "x"}),
    "masking": ({"seed": 7, "ratio": 0.25}, {"samples": 2**40, "strategy": []}),
    "heads": ({"epochs": 3, "text": "kept words"}, {"seed": -(2**40), "tab": "x"}),
    "prompting": ({"shots": 3, "description": "kept description"},
                  {"max_new_tokens": 2**40, "examples": [{"a": [1]}]}),
    "models": ({"tab": 1}, {"selected": [1]}),
}


@pytest.mark.parametrize("key", sorted(MIXED))
def test_a_panel_setting_of_the_wrong_shape_is_reset_alone(qtbot, data_dir, key):
    good, bad = MIXED[key]
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "session.json").write_text(json.dumps({"version": 1, "panels": {key: {**good, **bad}}}))
    w = _window(qtbot)
    try:
        panel = w.show_panel(key)
        state = panel.state_dict()
        assert {k: state[k] for k in good} == good  # the panel's valid settings are kept
        reference = type(panel)(w.ctx)
        reference.restore_state(good)
        assert state == reference.state_dict()  # as if only the good fields were saved: each bad one at its default
        note = w.banner.text()
        assert w.banner_box.isVisible() and f"saved settings of the {panel.title} panel" in note
        assert all(f"{k} (" in note for k in bad) and "Its other settings were restored." in note
    finally:
        w.ctx.runner.cancel_all()
        w.ctx.runner.wait(10000)


def test_a_field_the_panel_cannot_take_is_found_and_reset_alone(qtbot, ctx):
    """A field of the right shape that the panel still cannot take (its restore raises) is found by trying each
    field alone; the others are restored."""
    from dataclasses import dataclass

    from explorer.gui.panels.base import Panel

    @dataclass
    class State:
        name: str = ""
        count: int = 1

    class Picky(Panel):
        state_class = State

        def restore_state(self, data: dict) -> None:
            if data.get("name") == "boom":
                raise ValueError("cannot show that name")
            self.restored = data

    panel = Picky(ctx)
    qtbot.addWidget(panel)
    assert panel.apply_state({"name": "boom", "count": 5}) == ["name (str)"]
    assert panel.restored == {"count": 5}
    assert panel.apply_state({"name": "fine", "count": "5"}) == ['count ("5")']
    assert panel.restored == {"name": "fine"}
