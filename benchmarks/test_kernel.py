"""The kernel's phases for W busy workers: one tick, and select / step / expand alone.

A tick is plan (select: the selector picks a node for every idle worker) ->
act (the environment steps the batch) -> commit (merge: statistics, close,
expand successors through the dedup index). ``Kernel.plan_tick``,
``act_tick`` and ``commit_native`` run the three phases one at a time (the
path a managed swarm takes); each micro-benchmark times one phase and runs
the other two untimed in pytest-benchmark's ``setup``.
"""

from __future__ import annotations

import pytest

from swarm_engine._native import _kernel
from swarm_engine.bench.swarm import node_capacity
from swarm_engine.bench.workloads import grid

SIZE, WORKERS, TICKS = 1000, 1000, 300
PHASE_TICKS = 100     # the sampled Thompson selector's select takes ~1-30 ms per tick on a wide frontier


def _busy_kernel(seed: int, selector: str, granularity: str = "action"):
    """1,000 workers spread over a 1000 x 1000 grid: every tick of the first
    ~1,000 assigns all of them (the benchmarks take ~300)."""
    wl = grid(SIZE, WORKERS, selector, "spread", granularity=granularity)
    kernel = wl.native(node_capacity=node_capacity(SIZE, WORKERS))
    kernel.reset(seed)
    return kernel


@pytest.mark.benchmark(group="kernel")
@pytest.mark.parametrize("selector", ["fifo", "ucb1"])
def test_tick_busy_swarm(benchmark, seed, selector):
    """plan -> act -> commit of 1,000 busy workers in one ``step(1)`` call."""
    kernel = _busy_kernel(seed, selector)
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


class _Phases:
    """Drives plan/act/commit by hand so one phase can be timed alone."""

    def __init__(self, kernel) -> None:
        self.k = kernel
        self.stage = 0          # 0: next is plan, 1: act, 2: commit
        self.done = False
        self.assigned: list[int] = []

    def advance_to(self, stage: int) -> None:
        while self.stage != stage:
            self.run_stage()

    def run_stage(self):
        k = self.k
        if self.stage == 0:
            self.assigned.append(k.plan_tick())
        elif self.stage == 1:
            self.done = k.act_tick()
        else:
            k.commit_native(self.done)
        self.stage = (self.stage + 1) % 3


@pytest.mark.benchmark(group="kernel-phase")
@pytest.mark.parametrize("phase", ["select", "step", "expand"])
@pytest.mark.parametrize("selector,granularity", [("fifo", "action"), ("ucb1", "action_target"),
                                                  ("thompson_sampled", "action_target")],
                         ids=["fifo", "ucb1-per-cell", "thompson_sampled-per-cell"])
def test_phase(benchmark, seed, phase, selector, granularity):
    """One phase of a tick of 1,000 busy workers. Per cell (``action_target``)
    every open cell is its own group: the sampled Thompson selector scores
    all of them (thousands per tick), UCB1 only the front fresh group."""
    kernel = _busy_kernel(seed, selector, granularity)
    phases = _Phases(kernel)
    stage = {"select": 0, "step": 1, "expand": 2}[phase]
    nodes: list[int] = []

    def setup():
        phases.advance_to(stage)
        nodes.append(kernel.n_nodes)

    benchmark.pedantic(phases.run_stage, setup=setup, rounds=PHASE_TICKS, iterations=1, warmup_rounds=5)
    phases.advance_to(0)
    assert kernel.verdict == _kernel.V_RUNNING
    assert phases.assigned and all(n == WORKERS for n in phases.assigned), "a tick left workers idle"
    assert kernel.total_visits == WORKERS * len(phases.assigned)
    assert kernel.n_nodes > nodes[0], "no expansion"
