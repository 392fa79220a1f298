"""Everyday English for minilm-mlm's third stage, written by the bundled SmolLM2-135M-Instruct (Apache-2.0).

Stages 1 and 2 left the project texts' top-5 flat at 53-54%: those texts are short everyday opinions, and the
redistributable English in Debian is documentation, dictionaries and sayings. This script samples everyday prose
(reviews, opinions, descriptions, messages, short stories, and simple facts about countries and cities) from
the project's own prompts (everyday subjects x ways of writing, places x two forms, below; none quotes a held-out
text) and appends one JSON line per generation to ``--out``. It resumes:
prompts already in the file are skipped. Sampling: top-p 0.95, temperature 0.9, a fixed seed per batch.
``pretrain_mlm.py --sources ...,smollm2_everyday`` reads the sentences back (held-out sentences dropped).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

import torch

from explorer.commands._common import finite_float, int_range

SUBJECTS = [
    "a coffee shop", "a hotel room", "a laptop", "a city museum", "a rock concert", "a pair of running shoes",
    "a bus ride to work", "a pizza restaurant", "a new phone", "a train journey", "a public library", "a dentist",
    "a supermarket", "a summer holiday by the sea", "a birthday party", "a football match", "a cooking class",
    "a rainy afternoon", "a winter morning", "a garden in spring", "a small bakery", "a cinema", "a theme park",
    "a camping trip", "a hiking trail", "a bicycle", "a washing machine", "a rented flat", "a first day at school",
    "a job interview", "a wedding", "a family dinner", "a pet dog", "a cat", "a music festival", "a zoo",
    "a swimming pool", "a gym", "a hairdresser", "a taxi", "an airport", "a video game", "a novel", "a film",
    "a television series", "a pair of headphones", "a kitchen knife", "a sofa", "a car", "a farmers' market",
    "a street market", "a tea shop", "a sandwich", "a bowl of soup", "a chocolate cake", "a beach", "a mountain",
    "a river", "a village", "a big city", "a hospital visit", "a post office", "a bank branch", "a school teacher",
    "a science lesson", "a history book", "a board game", "a piano lesson", "a guitar", "a painting class",
    "a boat trip", "a snowy day", "a thunderstorm", "a picnic", "a neighbour", "an old friend", "a grandmother",
    "a baby", "a farm", "a vegetable garden", "an online shop", "a delivery service", "a mobile app", "a printer",
    # added for the second corpus (ids of the subjects above unchanged, so a resumed file keeps its lines)
    "a sequel", "a documentary", "a stand-up comedy show", "a tour guide", "a waiter", "customer support",
    "a battery", "a smartwatch", "a vacuum cleaner", "a coffee machine", "a dishwasher", "a fridge", "a mattress",
    "a backpack", "a winter coat", "a pair of jeans", "an umbrella", "a bookshop", "a shopping centre",
    "a petrol station", "a car park", "a city park", "a playground", "a nursery school", "a university lecture",
    "a driving lesson", "a yoga class", "a swimming lesson", "a dance class", "a barbecue", "a breakfast café",
    "a fish and chip shop", "a burger", "a salad", "an ice cream shop", "a cup of tea", "a plumber",
    "an electrician", "a builder", "a street festival",
]
FORMS = [
    "Write two sentences of an honest review of {s}.",
    "Describe {s} in three short, simple sentences.",
    "Write a short message to a friend about {s}.",
    "Write three simple facts about {s}.",
    "What do people like and dislike about {s}? Answer in two sentences.",
    "Tell a very short story about {s}.",
    "Write a short, negative review of {s}.",
    "Write a short, positive review of {s}.",
    "Write four one-sentence opinions about {s}, each from a different person.",
    "Write three short comments customers left about {s}: one good, one bad, one mixed.",
]
# General knowledge of the world, as an encyclopedia's opening lines give it (countries, capitals, cities)
PLACES = [
    "France", "Germany", "Italy", "Spain", "Portugal", "Japan", "China", "India", "Brazil", "Mexico", "Canada",
    "Egypt", "Kenya", "Australia", "Russia", "Greece", "Turkey", "Norway", "Sweden", "Ireland", "Scotland",
    "Poland", "Argentina", "Peru", "Thailand", "Vietnam", "South Korea", "Nigeria", "Morocco", "New Zealand",
    "London", "Paris", "Rome", "Berlin", "Madrid", "Tokyo", "Beijing", "New York", "Cairo", "Sydney", "Moscow",
    "Athens", "Istanbul", "Dublin", "Amsterdam", "Vienna", "Prague", "Lisbon", "Toronto", "Mumbai",
]
PLACE_FORMS = [
    "Write three simple facts about {s}.",
    "Describe {s} to a child in three sentences.",
]


def prompts() -> list[tuple[str, str]]:
    """(id, prompt) for every subject x form and place x place form, in a fixed order."""
    return ([(f"{i}-{j}", form.format(s=subject)) for i, subject in enumerate(SUBJECTS)
             for j, form in enumerate(FORMS)]
            + [(f"p{i}-{j}", form.format(s=place)) for i, place in enumerate(PLACES)
               for j, form in enumerate(PLACE_FORMS)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON lines, appended (resumes)")
    ap.add_argument("--rounds", type=int_range(1, 1000), default=2, help="generations per prompt (each its own seed)")
    ap.add_argument("--batch", type=int_range(1, 512), default=24)
    ap.add_argument("--max-new-tokens", type=int_range(1, 1024), default=80)
    ap.add_argument("--threads", type=int_range(1, 256), default=2)
    ap.add_argument("--minutes", type=finite_float(0, lo_open=True), help="stop after this long (run again to go on)")
    args = ap.parse_args(argv)
    if args.out.exists() and not args.out.is_file():
        ap.error(f"--out {args.out} exists and is not a regular file")
    done = set()
    if args.out.is_file():
        try:
            done = {json.loads(line)["id"] for line in args.out.read_text(encoding="utf-8").splitlines()
                    if line.strip()}
        except (ValueError, KeyError, TypeError):
            ap.error(f"--out {args.out} holds a line that is not one of this script's (JSON with an id): "
                     "name a new file, or mend that line")
    torch.set_num_threads(args.threads)
    from explorer.core.models.loading import load_model

    todo = [(f"{pid}-r{r}", text) for r in range(args.rounds) for pid, text in prompts()
            if f"{pid}-r{r}" not in done]
    print(f"{len(done)} generations on file, {len(todo)} to go", flush=True)
    if not todo:
        return 0
    lm = load_model("smollm2")
    model, tok = lm.model, lm.tokenizer
    tok.padding_side = "left"
    start = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a", encoding="utf-8") as out:
        for b in range(0, len(todo), args.batch):
            batch = todo[b:b + args.batch]
            chats = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                             add_generation_prompt=True) for _, p in batch]
            enc = tok(chats, return_tensors="pt", padding=True)
            torch.manual_seed(zlib.crc32(batch[0][0].encode()))  # the batch's first id: stable on resume
            with torch.no_grad():
                gen = model.generate(**enc, max_new_tokens=args.max_new_tokens, do_sample=True, top_p=0.95,
                                     temperature=0.9, pad_token_id=tok.pad_token_id)
            texts = tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            for (gid, p), t in zip(batch, texts, strict=True):
                out.write(json.dumps({"id": gid, "prompt": p, "text": t}, ensure_ascii=False) + "\n")
            out.flush()
            minutes = (time.perf_counter() - start) / 60
            print(f"{b + len(batch)}/{len(todo)} generations, {minutes:.1f} min", flush=True)
            if args.minutes and minutes >= args.minutes:
                print("stopped by --minutes; run again to go on", flush=True)
                return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
