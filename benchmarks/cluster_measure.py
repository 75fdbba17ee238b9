"""The numbers of docs/distributed.md: a local run against a local Ray, and what a chunk costs.

Run when asked (not a test: it takes the machine's cores for a minute)::

    python benchmarks/cluster_measure.py --runs 1000000 --cpus 2

Prints one JSON object: runs/s of a plain local eval (``-j 1`` and ``-j CPUS``)
and of ``--cluster ray`` (Ray started here with ``--cpus`` CPUs, its workers
warmed up first) with a whole node per chunk (``chunk_cpus = 0``, the default)
and with one CPU per chunk, the medians of ``--repeat`` interleaved rounds; the
driver's own seconds, and the per-chunk costs: one chunk's round trip (submit,
run one run, fetch; one at a time), a bare Ray task's round trip, and what a
stream of one-run chunks costs per chunk with every slot busy. Each eval's
runs are checked equal to the local ones, so a fast wrong answer fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--scenario", default="troubleshooting")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds; medians are printed")
    ap.add_argument("--trips", type=int, default=200, help="one-run chunks for the per-chunk costs")
    args = ap.parse_args()

    import ray

    from swarm_engine.cluster.chunk_task import chunk_of, run_chunk
    from swarm_engine.cluster.ray_eval import run_eval_cluster
    from swarm_engine.eval.builtin import builtin_scenario
    from swarm_engine.eval.loader import load_scenario
    from swarm_engine.eval.runner import run_eval

    sc = load_scenario(builtin_scenario(args.scenario))
    out: dict = {"scenario": args.scenario, "runs": args.runs, "cpus": args.cpus, "repeat": args.repeat}
    local = run_eval(sc, args.runs, 1)

    def same(result) -> None:
        for name in ("success", "ticks", "actions", "by_action"):
            assert np.array_equal(getattr(result, name), getattr(local, name)), name

    ray.init(num_cpus=args.cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             _temp_dir=tempfile.mkdtemp(prefix="rt", dir="/tmp"), log_to_driver=False)
    try:
        for cpus in (0, 1):
            run_eval_cluster(sc, 20_000, 0, chunk_cpus=cpus)   # every worker process started
        walls: dict[str, list[float]] = {"local_j1": [], f"local_j{args.cpus}": [], "node_chunks": [],
                                         "one_cpu_chunks": []}
        last: dict = {}
        for _ in range(args.repeat):                           # interleaved: the machine's moods hit all
            for jobs in (1, args.cpus):
                result = run_eval(sc, args.runs, 1, jobs=jobs)
                same(result)
                walls[f"local_j{jobs}"].append(result.engine_seconds)
            for name, cpus in (("node_chunks", 0), ("one_cpu_chunks", 1)):
                t = time.perf_counter()
                remote = run_eval_cluster(sc, args.runs, 1, chunk_cpus=cpus)
                walls[name].append(time.perf_counter() - t)
                same(remote)
                last[name] = remote.cluster
        for name, seconds in walls.items():
            wall = statistics.median(seconds)
            out[name] = {"median_s": wall, "runs_per_s": args.runs / wall}
            if name in last:
                c = last[name]
                out[name].update(chunks=c["chunks"], chunk_runs=c["chunk_runs"], driver_seconds=c["driver_seconds"],
                                 driver_ms_per_chunk=1e3 * c["driver_seconds"] / c["chunks"],
                                 node_seconds=sum(n["node_seconds"] for n in c["nodes"]))
        jn = out[f"local_j{args.cpus}"]["median_s"]
        out["vs_local_jN"] = {name: jn / out[name]["median_s"] for name in ("node_chunks", "one_cpu_chunks")}

        task = ray.remote(run_chunk).options(num_cpus=1, max_retries=0)
        one = chunk_of(sc, 0, 0, 1)
        ray.get(task.remote(one))
        t = time.perf_counter()
        for _ in range(args.trips):
            ray.get(task.remote(one))
        out["chunk_round_trip_ms"] = 1e3 * (time.perf_counter() - t) / args.trips

        noop = ray.remote(num_cpus=1)(lambda: None)
        ray.get(noop.remote())
        t = time.perf_counter()
        for _ in range(args.trips):
            ray.get(noop.remote())
        out["bare_task_round_trip_ms"] = 1e3 * (time.perf_counter() - t) / args.trips

        t = time.perf_counter()
        stream = run_eval_cluster(sc, args.trips * 5, 0, chunk_runs=1)
        out["one_run_chunks_ms_per_chunk"] = 1e3 * (time.perf_counter() - t) / stream.cluster["chunks"]
    finally:
        ray.shutdown()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
