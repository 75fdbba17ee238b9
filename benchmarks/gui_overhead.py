"""What watching an eval in the dashboard costs the eval (issue #15: under 5%).

Unwatched: one ``run_eval`` call, as ``swarm eval`` makes it. Watched: the
dashboard's way (``EvalJob.evaluate``: chunks of about a third of a second,
a progress event published per kernel return) with a reader draining the
event stream the way the page's server-sent-event connection does (polling
every 0.1 s in an asyncio loop on another thread). Both give the same runs
(checked). Best of k, interleaved, one process; the ratio is watched /
unwatched wall time to the EvalResult (the report built afterwards is the
same work on both sides).

    python benchmarks/gui_overhead.py [--runs 400000] [--repeat 5] [--variant complex]

An eval nobody watches runs no dashboard code at all (the runner has no hook
for it), so its cost is zero by construction.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from swarm_engine.eval.loader import load_scenario
from swarm_engine.eval.runner import run_eval
from swarm_engine.gui.jobs import EvalJob, EvalRequest
from swarm_engine.gui.sse import event_stream
from tests.paths import TROUBLESHOOTING


def _drain(topic, counts: list[int]) -> None:
    async def read() -> None:
        async for _ in event_stream(topic):
            counts[0] += 1
    asyncio.run(read())


def watched(sc, runs: int, seed: int) -> tuple[float, object, int]:
    job = EvalJob(id="bench", request=EvalRequest(Path(sc.path), runs, seed), scenario=sc,
                  reports_dir=Path(tempfile.mkdtemp()))
    counts = [0]
    reader = threading.Thread(target=_drain, args=(job.topic, counts))
    reader.start()
    t0 = time.perf_counter()
    result = job.evaluate(t0)
    elapsed = time.perf_counter() - t0
    job.topic.close()
    reader.join()
    return elapsed, result, counts[0]


def unwatched(sc, runs: int, seed: int) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = run_eval(sc, runs, seed)
    return time.perf_counter() - t0, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=400_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--variant", default=None)
    a = ap.parse_args()
    sc = load_scenario(TROUBLESHOOTING, a.variant)
    w_times, u_times, events = [], [], 0
    for _ in range(a.repeat):
        t, ru = unwatched(sc, a.runs, 42)
        u_times.append(t)
        t, rw, events = watched(sc, a.runs, 42)
        w_times.append(t)
        for f in ("success", "ticks", "actions", "by_action"):
            assert np.array_equal(getattr(ru, f), getattr(rw, f)), f
    u, w = min(u_times), min(w_times)
    print(f"troubleshooting{f' [{a.variant}]' if a.variant else ''}, {a.runs} runs, best of {a.repeat}:")
    print(f"  unwatched run_eval      {u:.3f} s  ({a.runs / u:,.0f} runs/s)")
    print(f"  watched (dashboard)     {w:.3f} s  ({events} events read by the stream)")
    print(f"  ratio watched/unwatched {w / u:.3f}  (cost {100 * (w / u - 1):+.1f}%)")


if __name__ == "__main__":
    main()
