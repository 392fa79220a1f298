"""Masking sampler benchmark: 10,000 SpanBERT maskings of a 512-token text (DESIGN: under a second)."""

from __future__ import annotations

import time


def bench_span_sampler() -> dict:
    """Time ``sample_stats(..., "span", samples=10000)`` on the bundled long sample cut to 512 MiniLM tokens."""
    from transformers import AutoTokenizer

    from explorer.core.io.paths import resources_dir
    from explorer.core.models.catalog import resolve
    from explorer.core.pretraining.masking import sample_stats
    from explorer.core.pretraining.words import tokenize_words

    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm").location)
    text = (resources_dir() / "samples" / "long-pretraining.txt").read_text(encoding="utf-8")
    tt = tokenize_words(tokenizer, text, max_length=512)
    sample_stats(tt, "span", samples=200, seed=1)  # warm-up
    start = time.perf_counter()
    stats = sample_stats(tt, "span", samples=10_000, seed=0)
    seconds = time.perf_counter() - start
    return {
        "name": "span_sampler_10k_512",
        "seconds": seconds,
        "tokens": tt.n,
        "samples": stats.samples,
        "mask_ratio_mean": stats.mask_ratio_mean,
        "span_length_mean": stats.span_length_mean,
        "theory_mean": stats.theory_mean,
        "target_seconds": 1.0,
        "ok": seconds < 1.0,
    }


if __name__ == "__main__":
    print(bench_span_sampler())
