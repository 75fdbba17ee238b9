"""Fixtures of the Ray tests: reports made comparable, and Ray nodes started with `ray start`.

Every Ray here binds 127.0.0.1, runs without its dashboard, keeps its files
in a fresh short temporary folder (Ray's socket paths must stay under 108
bytes) and is stopped by its own process group, so a failing test leaves no
Ray behind and no other Ray on the machine is touched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import console_script, wait_for

__all__ = ["comparable", "assert_same_runs", "free_port", "RayNodes", "ray_temp_dir", "ray_auth_env"]

# what differs between two evals of the same runs: timings, and where they ran
_TIMING = ("wall_seconds", "actions_per_sec")


def comparable(report: dict) -> dict:
    """``report`` without its timings, its ``cluster`` section and the manifest's ``jobs``
    entry (how this machine spread the runs): equal for two evals of the same runs."""
    out = {k: v for k, v in report.items() if k not in ("cluster",)}
    if isinstance(report.get("manifest"), dict):
        out["manifest"] = {k: v for k, v in report["manifest"].items() if k != "jobs"}
    out["summary"] = {k: v for k, v in report["summary"].items() if k not in _TIMING}
    if "runs" in report:
        out["runs"] = [{k: v for k, v in r.items() if k not in _TIMING} for r in report["runs"]]
    return out


def assert_same_runs(a, b) -> None:
    """Two EvalResults hold the same runs (every per-run array but the wall times), for evals
    too large to compare as reports."""
    from swarm_engine.eval.merge import ARRAY_FIELDS

    for name in ARRAY_FIELDS:
        if name != "wall":
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.reason == b.reason
    for table in ("conditions", "milestones", "per_run_llm"):
        x, y = getattr(a, table), getattr(b, table)
        assert x.keys() == y.keys()
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=f"{table}.{key}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Ray (2.5x+) turns token authentication on for the clusters it starts, and reads the
# mode when it is imported: a token of this test session's own, set up before any
# test module imports ray, so that nothing is read from or written to ~/.ray and the
# driver, the `ray start` nodes and `swarm` subprocesses share it. A user's own
# RAY_AUTH_MODE is left alone.
_AUTH_DIR = tempfile.mkdtemp(prefix="rtauth", dir="/tmp")
if "RAY_AUTH_MODE" not in os.environ:
    (Path(_AUTH_DIR) / "auth_token").write_text(secrets.token_hex(32))
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(Path(_AUTH_DIR) / "auth_token"))


def ray_auth_env() -> dict[str, str]:
    """What a Ray process needs to join this session's clusters."""
    return {k: os.environ[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN") if k in os.environ}


@pytest.fixture(scope="session", autouse=True)
def _remove_auth_dir() -> Iterator[None]:
    yield
    shutil.rmtree(_AUTH_DIR, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_temp_dir() -> Iterator[str]:
    """Ray's folder for one module (short: Ray's socket paths must stay under 108 bytes)."""
    path = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class RayNodes:
    """A head and more nodes, each a ``ray start --block`` in its own process group."""

    temp_dir: str
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # a killed node is declared dead in about a second, not Ray's default of tens
    HEALTH = {"RAY_health_check_initial_delay_ms": "500", "RAY_health_check_period_ms": "300",
              "RAY_health_check_timeout_ms": "300", "RAY_health_check_failure_threshold": "3"}

    def start(self, cpus: int) -> subprocess.Popen:
        """Start one more node (the first one is the head); the caller waits for it to join."""
        exe = console_script("ray") or "ray"
        common = ["--block", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}", "--num-gpus=0",
                  "--disable-usage-stats"]
        if not self.procs:
            args = [exe, "start", "--head", f"--port={self.port}", "--include-dashboard=false",
                    f"--temp-dir={self.temp_dir}", "--object-store-memory=100000000", *common]
        else:
            args = [exe, "start", f"--address={self.address}", "--object-store-memory=100000000", *common]
        env = {**self.env, **ray_auth_env(), **self.HEALTH}
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """The node dies at once: its `ray start`, raylet and workers (its process group)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            self.kill(proc)
        time.sleep(0.5)              # let the killed groups' last children go before the folder does


@contextlib.contextmanager
def local_ray(temp_dir: str) -> Iterator[None]:
    """``ray.init`` of a local Ray with 2 CPUs on 127.0.0.1 (a module's fixture wraps it)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", _temp_dir=temp_dir,
             object_store_memory=100_000_000, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def two_ray_nodes(temp_dir: str, env: dict[str, str]) -> Iterator[RayNodes]:
    """A head and a second node started with ``ray start`` (1 CPU each), this driver
    connected, a worker up on each; everything stopped at the end."""
    import ray

    cluster = RayNodes(temp_dir, env)
    try:
        cluster.start(cpus=1)
        wait_for(lambda: _answers(cluster.address), "the Ray head", timeout=180)
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
        cluster.start(cpus=1)
        wait_for(lambda: len([n for n in ray.nodes() if n["Alive"]]) == 2, "the second Ray node", timeout=180)
        _a_worker_on_each_node()
        yield cluster
    finally:
        ray.shutdown()
        cluster.stop()


def _a_worker_on_each_node() -> None:
    """Both nodes have started a worker: otherwise the head, whose worker is up first,
    can finish a small eval alone before the second node's first worker has started."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    where = ray.remote(num_cpus=1)(lambda: ray.get_runtime_context().get_node_id())
    ids = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    got = ray.get([where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(i, soft=False)).remote()
                   for i in ids], timeout=180)
    assert sorted(got) == sorted(ids)


def _answers(address: str) -> bool:
    host, port = address.split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def swarm_exe_path() -> str:
    exe = console_script("swarm")
    if exe is None:
        pytest.skip("the 'swarm' console script is not on PATH: install the package (pip install -e .)")
    return exe
