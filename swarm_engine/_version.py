"""The package's version: the one place it is written (pyproject.toml reads it
through ``[tool.setuptools.dynamic]``), and a base module so that any layer may
name the version without importing the package face."""

__all__ = ["__version__"]

__version__ = "0.1.0"
