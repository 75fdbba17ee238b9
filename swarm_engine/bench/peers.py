"""Suite ``peers``: one exploration workload, three implementations, one process.

* **native**: ``run_eval`` (what ``swarm eval`` runs: ``Kernel.run_batch``);
* **reference**: ``ReferenceKernel.run_batch``, the pure-Python oracle;
* **Mesa**: :class:`swarm_engine.bench.peers_mesa.TroubleshootingModel`, an
  idiomatic Mesa model of the same workload, one model per seed.

Two workloads: the shipped troubleshooting scenario (1 worker, 4 services)
and the widened one of the ``selectors`` part (4 workers, 16 services), both
UCB1 per (action, target). All three run the same seeds (the slower ones the
first of them) and must give the same runs: verdict, ticks, actions, failed
actions and actions per kind of every common seed. Repeats take turns
(native, reference, Mesa), so a noisy neighbour hits all three alike. Rates
are actions per second: native over the kernel's own seconds (as the eval
table reports it; the whole call is kept beside it), reference and Mesa over
the wall time of their loops.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable

import numpy as np

from swarm_engine._native import _kernel
from swarm_engine.bench.equivalence import check_runs
from swarm_engine.bench.measure import spread
from swarm_engine.bench.selectors import overrides
from swarm_engine.bench.settings import Settings
from swarm_engine.bench.workloads import troubleshooting
from swarm_engine.eval.runner import run_eval

__all__ = ["run", "WORKLOADS", "mesa_skip_reason", "result_columns"]

MESA_SKIP = "Mesa is not installed (pip install 'swarm-engine[peers]')"


def mesa_skip_reason() -> str | None:
    """Why the Mesa rows cannot run here (None when they can)."""
    return MESA_SKIP if importlib.util.find_spec("mesa") is None else None

# name -> overrides of the troubleshooting scenario
WORKLOADS: dict[str, dict | None] = {
    "troubleshooting": None,
    "troubleshooting-16x4": overrides("ucb1"),
}


def result_columns(results) -> dict[str, np.ndarray]:
    """RunResult rows (the reference's, Mesa's) as the columns ``native_batch`` returns."""
    return {"verdict": np.array([r.verdict for r in results], np.int64),
            "ticks": np.array([r.ticks for r in results], np.int64),
            "actions": np.array([r.actions for r in results], np.int64),
            "failed": np.array([r.failed for r in results], np.int64),
            "by_action": np.array([r.by_action for r in results], np.int64)}


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _one(name: str, ov: dict | None, settings: Settings, say: Callable[[str], None]) -> dict:
    wl = troubleshooting(settings.scenario, overrides=ov)
    R = settings.peer_runs
    Rr, Rm = min(R, settings.peer_reference_runs), min(R, settings.peer_mesa_runs)
    seeds = (np.uint64(settings.seed) + np.arange(R, dtype=np.uint64)).astype(np.uint64)
    mesa_skip = mesa_skip_reason()
    if mesa_skip is None:
        from swarm_engine.bench import peers_mesa
    say(f"peers: {name}: warm-up")
    run_eval(wl.scenario, min(R, 1_000), settings.seed)
    wl.reference().run_batch(seeds[:min(Rr, 20)])
    if mesa_skip is None:
        peers_mesa.run_seeds(wl, seeds[:min(Rm, 10)])
    nat, whole, ref, mes = [], [], [], []
    res = ref_rows = mesa_rows = None
    for k in range(settings.repeat):
        say(f"peers: {name}: repeat {k + 1}/{settings.repeat}: native {R:,} runs")
        res, wall = _timed(lambda: run_eval(wl.scenario, R, settings.seed))
        nat.append(int(res.actions.sum()) / res.engine_seconds)
        whole.append(int(res.actions.sum()) / wall)
        say(f"peers: {name}: repeat {k + 1}/{settings.repeat}: reference {Rr:,} runs")
        ref_rows, secs = _timed(lambda: wl.reference().run_batch(seeds[:Rr]))
        ref.append(sum(r.actions for r in ref_rows) / secs)
        native_cols = {"verdict": res.verdict, "ticks": res.ticks, "actions": res.actions, "failed": res.failed,
                       "by_action": res.by_action}
        check_runs(f"peers/{name}: reference", seeds, native_cols, ref_rows)
        if mesa_skip is None:
            say(f"peers: {name}: repeat {k + 1}/{settings.repeat}: Mesa {Rm:,} runs")
            mesa_rows, secs = _timed(lambda: peers_mesa.run_seeds(wl, seeds[:Rm]))
            mes.append(sum(r.actions for r in mesa_rows) / secs)
            check_runs(f"peers/{name}: Mesa", seeds, native_cols, mesa_rows)
    assert res is not None and ref_rows is not None
    common = min(Rr, Rm) if mesa_skip is None else Rr
    succ = res.verdict[:common] == _kernel.V_SUCCESS
    out = {
        "workload": name, "overrides": ov, "scenario_id": wl.scenario.id, "workers": wl.config.workers,
        "services": int(wl.binding.params[0]), "selector": wl.config.selector.strategy, "seed": settings.seed,
        "repeat": settings.repeat,
        "native": {"path": "run_eval -> Kernel.run_batch", "runs": R, "actions": int(res.actions.sum()),
                   "success_rate": float((res.verdict == _kernel.V_SUCCESS).mean()),
                   "actions_per_s": spread(nat), "eval_actions_per_s": spread(whole)},
        "reference": {"path": "ReferenceKernel.run_batch", "runs": Rr, "actions": sum(r.actions for r in ref_rows),
                      "actions_per_s": spread(ref)},
        "ratio_reference": spread([a / b for a, b in zip(nat, ref)]),
        # what all implementations agree on, on the seeds every one of them ran
        "common_runs": common, "common_successes": int(succ.sum()),
        "common_actions": int(res.actions[:common].sum()),
    }
    if mesa_skip is None:
        assert mesa_rows is not None
        out["mesa"] = {"path": "TroubleshootingModel, one mesa.Model per seed", "version": _mesa_version(),
                       "runs": Rm, "actions": sum(r.actions for r in mesa_rows), "actions_per_s": spread(mes)}
        out["ratio_mesa"] = spread([a / b for a, b in zip(nat, mes)])
        out["reference_over_mesa"] = spread([a / b for a, b in zip(ref, mes)])
    else:
        out["mesa"] = {"skipped": mesa_skip}
    return out


def run(settings: Settings, say: Callable[[str], None] = lambda _m: None) -> dict:
    """One row per workload; see the module docstring."""
    return {"workloads": [_one(name, ov, settings, say) for name, ov in WORKLOADS.items()],
            "mesa_version": _mesa_version(), "mesa_skipped": mesa_skip_reason()}


def _mesa_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("mesa")
    except metadata.PackageNotFoundError:
        return None
