"""Small drivers of the native kernel for callgrind / cachegrind (docs/profiling.md).

Each workload builds its kernel first and then makes the measured calls, so a
profiler can count only them: ``--toggle-collect`` on the ``Kernel.step`` /
``Kernel.run_batch`` wrappers (see ``callgrind.sh``). Without a profiler the
script times the same calls (median of ``--repeat``), for a quick check; the
rate per CPU second (``time.thread_time``) leaves out the time the process
was preempted, the larger part of the noise on a shared machine.

    python benchmarks/profile/drive.py grid --workers 10000 --grid 1000 --shape spread
    python benchmarks/profile/drive.py troubleshooting --runs 100000
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from swarm_engine._native import _kernel
from swarm_engine.bench.swarm import node_capacity
from swarm_engine.bench.workloads import grid, troubleshooting


def _grid(args) -> None:
    wl = grid(args.grid, args.workers, args.selector, args.shape, 0.1)
    k = wl.native(node_capacity=node_capacity(args.grid, args.workers))
    walls, cpus, lat, lat_cpu = [], [], [], []
    if args.per_tick:               # fault the node arrays in first, as swarm-bench's warm-up does
        k.reset(args.seed)
        k.step(1 << 40)
    for _ in range(args.repeat):
        k.reset(args.seed)
        c0 = time.thread_time()
        t0 = time.perf_counter()
        if args.per_tick:
            clock, cpu = time.perf_counter, time.thread_time
            while k.verdict == _kernel.V_RUNNING:
                c, t = cpu(), clock()
                if k.step(1) != _kernel.ST_OK:
                    raise RuntimeError("node buffers too small")
                lat.append(clock() - t)
                lat_cpu.append(cpu() - c)
        else:
            if k.step(1 << 40) != _kernel.ST_OK:
                raise RuntimeError("node buffers too small")
        walls.append(time.perf_counter() - t0)
        cpus.append(time.thread_time() - c0)
    mem = k.memory_bytes()
    print(f"grid {args.grid}x{args.grid} W={args.workers} {args.shape} {args.selector}: "
          f"{k.tick} ticks, {k.total_visits:,} actions, {k.n_nodes:,} nodes, "
          f"{k.total_visits / statistics.median(walls) / 1e6:.2f}M actions/s (median of {args.repeat}), "
          f"{k.total_visits / statistics.median(cpus) / 1e6:.2f}M per CPU second")
    if lat:
        for name, values in (("wall", lat), ("CPU", lat_cpu)):
            arr = np.asarray(values) * 1e6
            print(f"  tick {name} p50 {np.percentile(arr, 50):.1f} us, p99 {np.percentile(arr, 99):.1f} us, "
                  f"max {arr.max():.1f} us (all ticks of {args.repeat} runs)")
    print(f"  memory_bytes: {mem}; {mem['workers'] / args.workers:.1f} B/worker, "
          f"{mem['nodes'] / max(1, k.n_nodes):.1f} B/node")


def _troubleshooting(args) -> None:
    wl = troubleshooting()
    k = wl.native()
    R, A = args.runs, k.n_actions
    seeds = (np.uint64(args.seed) + np.arange(R, dtype=np.uint64)).astype(np.uint64)
    out = dict(success=np.zeros(R, np.uint8), verdict=np.zeros(R, np.int8), ticks=np.zeros(R, np.int64),
               actions=np.zeros(R, np.int64), failed=np.zeros(R, np.int64), wall=np.zeros(R),
               by_action=np.zeros((R, A), np.int64), done=np.zeros(R, np.uint8))
    walls, cpus = [], []
    for _ in range(args.repeat):
        c0 = time.thread_time()
        t0 = time.perf_counter()
        r, status = k.run_batch(seeds, 0, False, out["success"], out["verdict"], out["ticks"],
                                out["actions"], out["failed"], out["wall"], out["by_action"],
                                0.0, out["done"])
        walls.append(time.perf_counter() - t0)
        cpus.append(time.thread_time() - c0)
        if r != R or status != _kernel.ST_OK:
            raise RuntimeError("batch stopped early")
    acts = int(out["actions"].sum())
    print(f"troubleshooting: {R:,} runs, {acts:,} actions, success {out['success'].mean():.4f}, "
          f"{acts / statistics.median(walls) / 1e6:.2f}M actions/s, "
          f"{R / statistics.median(walls) / 1e6:.2f}M runs/s (median of {args.repeat}), "
          f"{acts / statistics.median(cpus) / 1e6:.2f}M actions per CPU second; "
          f"checksum {int(out['ticks'].sum())}/{acts}/{int(out['failed'].sum())}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    g = sub.add_parser("grid", help="the swarm suite's grid flood fill")
    g.add_argument("--workers", type=int, default=10_000)
    g.add_argument("--grid", type=int, default=1000)
    g.add_argument("--shape", choices=("corner", "spread"), default="corner")
    g.add_argument("--selector", default="fifo")
    g.add_argument("--per-tick", action="store_true",
                   help="one step(1) call per tick, timed (after one unmeasured warm-up run)")
    t = sub.add_parser("troubleshooting", help="the eval path: run_batch over R seeds")
    t.add_argument("--runs", type=int, default=100_000)
    for q in (g, t):
        q.add_argument("--seed", type=int, default=1)
        q.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()
    _grid(args) if args.what == "grid" else _troubleshooting(args)


if __name__ == "__main__":
    main()
