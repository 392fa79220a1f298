"""Streamed generation (the app's token-by-token loop with a callback) vs bare ``model.generate``, same settings.

Run: ``.venv/bin/python benchmarks/bench_generation.py``; prints JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPT = "Once upon a time, in a small village by the sea, there lived an old fisherman who"


def bench_generation(model_name: str = "smollm2", new_tokens: int = 48, repeats: int = 5) -> dict:
    """Median tokens/s of the app's streamed greedy generation and of bare ``model.generate`` (greedy, same
    prompt, same number of new tokens; tokenizing and decoding included in both), measured alternately."""
    import torch

    from explorer.core.models.loading import load_model
    from explorer.core.prompting.generation import GenerationSettings, generate

    lm = load_model(model_name)
    tok = lm.tokenizer
    settings = GenerationSettings(max_new_tokens=new_tokens)

    def bare() -> int:
        enc = tok(PROMPT, return_tensors="pt")
        with torch.no_grad():
            out = lm.model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        return int(out.shape[1] - enc["input_ids"].shape[1])

    pieces: list[str] = []

    def app() -> int:
        pieces.clear()
        res = generate(lm, PROMPT, settings, partial=lambda d: pieces.append(d["delta"]))
        return len(res.steps)

    bare()
    app()  # warm up both
    app_tps, bare_tps = [], []
    for _ in range(repeats):
        for fn, store in ((bare, bare_tps), (app, app_tps)):
            t0 = time.perf_counter()
            n = fn()
            store.append(n / (time.perf_counter() - t0))
    a, b = statistics.median(app_tps), statistics.median(bare_tps)
    return {
        "model": model_name,
        "new_tokens": new_tokens,
        "prompt_tokens": len(tok(PROMPT)["input_ids"]),
        "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
        "app_tokens_per_second": a,
        "bare_tokens_per_second": b,
        "ratio": a / b,
        "target_ratio": 0.9,
    }


if __name__ == "__main__":
    print(json.dumps(bench_generation(), indent=1))
