"""The CI ratio-gate set: native vs reference (and vs Mesa) on small inputs.

Each gate runs both sides on the same seeds in this process, checks that they
give the same runs, and compares the *ratio* of their best times with a floor
about a fifth of the smallest ratio measured on the 2-core development machine
while other work ran (``swarm_engine.bench.gates.FLOORS``, docs/benchmarks.md),
so a noisy neighbour slows both sides and cannot trip it; a real slowdown of
the native path, or a reference made fast by being wrong, does. No absolute
time is asserted. The full gates, with pytest-benchmark timings, live in
benchmarks/test_ratios.py.
"""

from __future__ import annotations

import importlib.util

import pytest

from swarm_engine.bench import gates
from swarm_engine.bench.selectors import overrides
from swarm_engine.bench.workloads import troubleshooting

needs_mesa = pytest.mark.skipif(importlib.util.find_spec("mesa") is None,
                                reason="Mesa is not installed (pip install 'swarm-engine[peers]')")


@pytest.fixture(scope="module")
def trouble():
    return troubleshooting()


def test_gate_troubleshooting_vs_reference(trouble):
    gate = gates.troubleshooting_ratio(trouble, 1_000)
    assert gate.identical_runs == 1_000
    assert gate.ratio >= gates.FLOORS["troubleshooting"], gate.message(gates.FLOORS["troubleshooting"])


@pytest.mark.parametrize("shape", ["corner", "spread"])
def test_gate_grid_vs_reference(shape):
    gate = gates.grid_ratio(60, 60, shape)
    assert gate.ratio >= gates.FLOORS["grid"], gate.message(gates.FLOORS["grid"])


@needs_mesa
@pytest.mark.parametrize("workload", ["troubleshooting", "troubleshooting-16x4"])
def test_gate_vs_mesa(trouble, workload):
    wl = trouble if workload == "troubleshooting" else troubleshooting(overrides=overrides("ucb1"))
    gate = gates.mesa_ratio(wl, 200)
    assert gate.ratio >= gates.FLOORS["mesa"], gate.message(gates.FLOORS["mesa"])
