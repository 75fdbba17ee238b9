"""A large swarm stepped one ``step(1)`` call per tick from Python."""

from __future__ import annotations

import pytest

from swarm_engine._native import _kernel
from swarm_engine.bench.measure import step_ticks
from swarm_engine.bench.swarm import node_capacity
from swarm_engine.bench.workloads import grid

SIZE, WORKERS = 300, 10_000


@pytest.mark.benchmark(group="swarm")
@pytest.mark.parametrize("shape", ["corner", "spread"])
def test_grid_swarm_ticks(benchmark, grid_oracle, seed, shape):
    """10^4 workers flood-fill 300 x 300 cells to exhaustion, tick by tick."""
    wl = grid(SIZE, WORKERS, "fifo", shape)
    kernel = wl.native(node_capacity=node_capacity(SIZE, WORKERS))
    trace = benchmark.pedantic(step_ticks, args=(kernel, seed), rounds=5, iterations=1, warmup_rounds=1)
    nodes, blocked = grid_oracle(wl, SIZE, seed=seed)
    assert kernel.verdict == _kernel.V_EXHAUSTED
    assert kernel.n_nodes == nodes
    assert kernel.total_visits == trace.total_actions == nodes
    assert kernel.total_fail == blocked
    benchmark.extra_info.update(ticks=len(trace.actions), actions=trace.total_actions)
