"""The numbers of docs/distributed.md: a local run against a local Ray, and what a chunk costs.

Run when asked (not a test: it takes the machine's cores for a minute)::

    python benchmarks/cluster_measure.py --runs 1000000 --cpus 2

Prints one JSON object: runs/s of a plain local eval and of ``--cluster ray``
(Ray started here with ``--cpus`` CPUs, its workers warmed up first), the
driver's own seconds, and the per-chunk costs: one chunk's round trip (submit,
run one run, fetch; one at a time), a bare Ray task's round trip, and what a
stream of one-run chunks costs per chunk with every slot busy. Each eval's
runs are checked equal to the local ones, so a fast wrong answer fails.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--scenario", default="troubleshooting")
    ap.add_argument("--trips", type=int, default=200, help="one-run chunks for the per-chunk costs")
    args = ap.parse_args()

    import ray

    from swarm_engine.cluster.chunk_task import chunk_of, run_chunk
    from swarm_engine.cluster.ray_eval import run_eval_cluster
    from swarm_engine.eval.builtin import builtin_scenario
    from swarm_engine.eval.loader import load_scenario
    from swarm_engine.eval.runner import run_eval

    sc = load_scenario(builtin_scenario(args.scenario))
    out: dict = {"scenario": args.scenario, "runs": args.runs, "cpus": args.cpus}
    local = run_eval(sc, args.runs, 1)
    out["local_runs_per_s"] = args.runs / local.engine_seconds
    out["local_us_per_run"] = 1e6 * local.engine_seconds / args.runs

    ray.init(num_cpus=args.cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             _temp_dir=tempfile.mkdtemp(prefix="rt", dir="/tmp"), log_to_driver=False)
    try:
        run_eval_cluster(sc, 20_000, 0)                        # every worker process started
        t = time.perf_counter()
        remote = run_eval_cluster(sc, args.runs, 1)
        wall = time.perf_counter() - t
        for name in ("success", "ticks", "actions", "by_action"):
            assert np.array_equal(getattr(remote, name), getattr(local, name)), name
        c = remote.cluster
        out.update(cluster_runs_per_s=args.runs / wall, cluster_wall_s=wall, speedup=local.engine_seconds / wall,
                   chunks=c["chunks"], chunk_runs=c["chunk_runs"], driver_seconds=c["driver_seconds"],
                   driver_ms_per_chunk=1e3 * c["driver_seconds"] / c["chunks"],
                   node_seconds=sum(n["node_seconds"] for n in c["nodes"]))

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
