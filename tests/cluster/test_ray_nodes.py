"""A real two-node Ray cluster on 127.0.0.1 (a head and a second node, each `ray start`):
chunks cross nodes, the CLI joins it through RAY_ADDRESS, and a node killed mid-eval
costs a retry, never a run."""

from __future__ import annotations

import json

import pytest

from swarm_engine.cluster.ray_eval import run_eval_cluster
from swarm_engine.eval.builtin import builtin_scenario
from swarm_engine.eval.loader import load_scenario
from swarm_engine.eval.report import build_report
from swarm_engine.eval.runner import run_eval
from tests.cluster.conftest import assert_same_runs, comparable, ray_auth_env, two_ray_nodes

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[cluster]' (.ci/run installs it)")


@pytest.fixture(scope="module")
def nodes(ray_temp_dir, subprocess_env):
    with two_ray_nodes(ray_temp_dir, subprocess_env) as cluster:
        yield cluster


def test_chunks_run_on_both_nodes(nodes):
    sc = load_scenario(builtin_scenario("troubleshooting"))
    local = run_eval(sc, 600, 1)
    remote = run_eval_cluster(sc, 600, 1, chunk_runs=25, address=nodes.address)
    assert comparable(build_report(remote)) == comparable(build_report(local))
    used = remote.cluster["nodes"]
    assert len(used) == 2 and all(n["chunks"] > 0 for n in used)


def test_the_cli_joins_the_cluster_of_ray_address(nodes, swarm_exe_path, subprocess_env, tmp_path):
    import subprocess

    path = builtin_scenario("search")
    env = {**subprocess_env, **ray_auth_env(), "SWARM_HOME": str(tmp_path),
           "RAY_ADDRESS": nodes.address}
    run = lambda *args, **more: subprocess.run(
        [swarm_exe_path, "eval", str(path), "-n", "150", "-s", "9", "-q", *args], capture_output=True, text=True,
        env={**env, **more}, cwd=tmp_path, timeout=300)
    # and chunk 0's first worker dies (test-only fault injection): a warning line, a recorded retry
    here, there = run("-o", "local.json"), run("-o", "cluster.json", "--cluster", "auto", "--chunk-cpus", "1",
                                               SWARM_CLUSTER_CRASH="0")
    assert here.returncode == 0 and there.returncode == 0, there.stderr
    local, remote = (json.loads((tmp_path / f).read_text()) for f in ("local.json", "cluster.json"))
    assert comparable(remote) == comparable(local)
    assert remote["cluster"]["address"] == f"auto ({nodes.address})" and remote["cluster"]["cpus"] == 2
    assert remote["cluster"]["chunk_cpus"] == 1
    # more CPUs per chunk than any node has: one line, exit 1, no run
    big = run("-o", "big.json", "--cluster", "auto", "--chunk-cpus", "2")
    lines = [line for line in big.stderr.splitlines() if line.strip()]
    assert big.returncode == 1 and len(lines) == 1, big.stderr
    assert lines[0].startswith("error: no node of the Ray cluster has 2 CPUs for a chunk (the most: 1)")
    assert not (tmp_path / "big.json").exists()
    assert [r["chunk"] for r in remote["cluster"]["retries"]] == [0]
    assert "warning: chunk 0 (seeds 9.." in there.stderr and "ran again" in there.stderr


def test_a_node_killed_mid_eval_costs_a_retry_not_a_run(nodes):
    """Last in this module: it takes the second node down. Chunks of ~0.3 s (120,000 runs of
    ~2.5 us): when the first one is back, the second node is in the middle of one (the gap
    between two of its chunks is a few ms of the 0.3 s)."""
    sc = load_scenario(builtin_scenario("troubleshooting"))
    second = nodes.procs[1]
    killed = []

    def kill_second_node(done: int, ok: int) -> None:
        if not killed:
            killed.append(done)
            nodes.kill(second)

    runs = 1_200_000
    remote = run_eval_cluster(sc, runs, 3, chunk_runs=120_000, progress=kill_second_node, address=nodes.address)
    assert killed and second.poll() is not None
    assert remote.runs == runs and not remote.stopped
    assert_same_runs(remote, run_eval(sc, runs, 3))
    assert remote.cluster["retries"], "no chunk was lost with the node"
    # a chunk whose result was on the dead node's object store may come back as either object
    # error; one queued there (pinned: a whole node per chunk) as TaskUnschedulableError
    assert {r["error"] for r in remote.cluster["retries"]} <= {"WorkerCrashedError", "NodeDiedError",
                                                               "LocalRayletDiedError", "ObjectLostError",
                                                               "ObjectReconstructionFailedError",
                                                               "TaskUnschedulableError"}
    assert sum(n["runs"] for n in remote.cluster["nodes"]) == runs
