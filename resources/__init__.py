"""The files the app ships: sample texts, small labelled data sets, prompting tasks, presets, icons and the
bundled MiniLM's masked-LM head. At the repository's top level; installed as ``explorer.resources`` (setup.py
maps it), and loaded under that name wherever it lies by ``explorer/__init__.py``."""
