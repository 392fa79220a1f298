"""Task heads, fine-tuning, the frozen probe, the fine-tuned task store, evaluation and data sets."""
