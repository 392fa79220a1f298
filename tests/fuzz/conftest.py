"""The fuzz corpus runs with ``make test-fuzz`` (LM_EXPLORER_FUZZ=1): each case is a fresh process, so the whole
set takes minutes on a busy machine and stays out of ``make test``."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):  # noqa: ANN001 - pytest's hook signature
    if os.environ.get("LM_EXPLORER_FUZZ") == "1":
        return
    skip = pytest.mark.skip(reason="fuzz corpus: run with `make test-fuzz`")
    for item in items:
        if "tests/fuzz/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)
