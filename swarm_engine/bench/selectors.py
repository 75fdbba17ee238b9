"""Exploration part ``selectors``: the kernel alone, every selector, native vs reference.

The troubleshooting world made wider (16 services, 4 workers, selection per
(action, target)) so the frontier holds dozens of groups and the selector and
dedup index do real work; each selector kind runs ``explore_runs`` seeds
through ``Kernel.run_batch`` directly (no eval layer), the reference the
first ``explore_reference_runs`` of them, and the two must agree run for run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from swarm_engine._native import _kernel
from swarm_engine.bench.equivalence import check_runs
from swarm_engine.bench.measure import native_batch, spread
from swarm_engine.bench.settings import Settings
from swarm_engine.bench.workloads import troubleshooting
from swarm_engine.exploration.selectors import SELECTOR_KINDS

__all__ = ["run", "OVERRIDES", "overrides"]

OVERRIDES: dict[str, Any] = {"environment": {"params": {"services": 16, "error_rate": 0.02, "noise": 0.25}},
             "agents": {"workers": 4},
             "app_config": {"max_ticks": 200, "selection": {"granularity": "action_target"}}}


def overrides(selector: str) -> dict:
    """OVERRIDES with ``selector`` as the selection strategy."""
    sel = {**OVERRIDES["app_config"]["selection"], "strategy": selector}
    return {**OVERRIDES, "app_config": {**OVERRIDES["app_config"], "selection": sel}}


def run(settings: Settings, say: Callable[[str], None] = lambda _msg: None) -> dict:
    """One row per selector kind; see the module docstring."""
    R, seed = settings.explore_runs, settings.seed
    Rr = min(R, settings.explore_reference_runs)
    seeds = (np.uint64(seed) + np.arange(R, dtype=np.uint64)).astype(np.uint64)
    rows = []
    for selector in SELECTOR_KINDS:
        wl = troubleshooting(settings.scenario, overrides=overrides(selector))
        kernel = wl.native()
        say(f"selectors: {selector}: warm-up")
        native_batch(kernel, seeds[:min(R, 500)])
        wl.reference().run_batch(seeds[:min(Rr, 10)])
        nat_aps, ref_aps, ratios = [], [], []
        out: dict = {}
        ref_actions = 0
        for k in range(settings.repeat):
            say(f"selectors: {selector}: repeat {k + 1}/{settings.repeat}")
            out, secs = native_batch(kernel, seeds)
            nat_aps.append(int(out["actions"].sum()) / secs)
            ref = wl.reference()
            t0 = time.perf_counter()
            ref_rows = ref.run_batch(seeds[:Rr])
            ref_secs = time.perf_counter() - t0
            ref_actions = sum(r.actions for r in ref_rows)
            ref_aps.append(ref_actions / ref_secs)
            ratios.append(nat_aps[-1] / ref_aps[-1])
            check_runs(f"selectors/{selector}", seeds, out, ref_rows)
        rows.append({
            "selector": selector, "runs": R, "reference_runs": Rr,
            "actions": int(out["actions"].sum()), "actions_per_run": float(out["actions"].mean()),
            "success_rate": float((out["verdict"] == _kernel.V_SUCCESS).mean()),
            "native_actions_per_s": spread(nat_aps), "reference_actions_per_s": spread(ref_aps),
            "ratio": spread(ratios), "identical_runs": Rr,
        })
    return {"workload": {"base": "troubleshooting", "overrides": OVERRIDES}, "seed": seed,
            "repeat": settings.repeat, "selectors": rows}
