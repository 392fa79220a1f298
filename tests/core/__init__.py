"""Tests of the Qt-free core, one module per area or feature, on the bundled models and tiny random checkpoints."""
