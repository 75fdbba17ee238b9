"""The eval path: ``run_eval`` over troubleshooting seeds (``swarm eval``)."""

from __future__ import annotations

import pytest

from swarm_engine.bench.equivalence import check_runs
from swarm_engine.eval.runner import run_eval

RUNS, CHECKED = 20_000, 300


@pytest.mark.benchmark(group="eval")
def test_troubleshooting_eval(benchmark, trouble, seeds, seed):
    result = benchmark.pedantic(run_eval, args=(trouble.scenario, RUNS, seed), rounds=10, iterations=1,
                                warmup_rounds=1)
    assert result.runs == RUNS and not result.stopped
    assert result.success.mean() > 0.99
    rows = trouble.reference().run_batch(seeds[:CHECKED])
    check_runs("troubleshooting eval", seeds, {"verdict": result.verdict, "ticks": result.ticks,
                                               "actions": result.actions, "failed": result.failed,
                                               "by_action": result.by_action}, rows)
