"""Shared fixtures: paths, the troubleshooting scenario, subprocess environments."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

import swarm_engine
from tests.paths import DATA, ROOT, SCENARIOS

__all__ = ["wait_for"]

TROUBLESHOOTING = SCENARIOS / "troubleshooting.toml"

# Scenarios name test environments as ``python:tests.envs_example:Vault``; a
# bare ``pytest`` (unlike ``python -m pytest``) does not put the repository on
# sys.path. Appended, not prepended, so an installed swarm_engine still wins.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))


def wait_for(cond, what: str, timeout: float = 60.0):
    """Wait until ``cond()`` is truthy and return its value; an AssertionError
    naming ``what`` after ``timeout`` seconds (a deadline against hangs, not a
    speed check: it polls every 20 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def troubleshooting_path() -> Path:
    return TROUBLESHOOTING


@pytest.fixture
def troubleshooting():
    """The shipped troubleshooting scenario, freshly loaded (Scenario is mutable)."""
    return swarm_engine.load_scenario(TROUBLESHOOTING)


@pytest.fixture(scope="session")
def subprocess_env() -> dict[str, str]:
    """Environment for child processes: they import the same swarm_engine as
    this process (installed or in-place build) and can import ``tests.*``."""
    # SWARM_* variables (SWARM_DEBUG, SWARM_HOME, SWARM_EVAL_RUNS, ...) would change what is tested
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARM_")}
    package_parent = str(Path(swarm_engine.__file__).resolve().parent.parent)
    parts = [package_parent, str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    env["COLUMNS"] = "200"      # rich wraps tables at the terminal width; keep rows whole
    env["NO_COLOR"] = "1"
    return env
