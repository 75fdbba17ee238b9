"""Exploration part ``swarm``: one large swarm on the grid, stepped a tick per call.

Native: W workers flood-fill an N x N grid (no goal: explore everything),
one ``Kernel.step(1)`` call per tick from Python, each timed, for every start
shape (see ``workloads.GRID_SHAPES``) and selector. The node buffers are
sized up front (``node_capacity``) so a tick's latency is the tick, not a
buffer doubling. The same run is also made in one native call to show the
Python per-tick overhead. Reference: the same workload on a small grid, both
kernels stepped per tick, compared node for node.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

import numpy as np

from swarm_engine.bench.equivalence import MismatchError, check_final_state
from swarm_engine.bench.measure import (
    call_overhead,
    peak_rss_bytes,
    percentiles,
    rss_bytes,
    run_to_verdict,
    spread,
    step_ticks,
)
from swarm_engine.bench.settings import LATENCY_WORKERS, Settings
from swarm_engine.bench.workloads import GRID_SHAPES, grid

__all__ = ["run", "node_capacity"]


def node_capacity(size: int, workers: int) -> int:
    """Enough node slots for every cell plus one tick of discoveries (4 per
    worker), so the kernel never asks for room during a run."""
    return size * size + 4 * workers + 16


def _native_row(settings: Settings, workers: int, shape: str, selector: str,
                say: Callable[[str], None]) -> dict:
    size = settings.grid
    wl = grid(size, workers, selector, shape, settings.block_rate)
    gc.collect()
    kernel = wl.native(node_capacity=node_capacity(size, workers))
    say(f"swarm: {workers:,} workers, {shape}, {selector}: warm-up")
    step_ticks(kernel, settings.seed)
    traces, one_call = [], []
    for k in range(settings.repeat):
        say(f"swarm: {workers:,} workers, {shape}, {selector}: repeat {k + 1}/{settings.repeat}")
        traces.append(step_ticks(kernel, settings.seed))
        one_call.append(run_to_verdict(kernel, settings.seed))
    first = traces[0]
    for t in traces[1:]:
        if t.actions != first.actions:
            raise MismatchError(f"swarm/{shape}/{selector}: two runs of seed {settings.seed} differ")
    total, ticks = first.total_actions, len(first.actions)
    if kernel.total_visits != total:
        raise MismatchError(f"swarm/{shape}/{selector}: one-call run did {kernel.total_visits} actions, "
                            f"per-tick run {total}")
    mem = kernel.memory_bytes()
    lat = [percentiles(t.latency_s) for t in traces]
    acts = np.asarray(first.actions)
    row = {
        "workers": workers, "shape": shape, "selector": selector, "grid": size,
        "cells": size * size, "starts": int(wl.rules.start_tgt.shape[0]),
        "verdict": int(kernel.verdict), "ticks": ticks, "actions": total,
        "actions_per_tick": {"mean": float(acts.mean()), "max": int(acts.max())},
        "full_ticks": float((acts == workers).mean()),   # share of ticks with every worker busy
        "actions_per_s": spread([t.total_actions / t.wall_s for t in traces]),
        "actions_per_s_one_call": spread([total / s for s in one_call]),
        "tick_p50_s": spread([x["p50"] for x in lat]),
        "tick_p99_s": spread([x["p99"] for x in lat]),
        "tick_max_s": spread([x["max"] for x in lat]),
        "grows": first.grows,
        "nodes": int(kernel.n_nodes), "node_capacity": int(mem["node_capacity"]),
        "memory_bytes": {k: int(v) for k, v in mem.items()},
        "bytes_per_worker": mem["workers"] / workers,
        "bytes_per_node": mem["nodes"] / max(1, kernel.n_nodes),
        "bytes_per_node_slot": mem["nodes"] / mem["node_capacity"],
        "step_call_s": call_overhead(kernel),
    }
    del kernel
    return row


def _reference_row(settings: Settings, shape: str, selector: str, say: Callable[[str], None]) -> dict:
    size, workers = settings.reference_grid, settings.reference_workers
    wl = grid(size, workers, selector, shape, settings.block_rate)
    native, ref = wl.native(node_capacity=node_capacity(size, workers)), wl.reference()
    say(f"swarm: reference {size}x{size}, {workers} workers, {shape}, {selector}: warm-up")
    step_ticks(native, settings.seed)
    step_ticks(ref, settings.seed)
    nat, rf, ratios = [], [], []
    for k in range(settings.repeat):
        say(f"swarm: reference {shape}, {selector}: repeat {k + 1}/{settings.repeat}")
        tn = step_ticks(native, settings.seed)
        tr = step_ticks(ref, settings.seed)
        check_final_state(f"swarm/{shape}/{selector} {size}x{size}", native, ref)
        nat.append(tn.total_actions / tn.wall_s)
        rf.append(tr.total_actions / tr.wall_s)
        ratios.append(nat[-1] / rf[-1])
    return {"shape": shape, "selector": selector, "grid": size, "workers": workers,
            "ticks": int(native.tick), "actions": int(native.total_visits), "nodes": int(native.n_nodes),
            "native_actions_per_s": spread(nat), "reference_actions_per_s": spread(rf),
            "ratio": spread(ratios), "identical": True}


def run(settings: Settings, say: Callable[[str], None] = lambda _msg: None) -> dict:
    """Large native swarms, then native-vs-reference pairs; JSON-ready dict."""
    gc.collect()
    rss_start = rss_bytes()
    worker_counts = sorted({settings.workers, LATENCY_WORKERS})
    native = [_native_row(settings, w, shape, sel, say)
              for w in worker_counts for shape in GRID_SHAPES for sel in settings.selectors]
    pairs = [_reference_row(settings, shape, sel, say) for shape in GRID_SHAPES for sel in settings.selectors]
    ref_rate = {(p["shape"], p["selector"]): p["reference_actions_per_s"]["median"] for p in pairs}
    for row in native:    # the large native swarm against the small reference run
        row["ratio_to_small_reference"] = row["actions_per_s"]["median"] / ref_rate[(row["shape"], row["selector"])]
    return {"grid": settings.grid, "block_rate": settings.block_rate, "goal": -1, "granularity": "action",
            "seed": settings.seed, "repeat": settings.repeat, "native": native, "reference": pairs,
            "rss_at_start_bytes": rss_start, "peak_rss_bytes": peak_rss_bytes()}
