"""Exploration part ``jobs``: the eval's speed-up vs the cores it runs on.

``run_eval(..., jobs=j)`` on the troubleshooting eval for every ``j`` of
``settings.jobs`` (default 1 .. the cores this process may use): runs/s over
the eval's own seconds (``engine_seconds``: the threads' wall time, judging
excluded), the speed-up over ``j = 1`` and the efficiency (speed-up / j).
Repeats are interleaved (j = 1, 2, ..., then again), so a neighbour's load
falls on every row alike, and the load average is kept beside the rows; each
repeat's runs must equal those of ``j = 1``, run for run.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from swarm_engine.bench.equivalence import MismatchError
from swarm_engine.bench.measure import spread
from swarm_engine.bench.settings import Settings
from swarm_engine.bench.workloads import troubleshooting
from swarm_engine.eval.jobs import available_cores
from swarm_engine.eval.merge import ARRAY_FIELDS
from swarm_engine.eval.runner import EvalResult, run_eval

__all__ = ["run", "job_counts", "EFFICIENCY_FLOOR"]

# The bar: at least 90% efficiency at 2 cores on 10^6 runs. A row
# below it is flagged in the table (not an error: a loaded machine can miss it).
EFFICIENCY_FLOOR = 0.9


def job_counts(settings: Settings) -> tuple[int, ...]:
    """The job counts of the curve: ``settings.jobs`` (1 always among them: the
    speed-up's base), else 1 .. every usable core."""
    return tuple(sorted({1, *settings.jobs})) if settings.jobs else tuple(range(1, available_cores() + 1))


def _same(a: EvalResult, b: EvalResult, what: str) -> None:
    for f in ARRAY_FIELDS:
        if f != "wall" and not np.array_equal(getattr(a, f), getattr(b, f)):
            raise MismatchError(f"{what}: column {f} differs from jobs=1")


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def run(settings: Settings, say: Callable[[str], None] = lambda _msg: None) -> dict:
    """Measure the curve; see the module docstring. Returns a JSON-ready dict."""
    wl = troubleshooting(settings.scenario)
    R, counts = settings.jobs_runs, job_counts(settings)
    say(f"jobs: warm-up ({wl.scenario.name})")
    for j in counts:
        run_eval(wl.scenario, min(R, 10_000), settings.seed, jobs=j)
    load_before = _load()
    seconds: dict[int, list[float]] = {j: [] for j in counts}
    first: EvalResult | None = None
    for k in range(settings.repeat):
        for j in counts:
            say(f"jobs: repeat {k + 1}/{settings.repeat}: {R:,} runs on {j} job(s)")
            res = run_eval(wl.scenario, R, settings.seed, jobs=j)
            if first is None:
                first = res
            else:
                _same(first, res, f"jobs={j}")
            seconds[j].append(res.engine_seconds)
    assert first is not None
    base = min(seconds[1])                            # one core's best time
    rows = []
    for j in counts:
        best = min(seconds[j])
        speedup = [base / s for s in seconds[j]]
        rows.append({"jobs": j, "runs_per_s": spread([R / s for s in seconds[j]]),
                     "seconds": spread(seconds[j]), "speedup": spread(speedup),
                     "speedup_best": base / best, "efficiency_best": base / best / j})
    return {"scenario_id": wl.scenario.id, "runs": R, "seed": settings.seed, "repeat": settings.repeat,
            "cores": available_cores(), "actions": int(first.actions.sum()), "rows": rows,
            "load_before": load_before, "load_after": _load(), "efficiency_floor": EFFICIENCY_FLOOR,
            "identical_runs": R}
