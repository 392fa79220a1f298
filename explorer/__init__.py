"""LM Explorer: see and run what 'BERT and its family' and GPT-3 explain."""

__version__ = "0.1.0"
