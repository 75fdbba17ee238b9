"""Shared fixtures: paths, the troubleshooting scenario, subprocess environments."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import swarm_engine
from tests.paths import DATA, ROOT, TROUBLESHOOTING

__all__ = ["wait_for", "with_default_sigint", "OutputReader", "stop_process", "signal_and_wait", "event_columns",
           "assert_same_columns"]

# Scenarios name test environments as ``python:tests.envs_example:Vault``; a
# bare ``pytest`` (unlike ``python -m pytest``) does not put the repository on
# sys.path. Appended, not prepended, so an installed swarm_engine still wins.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))


def console_script(name: str) -> str | None:
    """The console script ``name`` of the environment running the tests (beside
    ``sys.executable``: a venv's bin/ that is not on PATH), else the one on PATH."""
    here = Path(sys.executable).with_name(name)
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    import shutil

    return shutil.which(name)


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


def event_columns(events) -> dict[str, np.ndarray]:
    """An EventBatch as its columns (what a trace comparison compares)."""
    return {f: getattr(events, f) for f in events.__dataclass_fields__}


def assert_same_columns(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    """Two column dicts (events, run results) hold the same names and equal arrays."""
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# Runs argv[1:] with SIGINT at its default disposition. A shell without job
# control starts background commands (``nohup python -m pytest &``) with SIGINT
# ignored; the ignore is inherited across fork and exec, and a Python child
# whose SIGINT is ignored at start-up installs no KeyboardInterrupt handler, so
# a test's Ctrl-C would never reach it. Exec'ing through this keeps the pid.
_DEFAULT_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                   "os.execv(sys.argv[1], sys.argv[1:])")


def with_default_sigint(argv: list[str]) -> list[str]:
    """``argv`` started so that the child receives SIGINT as a terminal's Ctrl-C
    would deliver it, whatever this test process inherited."""
    return [sys.executable, "-c", _DEFAULT_SIGINT, *argv]


class OutputReader:
    """Collects a child's output pipe (opened in binary mode) on a thread, so a
    test can wait for a readiness signal in it without blocking or sleeping."""

    def __init__(self, stream) -> None:
        self._chunks: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:       # a binary pipe: read1 returns what is there, b"" at the end
        for chunk in iter(lambda: stream.read1(65536), b""):
            with self._lock:
                self._chunks.append(chunk.decode("utf-8", "replace"))

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._chunks)

    def finish(self, timeout: float = 60.0) -> str:
        """All the output, once the stream has closed (the child exited)."""
        self._thread.join(timeout)
        return self.text


def signal_and_wait(proc: subprocess.Popen, sig: int, timeout: float = 60.0) -> tuple[str, str]:
    """Send ``sig`` (a clean stop: SIGINT, SIGTERM) and wait for the process to
    exit; its (stdout, stderr). Pair it with :func:`stop_process` in a ``finally``."""
    proc.send_signal(sig)
    return proc.communicate(timeout=timeout)


def stop_process(proc: subprocess.Popen) -> None:
    """Kill ``proc`` if it still runs, reap it and close its pipes (a test's ``finally``)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=60)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


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
