"""Fine-tuning three ways: the lecture's parameter / storage figures, a real frozen MiniLM beating chance on
the shipped sentiment set, adapter-only folders that load and run, live updates and cancel."""

from __future__ import annotations

import json
import threading

import pytest

from explorer.core import finetune as ft
from explorer.core import heads
from explorer.core.datasets import load_task_data
from explorer.core.errors import Cancelled, InputError, ModelError
from explorer.core.models import load_model
from explorer.core.paths import resources_dir

POS = ["good movie", "great film", "i love this movie", "really fun film", "very good", "a great city", "love it",
       "fun and good", "the film was great", "i really love the film", "great fun", "good good"]
NEG = ["bad movie", "terrible film", "i hate this movie", "really boring film", "very bad", "a terrible city",
       "hate it", "boring and bad", "the film was terrible", "i really hate the film", "terrible boredom", "bad bad"]


@pytest.fixture(scope="module")
def tiny_base(tiny_factory):
    return load_model(str(tiny_factory("base")))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    p = tmp_path_factory.mktemp("data") / "tiny.csv"
    p.write_text("text,label\n" + "".join(f"{t},positive\n" for t in POS) + "".join(f"{t},negative\n" for t in NEG))
    return load_task_data(p, seed=0)


def test_plan_figures_differ_as_the_lecture_says(minilm):
    costs = {c.mode: c for c in ft.plan(minilm, "classify", ["negative", "positive"])}
    total = costs["full"].total_parameters
    assert costs["frozen"].total_parameters == costs["adapter"].total_parameters == total
    assert costs["frozen"].trainable_parameters == 384 * 2 + 2  # the classifier on the 384-d pooled output
    assert costs["full"].trainable_parameters == total > 22_000_000
    lora = costs["adapter"].trainable_parameters - costs["frozen"].trainable_parameters
    assert lora == 6 * 2 * 8 * (384 + 384)  # r=8 A and B on query and value of 6 layers
    assert costs["full"].stored_bytes == 4 * total
    assert costs["frozen"].stored_bytes < costs["adapter"].stored_bytes < costs["full"].stored_bytes / 100
    token_costs = {c.mode: c for c in ft.plan(minilm, "tokens", 7)}
    assert token_costs["frozen"].trainable_parameters == 384 * 7 + 7


def test_frozen_minilm_beats_chance_on_shipped_sentiment(minilm, tmp_path):
    data = load_task_data(resources_dir() / "data" / "sentiment.csv", seed=0)
    updates: list[ft.TrainUpdate] = []
    r = ft.finetune(minilm, data, "frozen", epochs=12, seed=0, out_dir=tmp_path / "sent", partial=updates.append)
    assert r.majority_baseline == pytest.approx(0.5, abs=0.05)
    assert r.val_accuracy >= 0.75 and r.val_accuracy > r.majority_baseline + 0.2
    assert len(r.history) == 12 and r.history[-1].loss < r.history[0].loss
    assert sum(u.epoch_done for u in updates) == 12 and updates[-1].history == r.history
    assert r.trainable_parameters == 770 and r.stored_bytes == 770 * 4
    lm = load_model(str(tmp_path / "sent"))
    assert lm.heads == ["sequence-classification"]
    assert heads.classify(lm, "Honestly, the concert was absolutely wonderful.").label == "positive"
    assert heads.classify(lm, "Sadly, the food was dull and lifeless.").label == "negative"
    meta = json.loads((tmp_path / "sent" / ft.META_FILE).read_text())
    assert meta["mode"] == "frozen" and meta["base_model"] == "minilm" and len(meta["history"]) == 12


def test_adapter_folder_is_small_and_runs(tiny_base, tiny_data, tmp_path):
    r = ft.finetune(tiny_base, tiny_data, "adapter", epochs=2, out_dir=tmp_path / "ad")
    names = {p.name for p in (tmp_path / "ad").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "head_config.json"} <= names
    assert "model.safetensors" not in names and "config.json" not in names
    full = ft.finetune(tiny_base, tiny_data, "full", epochs=1, out_dir=tmp_path / "full")
    assert r.saved_bytes < full.saved_bytes / 5
    lm = load_model(str(tmp_path / "ad"))
    assert lm.heads == ["sequence-classification"] and lm.card.extra["adapter_type"] == "LORA"
    res = heads.classify(lm, "good movie")
    assert list(res.scores) == ["negative", "positive"]
    assert lm.card.bytes_on_disk == r.saved_bytes


def test_same_seed_same_history(tiny_base, tiny_data):
    a = ft.finetune(tiny_base, tiny_data, "full", epochs=1, batch_size=8, seed=5)
    b = ft.finetune(tiny_base, tiny_data, "full", epochs=1, batch_size=8, seed=5)
    assert [h.loss for h in a.history] == pytest.approx([h.loss for h in b.history], rel=1e-5)


def test_token_classification_frozen(tiny_base, tmp_path):
    p = tmp_path / "ner.jsonl"
    rows = [("john lives in paris", "B-PER O O B-LOC"), ("mary works at google", "B-PER O O B-ORG"),
            ("the cat is in london", "O O O O B-LOC"), ("john and mary", "B-PER O B-PER")] * 3
    p.write_text("".join(json.dumps({"tokens": t.split(), "tags": g.split()}) + "\n" for t, g in rows))
    data = load_task_data(p)
    r = ft.finetune(tiny_base, data, "frozen", epochs=3, out_dir=tmp_path / "tok")
    assert r.task == "tokens" and r.labels == ["O", "B-LOC", "B-ORG", "B-PER"]
    assert r.trainable_parameters == 32 * 4 + 4 and len(r.history) == 3
    lm = load_model(str(tmp_path / "tok"))
    res = heads.tag_tokens(lm, "john lives in berlin")
    assert {t.label for t in res.tokens} <= set(r.labels)


def test_cancel_between_batches_saves_nothing(tiny_base, tiny_data, tmp_path):
    cancel = threading.Event()

    def partial(update):
        if update.step == 1:
            cancel.set()

    with pytest.raises(Cancelled):
        ft.finetune(tiny_base, tiny_data, "full", epochs=3, batch_size=4, out_dir=tmp_path / "c",
                    cancel=cancel, partial=partial)
    assert not (tmp_path / "c").exists()


def test_bad_requests(tiny_base, tiny_data, smollm2, tmp_path):
    with pytest.raises(InputError, match="mode"):
        ft.finetune(tiny_base, tiny_data, "prefix")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        ft.finetune(tiny_base, tiny_data, "frozen", out_dir=tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    with pytest.raises(ModelError, match="encoder"):
        ft.plan(smollm2, "classify", 2)


def test_history_chart():
    hist = [ft.EpochReport(1, 0.7, 0.6, 1.0), ft.EpochReport(2, 0.5, 0.8, 1.0)]
    spec = ft.history_chart(hist, 0.5, [(0.5, 0.8), (1.0, 0.6)], baseline=0.5)
    names = [s.name for s in spec.series]
    assert names == ["batch loss", "epoch loss", "validation accuracy", "majority baseline"]
    assert spec.series[2].y == [0.5, 0.6, 0.8]
