"""Scaling curves of the native kernel: cost vs workers and vs graph size.

Both use the grid workload (``workloads.grid``: flood-fill, no goal, one
group per action) with the ``spread`` start, one start cell per worker, so
every worker has work from the first tick.

* **workers**: W workers on a fixed grid (``scale_workers_grid``, 10^7 cells
  by default), the first ``scale_ticks`` ticks of a run, one timed
  ``step(1)`` call per tick: tick latency, ns per action, bytes per worker
  (``Kernel.memory_bytes()``). The run is cut after ``scale_ticks`` ticks so
  that small swarms do not spend minutes exhausting a 10^7-cell grid; a
  large swarm exhausts it first (10^6 workers: ~17 ticks).
* **graph**: a fixed swarm (``scale_grid_workers``) on N x N grids, whole
  runs to exhaustion: actions/s per tick and in one native call, bytes per
  node, the resident memory the run added.

Node buffers are sized up front so no tick pays a buffer doubling; every
repeat is checked to do the same actions as the first (determinism).
"""

from __future__ import annotations

import gc
from collections.abc import Callable

import numpy as np

from swarm_engine.bench.equivalence import MismatchError
from swarm_engine.bench.measure import peak_rss_bytes, percentiles, rss_bytes, run_to_verdict, spread, step_ticks
from swarm_engine.bench.settings import Settings
from swarm_engine.bench.swarm import node_capacity
from swarm_engine.bench.workloads import grid

__all__ = ["workers_curve", "graph_curve"]

_SELECTOR = "fifo"


def _traces(kernel, seed: int, repeat: int, max_ticks: int, what: str) -> list:
    step_ticks(kernel, seed, max_ticks)                  # warm-up: faults in the buffers
    traces = [step_ticks(kernel, seed, max_ticks) for _ in range(repeat)]
    for t in traces[1:]:
        if t.actions != traces[0].actions:
            raise MismatchError(f"{what}: two runs of seed {seed} differ")
    return traces


def _latency(traces) -> dict:
    lat = [percentiles(t.latency_s) for t in traces]
    return {"tick_p50_s": spread([x["p50"] for x in lat]), "tick_p99_s": spread([x["p99"] for x in lat]),
            "tick_max_s": spread([x["max"] for x in lat]),
            "ns_per_action": spread([1e9 * sum(t.latency_s) / max(1, t.total_actions) for t in traces]),
            "actions_per_s": spread([t.total_actions / max(1e-12, sum(t.latency_s)) for t in traces])}


def workers_curve(settings: Settings, say: Callable[[str], None] = lambda _m: None) -> dict:
    """One row per worker count on the fixed grid; see the module docstring."""
    size, rows = settings.scale_workers_grid, []
    for workers in sorted(set(settings.scale_workers)):
        if workers > size * size:
            raise ValueError(f"{workers:,} workers need a grid of at least {workers:,} cells")
        say(f"scaling: {workers:,} workers on {size}x{size}: building")
        gc.collect()
        rss0 = rss_bytes()
        wl = grid(size, workers, _SELECTOR, "spread", settings.block_rate)
        kernel = wl.native(node_capacity=node_capacity(size, workers))
        say(f"scaling: {workers:,} workers on {size}x{size}: {settings.repeat} runs of <= {settings.scale_ticks} ticks")
        traces = _traces(kernel, settings.seed, settings.repeat, settings.scale_ticks, f"scaling/workers={workers}")
        acts = np.asarray(traces[0].actions)
        mem = kernel.memory_bytes()
        rows.append({
            "workers": workers, "grid": size, "ticks": int(acts.size), "actions": int(acts.sum()),
            "actions_per_tick": float(acts.mean()), "busy_share": float(acts.mean() / workers),
            **_latency(traces),
            "memory_bytes": {k: int(v) for k, v in mem.items()},
            "bytes_per_worker": mem["workers"] / workers,
            "nodes": int(kernel.n_nodes),
            "rss_added_bytes": max(0, rss_bytes() - rss0),
        })
        del kernel, wl
    return {"grid": size, "cells": size * size, "shape": "spread", "selector": _SELECTOR,
            "max_ticks": settings.scale_ticks, "block_rate": settings.block_rate, "rows": rows,
            "peak_rss_bytes": peak_rss_bytes()}


def graph_curve(settings: Settings, say: Callable[[str], None] = lambda _m: None) -> dict:
    """One row per grid size with a fixed swarm; see the module docstring."""
    workers, rows = settings.scale_grid_workers, []
    for size in sorted(set(settings.scale_grids)):
        w = min(workers, size * size)
        say(f"scaling: {size}x{size} grid, {w:,} workers: building")
        gc.collect()
        rss0 = rss_bytes()
        wl = grid(size, w, _SELECTOR, "spread", settings.block_rate)
        kernel = wl.native(node_capacity=node_capacity(size, w))
        say(f"scaling: {size}x{size} grid, {w:,} workers: {settings.repeat} whole runs")
        traces = _traces(kernel, settings.seed, settings.repeat, 0, f"scaling/grid={size}")
        rss_run = rss_bytes()
        one_call = [run_to_verdict(kernel, settings.seed) for _ in range(settings.repeat)]
        total = traces[0].total_actions
        if kernel.total_visits != total:
            raise MismatchError(f"scaling/grid={size}: one-call run did {kernel.total_visits} actions, "
                                f"per-tick run {total}")
        mem = kernel.memory_bytes()
        nodes = int(kernel.n_nodes)
        rows.append({
            "grid": size, "cells": size * size, "workers": w, "nodes": nodes, "ticks": len(traces[0].actions),
            "actions": total, **_latency(traces),
            "actions_per_s_per_tick": spread([t.total_actions / t.wall_s for t in traces]),
            "actions_per_s_one_call": spread([total / s for s in one_call]),
            "memory_bytes": {k: int(v) for k, v in mem.items()},
            "bytes_per_node": mem["nodes"] / max(1, nodes),
            "bytes_per_node_slot": mem["nodes"] / mem["node_capacity"],
            "rss_added_bytes": max(0, rss_run - rss0),
        })
        del kernel, wl
    return {"workers": workers, "shape": "spread", "selector": _SELECTOR, "block_rate": settings.block_rate,
            "rows": rows, "peak_rss_bytes": peak_rss_bytes()}
