"""LM Explorer: see and run what 'BERT and its family' and GPT-3 explain."""

__version__ = "0.1.0"


def _load_resources() -> None:
    """Load the package ``explorer.resources`` from the folder that holds the shipped files.

    Installed (a wheel, the PyInstaller bundle) that folder is ``explorer/resources`` (setup.py maps it there);
    in a checkout and its editable install it is the repository's top-level ``resources/``, as the design card
    puts it. Loading it by its path under one name lets ``importlib.resources`` find every file the same way in
    all of them.
    """
    import importlib.util
    import sys
    from pathlib import Path

    if "explorer.resources" in sys.modules:
        return
    here = Path(__file__).resolve().parent
    for folder in (here / "resources", here.parent / "resources"):  # installed; a checkout
        if (folder / "__init__.py").is_file():
            spec = importlib.util.spec_from_file_location("explorer.resources", folder / "__init__.py",
                                                          submodule_search_locations=[str(folder)])
            module = importlib.util.module_from_spec(spec)
            sys.modules["explorer.resources"] = module
            spec.loader.exec_module(module)
            return


_load_resources()
