"""Finding, converting, loading and describing models (catalog, GGUF, tokenizers, cards): uses only io."""
