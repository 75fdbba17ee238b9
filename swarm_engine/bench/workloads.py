"""The benchmark workloads, built once and handed to both kernels.

A workload is (compiled rules, environment binding, config): the native
kernel gets it through :func:`swarm_engine.core.make_kernel`
(the path ``swarm eval`` takes) and the reference through
:func:`reference_kernel`, with the same constructor arguments, so the two see
the same world and must produce the same runs.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swarm_engine._reference import ReferenceKernel
from swarm_engine.core.config import SwarmConfig, kernel_kwargs, make_kernel
from swarm_engine.core.environment import EnvironmentBinding
from swarm_engine.errors import ScenarioError
from swarm_engine.eval.builtin import builtin_scenario
from swarm_engine.eval.loader import Scenario, load_scenario, parse_scenario
from swarm_engine.exploration.kernel import Kernel
from swarm_engine.exploration.rules import CompiledRules

__all__ = ["Workload", "troubleshooting_path", "troubleshooting", "grid", "kernel_kwargs",
           "reference_kernel", "spread_starts", "GRID_SHAPES"]

# "corner": the grid environment's own graph, one start cell (0): a BFS
#   wavefront, so at most ~2N cells are open at once and a 10^4-worker swarm
#   on a 1000 x 1000 grid has ~500 of them busy per tick (measured: 999,893
#   actions in 1,999 ticks).
# "spread": one start cell per worker on a lattice, so every worker is busy
#   from the first tick: the per-tick cost of W busy workers.
GRID_SHAPES = ("corner", "spread")


@dataclass(frozen=True)
class Workload:
    """What both kernels are built from."""

    name: str
    rules: CompiledRules
    binding: EnvironmentBinding
    config: SwarmConfig
    scenario: Scenario

    def native(self, *, node_capacity: int = 1024, event_capacity: int = 4096) -> Kernel:
        """A native Kernel, built the way ``swarm eval`` builds it."""
        return make_kernel(self.rules, self.binding, self.config, node_capacity=node_capacity,
                           event_capacity=event_capacity)

    def reference(self) -> ReferenceKernel:
        """The pure-Python ReferenceKernel on the same arguments."""
        return reference_kernel(self.rules, self.binding, self.config)


def reference_kernel(rules: CompiledRules, env: EnvironmentBinding, config: SwarmConfig) -> ReferenceKernel:
    """The reference kernel for a workload. An argument the reference does
    not take yet is dropped only while it is None (its default); a real value
    it cannot take is an error, never silently ignored."""
    kwargs = kernel_kwargs(rules, env, config)
    accepted = inspect.signature(ReferenceKernel).parameters
    missing = sorted(k for k, v in kwargs.items() if k not in accepted and v is not None)
    if missing:
        raise TypeError(f"ReferenceKernel does not take {', '.join(missing)}: it is behind make_kernel")
    return ReferenceKernel(**{k: v for k, v in kwargs.items() if k in accepted})


def troubleshooting_path() -> Path:
    """The shipped troubleshooting scenario: the source tree's scenarios/, or
    the copy installed as package data."""
    path = builtin_scenario("troubleshooting")
    if not path.is_file():
        raise ScenarioError("troubleshooting.toml not found next to the package; pass --scenario",
                            path=str(path.parent))
    return path


def troubleshooting(path: str | Path | None = None, overrides: dict | None = None) -> Workload:
    """The troubleshooting scenario as ``swarm eval`` loads it."""
    sc = load_scenario(path or troubleshooting_path(), overrides=overrides)
    return Workload(sc.id, sc.planned_rules(), sc.binding, sc.config, sc)


_GRID_TOML = """
[meta]
name = "Grid flood fill {size}x{size}, {workers} workers, {selector}"
id = "bench:grid"
[task]
goal = "Explore every reachable cell"
[[actions.actions]]
name = "Explore"
[environment]
env_type = "grid"
[environment.params]
width = {size}
height = {size}
block_rate = {block_rate!r}
goal = -1
[agents]
workers = {workers}
[app_config]
max_ticks = 0
[app_config.selection]
strategy = "{selector}"
granularity = "{granularity}"
[app_config.termination]
on_exhausted = "fail"
"""


def spread_starts(size: int, workers: int) -> np.ndarray:
    """Up to ``workers`` distinct start cells on a regular lattice over a
    size x size grid (distinct: the kernel rejects duplicate start nodes)."""
    side = max(1, min(size, math.isqrt(max(0, workers - 1)) + 1))
    xs = (np.arange(side, dtype=np.int64) * size) // side + size // (2 * side)
    cells = (xs[None, :] + size * xs[:, None]).ravel()
    return np.unique(cells)[:workers].astype(np.int32)


def grid(size: int, workers: int, selector: str, shape: str = "corner", block_rate: float = 0.1,
         granularity: str = "action") -> Workload:
    """The large-swarm workload: flood-fill a size x size grid with no goal
    (explore everything), selection grouped per action so picking a node is
    O(1) groups whatever the frontier holds (``granularity="action_target"``
    makes every cell its own group: a wide frontier for the selectors)."""
    if shape not in GRID_SHAPES:
        raise ValueError(f"shape must be one of {GRID_SHAPES}")
    text = _GRID_TOML.format(size=size, workers=workers, selector=selector, block_rate=float(block_rate),
                             granularity=granularity)
    sc = parse_scenario(text, source=f"<bench grid {size}x{size}>")
    rules = sc.planned_rules()
    if shape == "spread":
        cells = spread_starts(size, workers)
        n = cells.shape[0]
        rules = dataclasses.replace(rules, start_act=np.full(n, rules.start_act[0], np.int32),
                                    start_tgt=cells, start_arg=np.full(n, -1, np.int32))
    return Workload(f"grid-{shape}", rules, sc.binding, sc.config, sc)
