"""The Attention panel's top-k control (the CLI's ``attention --top-k``): reachable from the keyboard, kept in the
panel's state, and giving the CLI's numbers for the same k on MiniLM."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import Qt

from explorer.cli import main
from explorer.gui.panels.attention import AttentionPanel

# MiniLM keeps every layer in full for any input it takes (512 tokens); a smaller memory budget makes it keep
# the compact form past 40 tokens, so the real model runs the long-input code on a short text.
SMALL_BUDGET = 4 * (6 + 2) * 12 * 40**2 + 4 * 7 * 40 * 384  # bytes: analysis.dense_bytes of 40 MiniLM tokens
TEXT = ("The lecture explains how pre-trained language models read a sentence: every token looks at the others, "
        "and each head of each layer learns its own pattern of links between the words of the text.")


@pytest.fixture
def panel(qtbot, ctx, minilm, monkeypatch):
    monkeypatch.setattr("explorer.core.inspect.analysis.ATTENTION_BUDGET_BYTES", SMALL_BUDGET)
    ctx.models.loaded["minilm"] = minilm
    ctx.models.changed.emit()
    p = AttentionPanel(ctx)
    qtbot.addWidget(p)
    p.resize(1024, 700)
    p.show()
    qtbot.waitExposed(p)
    return p


def _cli_rollout(capsys, monkeypatch, minilm, tmp_path, k: int) -> np.ndarray:
    monkeypatch.setattr("explorer.commands.attention.load", lambda name, trust_remote_code=False: minilm)
    out = tmp_path / f"rollout-{k}.json"
    assert main(["attention", TEXT, "--model", "minilm", "--head", "rollout", "--layer", "5", "--top-k", str(k),
                 "--export", str(out)]) == 0
    assert "top" in capsys.readouterr().err  # the CLI says the long-input form was used
    return np.asarray(json.loads(out.read_text())["matrix"], dtype=np.float64)


def test_top_k_is_set_from_the_keyboard_and_gives_the_cli_result(panel, qtbot, capsys, monkeypatch, minilm,
                                                                  tmp_path):
    panel.activateWindow()
    qtbot.keyClick(panel, Qt.Key.Key_K, Qt.KeyboardModifier.AltModifier)  # the label's mnemonic
    assert panel.focusWidget() is panel.topk_spin
    panel.topk_spin.selectAll()
    qtbot.keyClicks(panel.topk_spin, "4")
    assert panel.topk_spin.value() == 4 and panel.state_dict()["top_k"] == 4
    assert "--top-k" in panel.topk_spin.toolTip()

    panel.ctx.text.set_text(TEXT)
    panel.picker.select("minilm")
    panel.set_view("aggregate")
    panel.head_combo.setCurrentIndex(panel.head_combo.findData("rollout"))
    panel.run()
    qtbot.waitUntil(lambda: panel.analysis is not None and panel.job.done, timeout=60_000)
    a = panel.analysis
    assert a.num_tokens > 40 and not a.exact and a.attentions.top_k == 4
    assert "4 strongest links" in panel.note.text()  # the note says which parts come from the top-k links
    panel.layer_spin.setValue(5)
    qtbot.waitUntil(lambda: panel.rollout_chart.spec is not None and panel.rollout_chart.spec.meta["layer"] == 5,
                    timeout=60_000)
    window = np.asarray(panel.rollout_chart.spec.matrix, dtype=np.float64)

    cli4 = _cli_rollout(capsys, monkeypatch, minilm, tmp_path, 4)
    cli32 = _cli_rollout(capsys, monkeypatch, minilm, tmp_path, 32)
    assert window.shape == cli4.shape == (a.num_tokens, a.num_tokens)
    np.testing.assert_allclose(window, cli4, atol=1e-6)
    assert np.abs(cli32 - cli4).max() > 1e-3  # k changes the rollout, so the window really used k = 4

    # Changing k after an analysis says it applies at the next Analyse; the state survives a session round trip.
    panel.topk_spin.setValue(8)
    assert "press Analyse" in panel.note.text()
    other = AttentionPanel(panel.ctx)
    qtbot.addWidget(other)
    other.restore_state(json.loads(json.dumps(panel.state_dict())))
    assert other.topk_spin.value() == 8


def test_short_inputs_say_every_weight_is_exact(qtbot, ctx, minilm):
    ctx.models.loaded["minilm"] = minilm
    p = AttentionPanel(ctx)
    qtbot.addWidget(p)
    p.show()
    ctx.text.set_text("The bank of the river.")
    p.picker.select("minilm")
    p.run()
    qtbot.waitUntil(lambda: p.analysis is not None and p.job.done, timeout=60_000)
    assert p.analysis.exact
    assert "Every weight is exact" in p.note.text() and "any input it takes" in p.note.text()
