"""The session round-trips what each panel shows: every panel's settings and model (whatever order the models
load in), and the window's geometry; a second save does not overwrite what the first restored."""

from __future__ import annotations

from PySide6.QtCore import QRect

from tests.gui.test_window_use import PANEL_SETTINGS, _differences, settle


def test_every_panel_model_and_the_geometry_come_back(qtbot, data_dir, minilm, smollm2):
    from explorer.core.io.session import load_session
    from explorer.gui.main_window import MainWindow

    wanted = PANEL_SETTINGS
    w = MainWindow(restore=False)
    qtbot.addWidget(w)
    w.show()
    w.ctx.models.loaded.update({"minilm": minilm, "smollm2": smollm2})
    w.ctx.models.changed.emit()
    for key, state in wanted.items():
        w.panel(key).restore_state(state)
    settle(qtbot, 10)
    w.setGeometry(QRect(3, 4, 760, 540))
    settle(qtbot, 10)
    rect = w.geometry()
    w.save_session()
    w.close()

    w2 = MainWindow(restore=True)
    qtbot.addWidget(w2)
    w2.show()
    settle(qtbot, 10)
    assert w2.geometry() == rect
    # The models arrive one by one, the bundled encoder first: the panels that use the decoder wait for it.
    w2.ctx.models.loaded["minilm"] = minilm
    w2.ctx.models.changed.emit()
    for key in wanted:
        w2.panel(key)
    settle(qtbot, 10)
    assert w2.panel("attention").state_dict()["model"] == "smollm2"
    w2.ctx.models.loaded["smollm2"] = smollm2
    w2.ctx.models.changed.emit()
    settle(qtbot, 10)
    assert w2.panel("attention").picker.current_name() == "smollm2"
    assert w2.panel("embeddings").picker.current_name() == "smollm2"
    checks = w2.panel("prompting").sweep.sweep_model_checks  # the sweep's tick came back with its model
    assert checks["smollm2"].isChecked()
    for key, state in wanted.items():
        got = w2.panel(key).state_dict()
        assert not _differences(got, state), (key, _differences(got, state))
    w2.save_session()
    saved = load_session()
    assert saved["window_rect"] == [rect.x(), rect.y(), rect.width(), rect.height()]
    for key, state in wanted.items():
        assert not _differences(saved["panels"][key], state), key
    w2.close()
