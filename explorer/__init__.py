"""LM Explorer: see and run what 'BERT and its family' and GPT-3 explain."""

__version__ = "0.1.0"


def _checkout_resources() -> None:
    """Load a checkout's top-level ``resources/`` as ``explorer.resources``.

    Installed from a wheel, the files are the package ``explorer/resources`` (setup.py maps the folder there) and
    nothing is done here. In a checkout, and in its editable install, they stay at the repository's top level, as
    the design card puts them; loading that folder under the same name lets ``importlib.resources`` find every
    file the same way in both.
    """
    import importlib.util
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    top = here.parent / "resources"
    if "explorer.resources" in sys.modules or (here / "resources").is_dir() or not (top / "__init__.py").is_file():
        return
    spec = importlib.util.spec_from_file_location("explorer.resources", top / "__init__.py",
                                                  submodule_search_locations=[str(top)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["explorer.resources"] = module
    spec.loader.exec_module(module)


_checkout_resources()
