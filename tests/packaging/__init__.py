"""Tests of what is installed: the wheel from another directory, and the desktop entry."""
