"""Qt-free model, text and analysis code shared by the window and the CLI, in six areas (see docs/ARCHITECTURE.md).

Importing it registers tuning's fine-tuned task folders with the model loader (``models.folders``), so a folder
written by a fine-tune opens wherever a model does, while models never imports tuning.
"""

from explorer.core.tuning import taskstore as _taskstore  # noqa: F401 - registers its folder loaders
