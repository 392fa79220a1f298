"""Benchmarks of LM Explorer against bare transformers and the targets in DESIGN.md ("Performance").

Run ``make bench`` (or ``python -m benchmarks.run``); results go to ``benchmarks/results/latest.json`` and ``.md``.
"""
