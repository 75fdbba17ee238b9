"""Fixtures of the CLI tests: ``swarm`` run as the installed console script."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import console_script


@pytest.fixture(scope="module")
def swarm_exe() -> str:
    exe = console_script("swarm")
    if exe is None:
        pytest.skip("the 'swarm' console script is not on PATH: install the package (pip install -e .)")
    return exe


@pytest.fixture
def swarm(swarm_exe, subprocess_env, tmp_path):
    """Run ``swarm ARGS...`` in a temporary directory."""

    home = tmp_path / "home"            # no user configuration (~/.swarm-engine/config.toml) leaks in
    home.mkdir()

    def run(*args: str | Path, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([swarm_exe, *map(str, args)], capture_output=True, text=True, cwd=tmp_path,
                              env={**subprocess_env, "SWARM_HOME": str(home), **(env or {})}, timeout=120)

    return run
