"""Suite ``python-env``: a numpy environment through the batched protocol.

:class:`NumpyGrid` is the native ``grid`` environment (``_native/_grid.pyx``)
written in Python as a user would write one (docs/python-api.md): one
``step(batch)`` call per tick, numpy over the tick's arrays, no loop per
action. It blocks the same cells (the same murmur hash of (seed, cell)) and
discovers the same neighbours in the same order, so a run with it must build
exactly the graph the native environment builds; the suite checks that.

Three ways to run one workload (grid flood fill, ``spread`` start, W
workers, FIFO, no goal), all through :class:`swarm_engine.Swarm`:

* **python**: Swarm with the numpy environment: per tick, ``plan_tick``,
  ``NumpyGrid.step``, ``commit_tick``, the event log drained;
* **native, per tick**: Swarm with the native environment and a hook that
  does nothing, which forces the same one-Python-round-trip-per-tick loop
  (``plan_tick``, ``act_tick``, ``commit_native``): the difference to
  *python* is the environment alone;
* **native, fused**: ``Swarm.run()`` with the native environment and nothing
  attached: many ticks per native call, what ``swarm eval`` gets.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from swarm_engine.bench.equivalence import check_final_state
from swarm_engine.bench.measure import spread
from swarm_engine.bench.settings import Settings
from swarm_engine.bench.workloads import grid
from swarm_engine.core.environment import ActionBatch, EnvironmentBinding, StepResult
from swarm_engine.core.hooks import Hook
from swarm_engine.core.orchestrator import Swarm

__all__ = ["NumpyGrid", "run"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_S33, _S11 = np.uint64(33), np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0


def _hash64(k: np.ndarray) -> np.ndarray:
    """The murmur3 64-bit finalizer over a uint64 array (wrapping products)."""
    k = k ^ (k >> _S33)
    k = k * _M1
    k ^= k >> _S33
    k = k * _M2
    return k ^ (k >> _S33)


class NumpyGrid:
    """Flood-fill a width x height grid: a blocked cell fails, any other cell
    discovers its 4-neighbours (right, down, left, up). One op, ``Explore``."""

    action_names = ("Explore",)
    max_discoveries = 4

    def __init__(self, width: int = 100, height: int = 100, block_rate: float = 0.0) -> None:
        self.w, self.h, self.rate = int(width), int(height), float(block_rate)
        self.seed = np.uint64(0)

    def reset(self, seed: int) -> None:
        self.seed = np.uint64(seed & 0xFFFFFFFFFFFFFFFF)

    def blocked(self, cells: np.ndarray) -> np.ndarray:
        """The native ``grid_blocked`` for every cell (cell 0 never)."""
        c = cells.astype(np.uint64)
        h = _hash64(self.seed ^ (c * _GOLDEN))
        return (c != 0) & ((h >> _S11).astype(np.float64) * _TWO_M53 < self.rate)

    def step(self, batch: ActionBatch) -> StepResult:
        w, h = self.w, self.h
        c = batch.targets.astype(np.int64)
        ok = (batch.ops == 0) & (c >= 0) & (c < w * h)
        ok[ok] = ~self.blocked(c[ok])
        x, y = c % w, c // w
        # candidate neighbours, one column each in the native order: right, down, left, up
        cand = np.stack([c + 1, c + w, c - 1, c - w], axis=1)
        keep = np.stack([x + 1 < w, y + 1 < h, x > 0, y > 0], axis=1) & ok[:, None]
        counts = keep.sum(axis=1)
        disc_ptr = np.zeros(len(c) + 1, np.int32)
        np.cumsum(counts, out=disc_ptr[1:])
        return StepResult(outcome=ok.astype(np.int8), disc_ptr=disc_ptr,
                          discoveries=cand[keep].astype(np.int32),
                          duration_ms=np.ones(len(c), np.float32), done=False)

    def target_name(self, target: int) -> str:
        return f"cell-{target % self.w}-{target // self.w}"


class _PerTick(Hook):
    """Attaching any hook makes Swarm step one tick per Python round trip."""


def _swarm(settings: Settings, workers: int, kind: str) -> Swarm:
    wl = grid(settings.pyenv_grid, workers, "fifo", "spread", settings.block_rate)
    if kind == "python":
        env = NumpyGrid(settings.pyenv_grid, settings.pyenv_grid, settings.block_rate)
        binding = EnvironmentBinding.from_python(env, ["Explore"])
        return Swarm(wl.rules, binding, wl.config, seed=settings.seed, action_names=["Explore"])
    swarm = Swarm(wl.rules, wl.binding, wl.config, seed=settings.seed, action_names=["Explore"])
    if kind == "native-per-tick":
        swarm.add_hook(_PerTick())
    return swarm


KINDS = ("python", "native-per-tick", "native-fused")


def _row(settings: Settings, workers: int, say: Callable[[str], None]) -> dict:
    swarms = {k: _swarm(settings, workers, k) for k in KINDS}
    rates: dict[str, list[float]] = {k: [] for k in KINDS}
    ticks = actions = 0
    say(f"python-env: {workers:,} workers: warm-up")
    for s in swarms.values():
        s.run()
    for r in range(settings.repeat):
        say(f"python-env: {workers:,} workers: repeat {r + 1}/{settings.repeat}")
        for k, s in swarms.items():
            s.reset(settings.seed)
            t0 = time.perf_counter()
            res = s.run()
            rates[k].append(res.actions / (time.perf_counter() - t0))
            ticks, actions = res.ticks, res.actions
        for k in KINDS[1:]:
            check_final_state(f"python-env/{workers}: numpy vs {k}", swarms[k].kernel, swarms["python"].kernel)
    py = rates["python"]
    return {"workers": workers, "grid": settings.pyenv_grid, "ticks": ticks, "actions": actions,
            "actions_per_tick": actions / max(1, ticks),
            "actions_per_s": {k: spread(v) for k, v in rates.items()},
            "native_per_tick_over_python": spread([a / b for a, b in zip(rates["native-per-tick"], py)]),
            "native_fused_over_python": spread([a / b for a, b in zip(rates["native-fused"], py)]),
            "identical": True}


def run(settings: Settings, say: Callable[[str], None] = lambda _m: None) -> dict:
    """One row per worker count; see the module docstring."""
    return {"grid": settings.pyenv_grid, "block_rate": settings.block_rate, "shape": "spread", "selector": "fifo",
            "rows": [_row(settings, w, say) for w in sorted(set(settings.pyenv_workers))]}
