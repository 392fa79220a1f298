"""Finding, converting, loading and describing models (catalog, GGUF, tokenizers, cards, the registry of
fine-tuned task folders): uses only io."""
