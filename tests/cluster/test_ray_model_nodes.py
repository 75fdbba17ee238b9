"""Model hosts on a two-node Ray cluster on 127.0.0.1 (each node a `ray start` of 1 CPU):
one host per node, each loading the model once, and the second node killed mid-eval
costs a retry on the head's host, never a run. The real SmolLM2-135M, as in
test_ray_models.py (whose small scenario this reuses)."""

from __future__ import annotations

import pytest

from swarm_engine.cluster.ray_eval import run_eval_cluster
from swarm_engine.eval.loader import load_scenario
from swarm_engine.eval.runner import run_eval
from tests.cluster.conftest import assert_same_runs, two_ray_nodes
from tests.cluster.test_ray_models import tiny  # noqa: F401 (the small scenario's fixture)
from tests.llm.tiny_cascade import needs_model

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[cluster]' (.ci/run installs it)")

RUNS, SEED = 4, 7


@pytest.fixture(scope="module")
def two_nodes(ray_temp_dir, subprocess_env):
    with two_ray_nodes(ray_temp_dir, subprocess_env) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def local(tiny):  # noqa: F811 (the fixture imported above)
    return run_eval(load_scenario(tiny), RUNS, SEED)


@needs_model
def test_one_host_per_node_each_loading_once(two_nodes, tiny, local):  # noqa: F811
    remote = run_eval_cluster(load_scenario(tiny), RUNS, SEED, chunk_runs=1, address=two_nodes.address)
    assert_same_runs(remote, local)
    models = remote.cluster["models"]
    assert len({m["node_id"] for m in models}) == 2 == len(models)
    assert sum(m["chunks"] for m in models) == RUNS and all(m["chunks"] >= 1 for m in models)
    assert remote.cluster["retries"] == []


@needs_model
def test_the_second_node_killed_mid_eval_costs_a_retry(two_nodes, tiny, local):  # noqa: F811
    """Last in this module: it takes the second node down after the first chunk came back;
    its host's chunk (or the next one dealt to it) runs again on the head's host."""
    second = two_nodes.procs[1]
    killed: list[int] = []

    def kill_second_node(done: int, ok: int) -> None:
        if not killed:
            killed.append(done)
            two_nodes.kill(second)

    remote = run_eval_cluster(load_scenario(tiny), RUNS, SEED, chunk_runs=1, address=two_nodes.address,
                              progress=kill_second_node)
    assert killed and remote.runs == RUNS and not remote.stopped
    assert_same_runs(remote, local)
    assert remote.cluster["retries"], "no chunk was lost with the node"
    head = ray.get_runtime_context().get_node_id()
    assert sum(m["chunks"] for m in remote.cluster["models"] if m["node_id"] == head) >= RUNS - 1
