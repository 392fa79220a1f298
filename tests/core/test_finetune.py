"""Fine-tuning four ways: the lecture's parameter / storage figures, a frozen probe that matches scikit-learn's
converged logistic regression on features computed independently, folders that store what the table says and
load back onto their (hash-checked) base model, user files that survive, and "why pre-train"."""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest

from explorer.core.io.errors import Cancelled, InputError, ModelError
from explorer.core.io.paths import resources_dir
from explorer.core.models.loading import load_model
from explorer.core.tuning import finetune as ft
from explorer.core.tuning import heads
from explorer.core.tuning.datasets import Example, TaskData, load_task_data
from explorer.core.tuning.probe import default_pooling

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
    assert list(costs) == ["frozen", "full", "adapter", "scratch"]
    total = costs["full"].total_parameters
    assert costs["adapter"].total_parameters == total == costs["scratch"].total_parameters
    assert costs["frozen"].trainable_parameters == 384 * 2 + 2  # a linear head on the 384-d sentence vector
    assert costs["full"].trainable_parameters == total > 22_000_000
    lora = costs["adapter"].trainable_parameters - (384 * 2 + 2)  # minus the head
    assert lora == 6 * 2 * 8 * (384 + 384)  # r=8 A and B on query and value of 6 layers
    assert costs["full"].stored_bytes == 4 * total
    assert costs["frozen"].stored_bytes < costs["adapter"].stored_bytes < costs["full"].stored_bytes / 100
    token_costs = {c.mode: c for c in ft.plan(minilm, "tokens", 7)}
    assert token_costs["frozen"].trainable_parameters == 384 * 7 + 7
    # Remembered figures (the lab asks before training and again in finetune) answer only the same question.
    again = ft.plan(minilm, "classify", ["negative", "positive"])
    assert {c.mode: c for c in again} == costs and again[0] is not costs["frozen"]
    assert ft.plan(minilm, "classify", ["a", "b", "c"])[0].trainable_parameters == 384 * 3 + 3
    assert {c.mode: c for c in ft.plan(minilm, "classify", 2, lora_r=4)}["adapter"].trainable_parameters == \
        6 * 2 * 4 * (384 + 384) + 384 * 2 + 2


def test_minilm_pooling_is_read_from_its_sentence_transformers_config(minilm, tiny_factory):
    assert ft.model_pooling(minilm)[0] == "mean"
    assert "1_Pooling" in ft.model_pooling(minilm)[1]
    assert default_pooling(tiny_factory("base"))[0] == "pooler"  # BertModel saves its pooler weights
    assert default_pooling(tiny_factory("causal-lm"))[0] == "mean"


def _reference_features(lm, data: TaskData):
    """Mean-pooled sentences / first-piece words from a bare transformers forward (not the app's code)."""
    import torch

    tok, model = lm.tokenizer, lm.model

    def run(examples: list[Example]):
        xs, ys = [], []
        for lo in range(0, len(examples), 32):
            chunk = examples[lo:lo + 32]
            if data.task == "tokens":
                enc = tok([ex.tokens for ex in chunk], is_split_into_words=True, truncation=True, max_length=128,
                          padding=True, return_tensors="pt")
            else:
                enc = tok([ex.text for ex in chunk], [ex.text_pair for ex in chunk] if data.task == "pair" else None,
                          truncation=True, max_length=128, padding=True, return_tensors="pt")
            with torch.no_grad():
                h = model(**enc).last_hidden_state  # [batch, token, hidden]
            for row, ex in enumerate(chunk):
                if data.task == "tokens":
                    seen = set()
                    for t, w in enumerate(enc.word_ids(row)):
                        if w is not None and w not in seen:
                            seen.add(w)
                            xs.append(h[row, t].numpy())
                            ys.append(ex.tags[w])
                else:
                    m = enc["attention_mask"][row].bool()
                    xs.append(h[row][m].mean(0).numpy())
                    ys.append(ex.label)
        return np.stack(xs), np.array(ys)

    return run(data.train), run(data.val)


@pytest.mark.parametrize("name", ["sentiment.csv", "entailment.csv", "ner.jsonl"])
def test_frozen_probe_matches_sklearn_on_shipped_sets(minilm, name):
    from sklearn.linear_model import LogisticRegression

    data = load_task_data(resources_dir() / "data" / name, seed=0)
    r = ft.finetune(minilm, data, "frozen")
    assert r.pooling == "mean" and r.converged and "L-BFGS" in r.stopping_rule
    (x_tr, y_tr), (x_va, y_va) = _reference_features(minilm, data)
    sk = LogisticRegression(max_iter=5000).fit(x_tr, y_tr)
    sk_acc = float((sk.predict(x_va) == y_va).mean())
    print(f"{name}: app {r.val_accuracy:.4f}, scikit-learn {sk_acc:.4f}")
    assert abs(r.val_accuracy - sk_acc) <= 0.02
    if name != "entailment.csv":  # a frozen sentence encoder is weak at NLI, as the lecture's README table shows
        assert r.val_accuracy > r.majority_baseline + 0.3


def test_frozen_folder_holds_kilobytes_and_runs(minilm, tmp_path):
    data = load_task_data(resources_dir() / "data" / "sentiment.csv", seed=0)
    updates: list[ft.TrainUpdate] = []
    r = ft.finetune(minilm, data, "frozen", out_dir=tmp_path / "sent", partial=updates.append)
    names = sorted(p.name for p in (tmp_path / "sent").iterdir())
    assert names == ["finetune.json", "head.safetensors"]
    assert r.stored_bytes == sum(p.stat().st_size for p in (tmp_path / "sent").iterdir()) < 20_000
    assert r.weight_bytes == 770 * 4 and r.trainable_parameters == 770
    assert updates and updates[-1].history == r.history
    meta = json.loads((tmp_path / "sent" / ft.META_FILE).read_text())
    assert meta["storage"] == "head" and meta["base_model"] == "minilm" and len(meta["base_sha256"]) == 64
    assert meta["stored_bytes"] == r.stored_bytes and meta["pooling"] == "mean"
    lm = load_model(str(tmp_path / "sent"))
    assert lm.heads == ["sequence-classification"] and lm.card.extra["finetune_base"] == "minilm"
    assert heads.classify(lm, "Honestly, the concert was absolutely wonderful.").label == "positive"
    assert heads.classify(lm, "Sadly, the food was dull and lifeless.").label == "negative"
    with pytest.raises(InputError, match="itself a fine-tune"):
        ft.finetune(lm, data, "frozen")


def test_base_model_missing_or_changed_is_refused(tiny_data, tiny_factory, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(tiny_factory("base"), base)
    lm = load_model(str(base))
    ft.finetune(lm, tiny_data, "frozen", out_dir=tmp_path / "head")
    ft.finetune(lm, tiny_data, "adapter", epochs=1, out_dir=tmp_path / "lora")
    assert load_model(str(tmp_path / "head")).heads == ["sequence-classification"]
    from tests.tiny import make_tiny_checkpoint

    make_tiny_checkpoint(base, "base", seed=1)  # other weights in the same place
    for folder in ("head", "lora"):
        with pytest.raises(ModelError, match="different weights"):
            load_model(str(tmp_path / folder))
    shutil.rmtree(base)
    for folder in ("head", "lora"):
        with pytest.raises(ModelError, match="not available"):
            load_model(str(tmp_path / folder))


def test_adapter_folder_is_small_and_runs(tiny_base, tiny_data, tmp_path):
    r = ft.finetune(tiny_base, tiny_data, "adapter", epochs=2, out_dir=tmp_path / "ad")
    names = {p.name for p in (tmp_path / "ad").iterdir()}
    assert names == {"adapter_config.json", "adapter_model.safetensors", "head_config.json", "finetune.json"}
    assert r.stored_bytes == sum(p.stat().st_size for p in (tmp_path / "ad").iterdir())
    full = ft.finetune(tiny_base, tiny_data, "full", epochs=1, out_dir=tmp_path / "full")
    assert "model.safetensors" in full.files and "tokenizer.json" in full.files
    assert r.stored_bytes < full.stored_bytes / 5
    lm = load_model(str(tmp_path / "ad"))
    assert lm.heads == ["sequence-classification"] and lm.card.extra["adapter_type"] == "LORA"
    assert list(heads.classify(lm, "good movie").scores) == ["negative", "positive"]


def test_an_earlier_finetune_is_replaced_but_user_files_survive(tiny_base, tiny_data, tmp_path):
    out = tmp_path / "run"
    ft.finetune(tiny_base, tiny_data, "full", epochs=1, out_dir=out)
    (out / "NOTES.md").write_text("my notes")
    (out / "README.md").write_text("my readme")
    (out / "charts").mkdir()
    (out / "charts" / "a.png").write_bytes(b"png")
    r = ft.finetune(tiny_base, tiny_data, "frozen", out_dir=out)
    assert (out / "NOTES.md").read_text() == "my notes" and (out / "README.md").read_text() == "my readme"
    assert (out / "charts" / "a.png").read_bytes() == b"png"
    assert not (out / "model.safetensors").exists()  # the earlier run's own files are gone
    assert set(r.files) == {"head.safetensors", "finetune.json"}
    assert not [p for p in out.iterdir() if p.name.startswith(".lmx")]


def test_scratch_is_the_same_architecture_from_random_weights(tiny_base, tiny_data):
    pre = ft.build_task_model(tiny_base, "classify", tiny_data.labels, "full", seed=3)
    scratch = ft.build_task_model(tiny_base, "classify", tiny_data.labels, "scratch", seed=3)
    again = ft.build_task_model(tiny_base, "classify", tiny_data.labels, "scratch", seed=3)
    emb = "bert.embeddings.word_embeddings.weight"
    base = tiny_base.model.state_dict()["embeddings.word_embeddings.weight"]
    assert pre.state_dict()[emb].equal(base) and not scratch.state_dict()[emb].equal(base)
    assert scratch.state_dict()[emb].equal(again.state_dict()[emb])
    assert sorted(pre.state_dict()) == sorted(scratch.state_dict())
    a, b = ft.compare_scratch(tiny_base, tiny_data, epochs=2, batch_size=8, seed=1)
    assert (a.mode, b.mode) == ("full", "scratch") and a.epochs == b.epochs == 2
    assert [x for x, _ in a.batch_losses] == [x for x, _ in b.batch_losses]  # the same steps
    assert a.learning_rate == b.learning_rate and a.seed == b.seed
    spec = ft.scratch_chart(a, b)
    names = [s.name for s in spec.series]
    assert "pre-trained accuracy" in names and "scratch loss" in names
    assert spec.meta["scratch"]["mode"] == "scratch"


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
    r = ft.finetune(tiny_base, data, "frozen", out_dir=tmp_path / "tok")
    assert r.task == "tokens" and r.labels == ["O", "B-LOC", "B-ORG", "B-PER"]
    assert r.trainable_parameters == 32 * 4 + 4 and r.converged
    lm = load_model(str(tmp_path / "tok"))
    res = heads.tag_tokens(lm, "john lives in berlin")
    assert {t.label for t in res.tokens} <= set(r.labels)


def test_progress_comes_while_a_big_file_is_read(tiny_base, tmp_path):
    """A 100,000-row file reports progress while it is tokenized, long before the first epoch."""
    rows = [Example(text=f"{POS[i % 12]} {i}", label="positive" if i % 2 else "negative") for i in range(100_000)]
    data = TaskData("classify", ["negative", "positive"], rows[:80_000], rows[80_000:])
    cancel = threading.Event()
    seen: list[str] = []

    def progress(_f: float, message: str) -> None:
        seen.append(message)
        if message.startswith("Tokenizing"):
            cancel.set()

    with pytest.raises(Cancelled):
        ft.finetune(tiny_base, data, "full", progress=progress, cancel=cancel)
    assert seen[-1] == "Tokenizing training rows: 1,000/80,000"


def test_cancel_between_batches_saves_nothing(tiny_base, tiny_data, tmp_path):
    cancel = threading.Event()

    def partial(update):
        if update.step == 1:
            cancel.set()

    with pytest.raises(Cancelled):
        ft.finetune(tiny_base, tiny_data, "full", epochs=3, batch_size=4, out_dir=tmp_path / "c",
                    cancel=cancel, partial=partial)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": "prefix"}, "mode"), ({"epochs": 0}, "epochs"), ({"learning_rate": float("nan")}, "lr"),
    ({"learning_rate": float("inf")}, "lr"), ({"learning_rate": -1.0}, "lr"), ({"lora_r": 0}, "lora-r"),
    ({"batch_size": 0}, "batch-size"), ({"seed": -1}, "seed"), ({"pooling": "median"}, "pooling"),
])
def test_bad_settings_are_refused_before_any_work(tiny_data, kwargs, match):
    with pytest.raises(InputError, match=match):
        ft.finetune(None, tiny_data, **{"mode": "full", **kwargs})  # no model is touched


def test_bad_folders(tiny_base, tiny_data, smollm2, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        ft.finetune(tiny_base, tiny_data, "frozen", out_dir=tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    with pytest.raises(InputError, match="not writable|not a folder"):
        ft.finetune(tiny_base, tiny_data, "frozen", out_dir="/proc/lmx-out")
    with pytest.raises(ModelError, match="encoder"):
        ft.plan(smollm2, "classify", 2)


def test_history_chart():
    hist = [ft.EpochReport(1, 0.7, 0.6, 1.0), ft.EpochReport(2, 0.5, 0.8, 1.0)]
    spec = ft.history_chart(hist, 0.5, [(0.5, 0.8), (1.0, 0.6)], baseline=0.5)
    names = [s.name for s in spec.series]
    assert names == ["batch loss", "epoch loss", "validation accuracy", "majority baseline"]
    assert spec.series[2].y == [0.5, 0.6, 0.8]
