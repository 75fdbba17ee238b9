"""Measurement helpers: spread of repeats, tick latencies, resident memory.

Timing uses ``time.perf_counter`` around whole native calls; nothing is timed
inside the kernel except what ``run_batch`` already reports.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from swarm_engine._native import _kernel

__all__ = ["spread", "percentiles", "rss_bytes", "peak_rss_bytes", "TickTrace", "step_ticks",
           "run_to_verdict", "best_time", "native_batch", "call_overhead"]


def spread(samples: Sequence[float]) -> dict:
    """Median and range of repeated measurements (the median is what we quote)."""
    arr = np.asarray(samples, dtype=np.float64)
    return {"median": float(np.median(arr)), "min": float(arr.min()), "max": float(arr.max()),
            "samples": [float(x) for x in arr]}


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 99)) -> dict:
    """``{"p50": ..., "p99": ..., "max": ...}`` of ``values``."""
    arr = np.asarray(values, dtype=np.float64)
    out = {f"p{q:g}": float(np.percentile(arr, q)) for q in qs}
    out["max"] = float(arr.max())
    return out


def rss_bytes() -> int:
    """Resident set size now (Linux /proc/self/statm), 0 where unknown."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024   # Linux reports KiB


@dataclass
class TickTrace:
    """One run stepped a tick per call: latency and actions of every tick."""

    latency_s: list[float] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    wall_s: float = 0.0
    grow_s: float = 0.0          # time spent in make_room() between ticks, not in latency_s
    grows: int = 0

    @property
    def total_actions(self) -> int:
        return int(sum(self.actions))


def step_ticks(kernel, seed: int, max_ticks: int = 0) -> TickTrace:
    """Reset ``kernel`` to ``seed`` and run it to its verdict (or for
    ``max_ticks`` ticks when > 0) with one ``step(1)`` call per tick, timing
    each call; this is the Python per-tick path the orchestrator takes, so
    the call overhead is part of the latency. Works for the native kernel
    and the reference (which never needs room)."""
    trace = TickTrace()
    kernel.reset(seed)
    clock = time.perf_counter
    lat, acts = trace.latency_s, trace.actions
    need_room = _kernel.ST_NEED_ROOM
    limit = max_ticks if max_ticks > 0 else -1
    t_start = clock()
    while kernel.verdict == _kernel.V_RUNNING and len(lat) != limit:
        before = kernel.total_visits
        t0 = clock()
        status = kernel.step(1)
        t1 = clock()
        if status == need_room:
            kernel.make_room()
            trace.grow_s += clock() - t1
            trace.grows += 1
            continue
        lat.append(t1 - t0)
        acts.append(kernel.total_visits - before)
    trace.wall_s = clock() - t_start
    return trace


def run_to_verdict(kernel, seed: int) -> float:
    """Reset and run to the verdict in as few native calls as possible (one
    unless a buffer must grow); returns the wall seconds. The difference to
    :func:`step_ticks` is the Python per-tick overhead."""
    kernel.reset(seed)
    t0 = time.perf_counter()
    while kernel.step(1 << 62) == _kernel.ST_NEED_ROOM:
        kernel.make_room()
    return time.perf_counter() - t0


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Smallest wall time of ``repeat`` calls (for ratio gates: the minimum
    is the least noisy estimate of what the code costs)."""
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def native_batch(kernel, seeds: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
    """Run ``seeds`` through ``Kernel.run_batch`` (growing buffers when it
    asks), the loop of ``swarm_engine.eval.runner`` without progress or
    traces. Returns the per-run arrays and the wall seconds of the calls."""
    seeds = np.ascontiguousarray(seeds, dtype=np.uint64)
    R, A = seeds.shape[0], kernel.n_actions
    out: dict[str, np.ndarray] = dict(
        success=np.zeros(R, np.uint8), verdict=np.zeros(R, np.int8), ticks=np.zeros(R, np.int64),
        actions=np.zeros(R, np.int64), failed=np.zeros(R, np.int64), wall=np.zeros(R),
        by_action=np.zeros((R, A), np.int64))
    r, resume = 0, False
    t0 = time.perf_counter()
    while r < R:
        r, status = kernel.run_batch(seeds, r, resume, out["success"], out["verdict"], out["ticks"],
                                     out["actions"], out["failed"], out["wall"], out["by_action"])
        resume = status == _kernel.ST_NEED_ROOM
        if resume:
            kernel.make_room()
    return out, time.perf_counter() - t0


def call_overhead(kernel, calls: int = 20_000) -> float:
    """Seconds per ``step(1)`` call that has nothing to do (the run already
    has its verdict), timed like :func:`step_ticks` times a tick: the floor
    of the Python per-tick path (call, argument conversion, GIL release)."""
    if kernel.verdict == _kernel.V_RUNNING:
        raise ValueError("call_overhead needs a finished run")
    clock = time.perf_counter
    step = kernel.step
    best = float("inf")
    for _ in range(3):
        total = 0.0
        for _ in range(calls):
            t0 = clock()
            step(1)
            total += clock() - t0
        best = min(best, total / calls)
    return best
