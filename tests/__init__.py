"""The test suite: core/ (no Qt), gui/ (pytest-qt, offscreen), cli/ and packaging/, on real models (tiny.py
builds the head types no package ships)."""
