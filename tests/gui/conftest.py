"""GUI fixtures: a main window with an empty session, and the bundled models put into its store."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QObject


class EventLog(QObject):
    """Records the objects that receive one kind of event (install it on a widget or on the application)."""

    def __init__(self, kind: QEvent.Type) -> None:
        super().__init__()
        self.kind, self.objects = kind, []

    def eventFilter(self, obj, ev):  # noqa: N802 - Qt naming
        if ev.type() == self.kind:
            self.objects.append(obj)
        return False


@pytest.fixture
def window(qtbot, data_dir):
    from explorer.gui.main_window import MainWindow

    w = MainWindow(restore=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.ctx.runner.cancel_all()
    w.ctx.runner.wait(10000)


@pytest.fixture
def ctx(qtbot, data_dir):
    from explorer.gui.context import AppContext

    c = AppContext()
    yield c
    c.runner.cancel_all()
    c.runner.wait(10000)


@pytest.fixture
def ctx_with_models(ctx, minilm, smollm2):
    """A context whose store already holds both bundled models (loaded once per test session)."""
    ctx.models.loaded.update({"minilm": minilm, "smollm2": smollm2})
    ctx.models.changed.emit()
    return ctx
