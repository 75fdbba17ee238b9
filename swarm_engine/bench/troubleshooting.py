"""Exploration part ``troubleshooting``: the eval path, native vs reference.

The native side is ``run_eval`` itself (what ``swarm eval`` runs: one
``Kernel.run_batch`` loop over R seeds); its rate is total actions over the
kernel's own seconds (``engine_seconds``, as the eval table reports it), and
the whole call's wall time (conditions and judging included) is kept beside
it. The reference runs the first ``reference_runs`` of the same seeds; the
two must agree run for run on those seeds, every repeat.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from swarm_engine.bench.equivalence import check_runs
from swarm_engine.bench.measure import peak_rss_bytes, spread
from swarm_engine.bench.settings import Settings
from swarm_engine.bench.workloads import troubleshooting
from swarm_engine.eval.runner import run_eval

__all__ = ["run", "curve"]

# Warm-up sizes: enough to fault in the code paths and buffers, small next to
# a repeat (1,000 native runs take ~2 ms; 50 reference runs ~3 ms).
_WARM_NATIVE, _WARM_REFERENCE = 1_000, 50


def run(settings: Settings, say: Callable[[str], None] = lambda _msg: None) -> dict:
    """Measure and cross-check; see the module docstring. Returns a JSON-ready dict."""
    wl = troubleshooting(settings.scenario)
    R, seed = settings.runs, settings.seed
    Rr = min(R, settings.reference_runs)
    seeds = (np.uint64(seed) + np.arange(R, dtype=np.uint64)).astype(np.uint64)
    say(f"troubleshooting: warm-up ({wl.scenario.name})")
    run_eval(wl.scenario, min(R, _WARM_NATIVE), seed)
    wl.reference().run_batch(seeds[:min(Rr, _WARM_REFERENCE)])
    nat_aps, nat_rps, eval_aps, ref_aps, ratios = [], [], [], [], []
    nat_actions = ref_actions = 0
    success_rate = ref_success = 0.0
    for k in range(settings.repeat):
        say(f"troubleshooting: repeat {k + 1}/{settings.repeat}: native {R:,} runs")
        t0 = time.perf_counter()
        res = run_eval(wl.scenario, R, seed)
        eval_wall = time.perf_counter() - t0
        nat_actions = int(res.actions.sum())
        success_rate = float(res.success.mean())
        nat_aps.append(nat_actions / res.engine_seconds)
        nat_rps.append(R / res.engine_seconds)
        eval_aps.append(nat_actions / eval_wall)
        say(f"troubleshooting: repeat {k + 1}/{settings.repeat}: reference {Rr:,} runs")
        ref = wl.reference()
        t0 = time.perf_counter()
        rows = ref.run_batch(seeds[:Rr])
        ref_wall = time.perf_counter() - t0
        ref_actions = sum(r.actions for r in rows)
        ref_success = sum(bool(r.success) for r in rows) / Rr
        ref_aps.append(ref_actions / ref_wall)
        ratios.append(nat_aps[-1] / ref_aps[-1])
        check_runs("troubleshooting", seeds, {"verdict": res.verdict, "ticks": res.ticks, "actions": res.actions,
                                              "failed": res.failed, "by_action": res.by_action}, rows)
    cfg = wl.config
    return {
        "scenario": str(wl.scenario.path), "scenario_id": wl.scenario.id, "workers": cfg.workers,
        "selector": cfg.selector.strategy, "granularity": cfg.selector.granularity,
        "seed": seed, "runs": R, "reference_runs": Rr, "repeat": settings.repeat,
        "native": {"path": "run_eval -> Kernel.run_batch", "actions": nat_actions,
                   "success_rate": success_rate, "actions_per_run": nat_actions / R,
                   "actions_per_s": spread(nat_aps), "runs_per_s": spread(nat_rps),
                   "eval_actions_per_s": spread(eval_aps)},
        "reference": {"path": "ReferenceKernel.run_batch", "actions": int(ref_actions),
                      "success_rate": ref_success, "actions_per_run": ref_actions / Rr,
                      "actions_per_s": spread(ref_aps)},
        "ratio": spread(ratios),
        "identical_runs": Rr,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def curve(settings: Settings, say: Callable[[str], None] = lambda _msg: None) -> dict:
    """The same measurement for every size of ``settings.eval_runs`` and
    ``settings.runs`` (10^3 .. 10^6 runs by default): the eval's cost vs its
    number of runs. ``peak_rss_bytes`` is the process's peak after each row."""
    sizes = sorted(set(settings.eval_runs) | {settings.runs})
    return {"rows": [run(settings.with_(runs=R), say) for R in sizes], "main_runs": settings.runs}
