"""Ratio gates: native vs reference, same inputs, same test, one process.

Each gate times both kernels on identical seeds (so identical actions),
checks that they agree run for run, and asserts native/reference >= a floor
set well under the ratio measured on the 2-core development machine, so a
gate fails on a real slowdown of the native path (or a reference made fast by
being wrong), not on a noisy neighbour. Absolute times are never compared.
"""

from __future__ import annotations

import importlib.util
import time

import pytest

from swarm_engine.bench import gates
from swarm_engine.bench.equivalence import check_final_state, check_runs
from swarm_engine.bench.measure import best_time, native_batch, step_ticks
from swarm_engine.bench.selectors import OVERRIDES, overrides
from swarm_engine.bench.swarm import node_capacity
from swarm_engine.bench.workloads import grid, troubleshooting
from swarm_engine.eval.jobs import available_cores
from swarm_engine.exploration.selectors import SELECTOR_KINDS

# Floors, about a quarter of what the 2-core development machine measured
# (docs/benchmarks.md): troubleshooting 76-91x, exploration 87-108x per
# selector, grid 100 x 100 stepped per tick 42-54x.
FLOOR_TROUBLESHOOTING = 20.0
FLOOR_EXPLORATION = 20.0
FLOOR_GRID = 12.0
# native vs the Mesa model of the same workload (swarm_engine.bench.peers_mesa),
# measured 200-650x on the development machine
FLOOR_MESA = 60.0


def _timed_rounds(benchmark, fn, rounds: int) -> float:
    """Run fn through the benchmark fixture (recorded, comparable) and return
    the best wall time seen, also when benchmarking is disabled."""
    times: list[float] = []

    def run():
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        return out

    benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=1)
    return min(times)


def _gate(benchmark, what: str, ratio: float, floor: float) -> None:
    benchmark.extra_info["ratio"] = ratio
    benchmark.extra_info["floor"] = floor
    assert ratio >= floor, f"{what}: native is only {ratio:.1f}x the reference (floor {floor:.0f}x)"


def _native_vs_reference(benchmark, name: str, workload, seeds) -> tuple[float, float]:
    """Best times of the native batch (benchmarked) and the reference on the
    same seeds, after checking that both give the same runs."""
    kernel = workload.native()
    native = _timed_rounds(benchmark, lambda: native_batch(kernel, seeds), rounds=20)
    out, _ = native_batch(kernel, seeds)
    rows = None

    def ref():
        nonlocal rows
        rows = workload.reference().run_batch(seeds)

    reference = best_time(ref, 2)
    check_runs(name, seeds, out, rows)
    return reference, native


@pytest.mark.benchmark(group="ratio")
def test_ratio_troubleshooting(benchmark, trouble, seeds):
    """The shipped scenario, 2,000 seeds, run_batch vs ReferenceKernel.run_batch."""
    reference, native = _native_vs_reference(benchmark, "troubleshooting", trouble, seeds[:2_000])
    _gate(benchmark, "troubleshooting", reference / native, FLOOR_TROUBLESHOOTING)


@pytest.mark.benchmark(group="ratio")
@pytest.mark.parametrize("selector", list(SELECTOR_KINDS))
def test_ratio_exploration(benchmark, seeds, selector):
    """16 services, 4 workers, per-(action, target) groups, every selector kind."""
    sel = {**OVERRIDES["app_config"]["selection"], "strategy": selector}
    wl = troubleshooting(overrides={**OVERRIDES, "app_config": {**OVERRIDES["app_config"], "selection": sel}})
    reference, native = _native_vs_reference(benchmark, f"exploration/{selector}", wl, seeds[:300])
    _gate(benchmark, f"exploration/{selector}", reference / native, FLOOR_EXPLORATION)


@pytest.mark.benchmark(group="ratio")
@pytest.mark.parametrize("shape", ["corner", "spread"])
def test_ratio_grid(benchmark, seed, shape):
    """100 x 100 grid, 100 workers, both stepped one step(1) call per tick."""
    wl = grid(100, 100, "fifo", shape)
    native_k = wl.native(node_capacity=node_capacity(100, 100))
    ref_k = wl.reference()
    native = _timed_rounds(benchmark, lambda: step_ticks(native_k, seed), rounds=10)
    reference = best_time(lambda: step_ticks(ref_k, seed), 2)
    step_ticks(native_k, seed)
    check_final_state(f"grid/{shape}", native_k, ref_k)
    _gate(benchmark, f"grid/{shape}", reference / native, FLOOR_GRID)


@pytest.mark.benchmark(group="ratio")
@pytest.mark.skipif(importlib.util.find_spec("mesa") is None,
                    reason="Mesa is not installed (pip install 'swarm-engine[peers]')")
@pytest.mark.parametrize("workload", ["troubleshooting", "troubleshooting-16x4"])
def test_ratio_mesa(benchmark, trouble, workload):
    """run_batch vs one Mesa model per seed, 1,000 seeds, identical runs."""
    wl = trouble if workload == "troubleshooting" else troubleshooting(overrides=overrides("ucb1"))
    gate = benchmark.pedantic(gates.mesa_ratio, args=(wl, 1_000), rounds=1, iterations=1)
    _gate(benchmark, f"mesa/{workload}", gate.ratio, FLOOR_MESA)


@pytest.mark.benchmark(group="ratio")
@pytest.mark.skipif(available_cores() < 2, reason="the speed-up of -j 2 needs two usable cores")
def test_ratio_jobs(benchmark, trouble):
    """run_eval on 2 threads vs 1, 10^6 troubleshooting runs, identical runs."""
    gate = benchmark.pedantic(gates.jobs_ratio, args=(trouble, 1_000_000), rounds=1, iterations=1)
    benchmark.extra_info["ratio"] = gate.ratio
    assert gate.ratio >= gates.JOBS_FLOOR, gate.message(gates.JOBS_FLOOR)


# the report's runs written from the columns vs as a list of dicts (what the report
# was before): 4.4-4.6x at 10^5 runs on the development machine (the file write and its
# fsync are the same for both), 6x at 10^6
FLOOR_REPORT_ROWS = 2.5


@pytest.mark.benchmark(group="ratio")
def test_ratio_report_rows(benchmark, tmp_path):
    """build_report + write_json of 10^5 troubleshooting runs, lazy rows vs dicts, same bytes."""
    from swarm_engine.eval.builtin import builtin_scenario
    from swarm_engine.eval.loader import load_scenario
    from swarm_engine.eval.report import build_report
    from swarm_engine.eval.runner import run_eval
    from swarm_engine.fsio import write_json

    result = run_eval(load_scenario(builtin_scenario("troubleshooting")), 100_000)
    lazy_path, dict_path = tmp_path / "lazy.json", tmp_path / "dicts.json"
    lazy = _timed_rounds(benchmark, lambda: write_json(lazy_path, build_report(result, lazy_runs=True)), rounds=3)
    dicts = best_time(lambda: write_json(dict_path, build_report(result)), 2)
    assert lazy_path.read_bytes() == dict_path.read_bytes()
    benchmark.extra_info["ratio"] = dicts / lazy
    benchmark.extra_info["floor"] = FLOOR_REPORT_ROWS
    assert dicts / lazy >= FLOOR_REPORT_ROWS, f"report rows: columns only {dicts / lazy:.1f}x the dicts"
