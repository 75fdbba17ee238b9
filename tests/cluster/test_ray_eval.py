"""Cluster evals on a local Ray (``ray.init`` with 2 CPUs): the report of a local run, run for run.

The chunks run in Ray's worker processes, so each crosses a process
boundary: the scenario travels as text and comes back as arrays.
"""

from __future__ import annotations

import re

import pytest

from swarm_engine.cluster.ray_eval import CRASH_ENV, run_eval_cluster
from swarm_engine.errors import ClusterError, ConfigError
from swarm_engine.eval.builtin import builtin_scenario
from swarm_engine.eval.loader import load_scenario
from swarm_engine.eval.report import build_report
from swarm_engine.eval.runner import run_eval
from tests.cluster.conftest import assert_same_runs, comparable, local_ray
from tests.paths import DATA

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[cluster]' (.ci/run installs it)")


@pytest.fixture(scope="module", autouse=True)
def one_local_ray(ray_temp_dir):
    with local_ray(ray_temp_dir):
        yield


def _both(path, runs: int, seed: int, **cluster):
    sc = load_scenario(path)
    local = run_eval(sc, runs, seed)
    remote = run_eval_cluster(sc, runs, seed, **cluster)
    return local, remote


@pytest.mark.parametrize(("path", "runs", "seed", "chunk"), [
    (builtin_scenario("troubleshooting"), 500, 7, 37),
    (builtin_scenario("search"), 200, 0, 64),
    (builtin_scenario("cascade"), 120, 2**40, 50),
    (DATA / "vault.toml", 60, 3, 16),                    # a Python environment: imported by the worker
])
def test_report_equals_the_local_one(path, runs, seed, chunk):
    local, remote = _both(path, runs, seed, chunk_runs=chunk)
    assert comparable(build_report(remote)) == comparable(build_report(local))
    cluster = build_report(remote)["cluster"]
    assert cluster["chunks"] == -(-runs // chunk) and cluster["retries"] == []
    assert sum(n["runs"] for n in cluster["nodes"]) == runs
    assert "cluster" not in build_report(local)


@pytest.mark.parametrize(("chunk_cpus", "slots"), [(0, 1), (1, 2), (2, 1)])
def test_adapted_chunks_give_the_same_runs(chunk_cpus, slots):
    """A whole node per chunk (0: the local Ray's 2 CPUs, on 2 threads), or 1 or 2 CPUs each."""
    local, remote = _both(builtin_scenario("troubleshooting"), 3000, 11, chunk_cpus=chunk_cpus)
    assert comparable(build_report(remote)) == comparable(build_report(local))
    assert remote.cluster["chunks"] >= 2 * slots           # every slot had work, twice over
    assert remote.cluster["cpus"] == 2 and remote.cluster["driver_seconds"] > 0
    assert remote.cluster["chunk_cpus"] == chunk_cpus and remote.cluster["cpus_per_chunk"] == 2 // slots
    [node] = remote.cluster["nodes"]
    assert node["threads"] == 2 // slots                   # what the chunks' run_eval used there


def test_whole_node_chunks_run_on_the_node_threads_and_match_big_evals():
    sc = load_scenario(builtin_scenario("troubleshooting"))
    remote = run_eval_cluster(sc, 200_000, 4, chunk_runs=50_000)
    assert_same_runs(remote, run_eval(sc, 200_000, 4))
    assert remote.cluster["cpus_per_chunk"] == 2 and remote.cluster["nodes"][0]["threads"] == 2


@pytest.mark.parametrize(("chunk_cpus", "line"), [
    (3, r"^no node of the Ray cluster has 3 CPUs for a chunk \(the most: 2\); give --chunk-cpus at most 2"),
    (-1, r"^--chunk-cpus: got -1, expected 0 \(a whole node per chunk\) or 1\.\.1024$"),
    (5000, r"^--chunk-cpus: got 5000, expected 0"),
])
def test_chunk_cpus_that_cannot_run_is_one_line(chunk_cpus, line):
    sc = load_scenario(builtin_scenario("troubleshooting"))
    with pytest.raises((ClusterError, ConfigError), match=line):
        run_eval_cluster(sc, 20, 0, chunk_cpus=chunk_cpus)


def test_a_worker_killed_mid_eval_is_retried_and_recorded(monkeypatch):
    monkeypatch.setenv(CRASH_ENV, "2")                     # chunk 2's first attempt: os._exit in the worker
    local, remote = _both(builtin_scenario("troubleshooting"), 400, 5, chunk_runs=50)
    assert comparable(build_report(remote)) == comparable(build_report(local))
    assert remote.runs == 400 and not remote.stopped
    [retry] = remote.cluster["retries"]
    assert retry["chunk"] == 2 and retry["seeds"] == [105, 154] and retry["attempt"] == 0
    assert retry["error"] == "WorkerCrashedError"


def test_a_chunk_that_dies_every_time_ends_the_eval_in_one_line(monkeypatch):
    monkeypatch.setenv(CRASH_ENV, "0")
    lost = r"^chunk 0 \(seeds 0\.\.9\) was lost on all 1 attempts, last: WorkerCrashedError"
    with pytest.raises(ClusterError, match=lost):
        run_eval_cluster(load_scenario(builtin_scenario("troubleshooting")), 20, 0, chunk_runs=10, retries=0)


def test_an_engine_error_on_the_node_is_one_line():
    sc = load_scenario(builtin_scenario("troubleshooting"))
    with pytest.raises(ClusterError) as info:
        run_eval_cluster(sc, 20, 0, chunk_runs=10, memory="1K")     # the node's memory limit refuses it
    text = str(info.value)
    assert text.startswith("chunk ") and "on a Ray node: " in text and "memory" in text
    assert "\n" not in text


def _untimed(value):
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in ("seconds", "created")}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def test_learn_once_on_the_cluster_learns_what_it_learns_here(tmp_path, monkeypatch):
    from functools import partial

    import msgspec

    from swarm_engine.cli.main import main
    from swarm_engine.learn.offline import learn_once
    from swarm_engine.learn.store import LearningStore

    monkeypatch.setenv("SWARM_HOME", str(tmp_path))
    path = builtin_scenario("troubleshooting")
    assert main(["eval", str(path), "-n", "30", "--learning", "-q"]) == 0
    store = LearningStore(tmp_path / ".swarm-engine" / "learning")
    args = {"store": store, "apply": False, "train_runs": 300, "heldout_runs": 600, "budget_seconds": 1e6}
    here = learn_once(str(path), **args)
    there = learn_once(str(path), **args, evaluate=partial(run_eval_cluster, chunk_runs=100))
    assert _untimed(there.validation) == _untimed(here.validation)
    untimed = lambda lines: [re.sub(r" in [0-9.]+ s\b", "", line) for line in lines]
    assert untimed(there.lines) == untimed(here.lines)
    assert _untimed(msgspec.to_builtins(there.model)) == _untimed(msgspec.to_builtins(here.model))


def test_ctrl_c_keeps_the_chunks_finished_in_seed_order():
    sc = load_scenario(builtin_scenario("troubleshooting"))
    calls = []

    def interrupt(done: int, ok: int) -> None:
        calls.append(done)
        if len(calls) == 3:
            raise KeyboardInterrupt

    result = run_eval_cluster(sc, 4000, 9, chunk_runs=100, progress=interrupt)
    assert result.stopped and result.requested == 4000
    assert result.runs < 4000 and result.runs % 100 == 0
    if result.runs:                         # zero when the first chunk was not among those back
        assert_same_runs(result, run_eval(sc, result.runs, 9))
    assert build_report(result)["summary"]["runs"] == result.runs
