"""The one packaging fact pyproject.toml cannot state: the repository's top-level resources/ folder installs as
the package explorer.resources (the rest of the configuration is in pyproject.toml)."""

from setuptools import find_namespace_packages, find_packages, setup

RESOURCES = ["explorer.resources", *(f"explorer.resources.{p}" for p in find_namespace_packages(where="resources"))]

setup(
    packages=[*find_packages(include=["explorer", "explorer.*"]), *RESOURCES],
    package_dir={"explorer.resources": "resources"},
)
