"""One tick of a busy swarm: the kernel's plan -> step -> commit for W workers."""

from __future__ import annotations

import pytest

from swarm_engine._native import _kernel
from swarm_engine.bench.swarm import node_capacity
from swarm_engine.bench.workloads import grid

SIZE, WORKERS, TICKS = 1000, 1000, 300


@pytest.mark.benchmark(group="kernel")
@pytest.mark.parametrize("selector", ["fifo", "ucb1"])
def test_tick_busy_swarm(benchmark, seed, selector):
    """1,000 workers spread over a 1000 x 1000 grid: every tick assigns all
    of them (the run lasts ~1,000 ticks, the benchmark takes the first ~300)."""
    wl = grid(SIZE, WORKERS, selector, "spread")
    kernel = wl.native(node_capacity=node_capacity(SIZE, WORKERS))
    kernel.reset(seed)
    calls = 0

    def tick():
        nonlocal calls
        calls += 1
        return kernel.step(1)

    status = benchmark.pedantic(tick, rounds=TICKS, iterations=1, warmup_rounds=5)
    assert status == _kernel.ST_OK
    assert kernel.verdict == _kernel.V_RUNNING
    assert kernel.tick == calls
    assert kernel.total_visits == WORKERS * calls, "a tick left workers idle"
