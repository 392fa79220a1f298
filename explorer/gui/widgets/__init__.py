"""Reusable Qt widgets: the chart with its exports, token strip, head view, text input, model picker, layouts."""
