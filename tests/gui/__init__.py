"""Tests of the window and its panels, driven with pytest-qt on the offscreen platform."""
